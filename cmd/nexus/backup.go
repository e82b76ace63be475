package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/config"
	"github.com/nexus-cloud/nexus-core/internal/store"
)

// backup writes a consistent copy of the embedded database while the server may be running. It does not
// migrate: an operator backs up with the new binary before upgrading, and the copy must be of the schema the
// old binary left.
func backup(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("backup", flag.ContinueOnError)
	to := flags.String("to", "", "the backup file to write (required); it must not exist unless --force")
	force := flags.Bool("force", false, "replace the file --to names if it exists")
	asJSON := flags.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(flags, args, stderr); err != nil {
		return err
	}
	if strings.TrimSpace(*to) == "" {
		return usageError{"--to: required, the backup file to write"}
	}
	if cfg.DatabaseURL != "" {
		return store.ErrNotSQLite
	}
	if err := needDatabase(cfg); err != nil {
		return err
	}
	start := time.Now()
	db, err := store.Open(ctx, store.Options{DataDir: cfg.DataDir, MaxConns: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	b, err := db.BackupSQLite(ctx, *to, *force)
	if err != nil {
		return err
	}
	took := time.Since(start).Round(time.Millisecond)
	return printResult(stdout, *asJSON,
		map[string]any{"path": b.Path, "size": b.Size, "schema_version": b.SchemaVersion, "duration": took.String()},
		fmt.Sprintf("backed up %s to %s: %d bytes, schema version %d, in %s",
			filepath.Join(cfg.DataDir, store.SQLiteFile), b.Path, b.Size, b.SchemaVersion, took))
}

// restore installs a backup as the embedded database, with the server stopped.
func restore(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("restore", flag.ContinueOnError)
	from := flags.String("from", "", "the backup file to install (required), as nexus backup wrote it")
	asJSON := flags.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(flags, args, stderr); err != nil {
		return err
	}
	if strings.TrimSpace(*from) == "" {
		return usageError{"--from: required, the backup file to install"}
	}
	if cfg.DatabaseURL != "" {
		return store.ErrNotSQLite
	}
	r, err := store.RestoreSQLite(ctx, cfg.DataDir, *from, time.Now())
	if err != nil {
		return err
	}
	text := fmt.Sprintf("restored %s (schema version %d) to %s", *from, r.SchemaVersion, r.Path)
	if len(r.MovedAside) > 0 {
		text += "\n  the database it replaced: " + strings.Join(r.MovedAside, ", ")
	}
	if r.SchemaVersion < store.SchemaVersion() {
		text += fmt.Sprintf("\n  the next start (or nexus migrate) applies migrations %d to %d", r.SchemaVersion+1, store.SchemaVersion())
	}
	moved := r.MovedAside
	if moved == nil {
		moved = []string{}
	}
	return printResult(stdout, *asJSON,
		map[string]any{"path": r.Path, "from": *from, "schema_version": r.SchemaVersion, "moved_aside": moved}, text)
}

// needDatabase fails unless the embedded database exists: a backup of a misspelt NEXUS_DATA_DIR would otherwise
// create an empty database there and copy it.
func needDatabase(cfg config.Config) error {
	path := filepath.Join(cfg.DataDir, store.SQLiteFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no database at %s: is NEXUS_DATA_DIR (%s) the server's?", path, cfg.DataDir)
	} else if err != nil {
		return err
	}
	return nil
}
