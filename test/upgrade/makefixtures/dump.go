package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	_ "github.com/glebarez/go-sqlite"

	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// dumpSQLite writes the database at path as SQL text: the tables in creation order, their rows in rowid order
// (each value as SQLite's quote() gives it, so the text is stored exactly), then the indexes and the triggers,
// so that loading the rows fires no trigger. It returns the schema versions recorded.
func dumpSQLite(path, out, tag string) ([]int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	type object struct{ typ, name, sql string }
	rows, err := db.Query("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
	if err != nil {
		return nil, err
	}
	var objs []object
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.typ, &o.name, &o.sql); err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- The SQLite database nexus %s created and used: written by test/upgrade/make-fixtures.sh; do not edit.\n", tag)
	for _, o := range objs {
		if o.typ == "table" {
			b.WriteString(o.sql + ";\n")
		}
	}
	for _, o := range objs {
		if o.typ != "table" {
			continue
		}
		var cols []string
		crows, err := db.Query("SELECT name FROM pragma_table_info(?) ORDER BY cid", o.name)
		if err != nil {
			return nil, err
		}
		for crows.Next() {
			var c string
			if err := crows.Scan(&c); err != nil {
				return nil, err
			}
			cols = append(cols, fmt.Sprintf("quote(%q)", c))
		}
		if err := crows.Err(); err != nil {
			return nil, err
		}
		vrows, err := db.Query(fmt.Sprintf("SELECT %s FROM %q ORDER BY rowid", strings.Join(cols, ", "), o.name))
		if err != nil {
			return nil, err
		}
		vals := make([]string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for vrows.Next() {
			if err := vrows.Scan(ptrs...); err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "INSERT INTO %q VALUES(%s);\n", o.name, strings.Join(vals, ","))
		}
		if err := vrows.Err(); err != nil {
			return nil, err
		}
	}
	for _, o := range objs {
		if o.typ != "table" {
			b.WriteString(o.sql + ";\n")
		}
	}
	var versions []int
	vrows, err := db.Query("SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, err
	}
	for vrows.Next() {
		var v int
		if err := vrows.Scan(&v); err != nil {
			return nil, err
		}
		versions = append(versions, v)
	}
	if err := vrows.Err(); err != nil {
		return nil, err
	}
	return versions, os.WriteFile(out, []byte(b.String()), 0o644)
}

// dumpPostgres writes pg_dump's plain dump of the database, without owners, privileges and the psql-only
// \restrict and \unrestrict lines (whose random key would change every run).
func dumpPostgres(pgURL, out string) error {
	pgDump, err := testdb.Program("pg_dump")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, pgDump, "--no-owner", "--no-acl", "--inserts", pgURL)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("pg_dump: %w\n%s", err, stderr.String())
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(stdout.String(), "\n") {
		if strings.HasPrefix(line, `\`) {
			continue
		}
		b.WriteString(line)
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
