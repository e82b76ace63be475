package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// TestMigrateRefusesNewerSchema: an older binary started on a database a newer one migrated refuses to run,
// naming both versions, and changes nothing.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	latest := store.SchemaVersion()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			db := open(t, openBare(t, d))
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			// The binary before the last migration.
			_, err := db.MigrateTo(ctx, latest-1)
			var tooNew *store.SchemaTooNewError
			if !errors.As(err, &tooNew) || *tooNew != (store.SchemaTooNewError{Database: latest, Binary: latest - 1}) {
				t.Fatalf("MigrateTo(%d) on a database at %d: %v, want a SchemaTooNewError", latest-1, latest, err)
			}
			// A migration this binary does not know.
			if err := db.Exec(ctx, fmt.Sprintf("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'future', '2030-01-01 00:00:00+00:00')", latest+1)); err != nil {
				t.Fatal(err)
			}
			_, err = db.Migrate(ctx)
			if !errors.As(err, &tooNew) || tooNew.Database != latest+1 || tooNew.Binary != latest {
				t.Fatalf("Migrate on a database at %d: %v, want a SchemaTooNewError", latest+1, err)
			}
			for _, v := range []int{latest + 1, latest} {
				if !strings.Contains(err.Error(), "version "+strconv.Itoa(v)) && !strings.Contains(err.Error(), "binary's "+strconv.Itoa(v)) {
					t.Errorf("the refusal %q does not name version %d", err, v)
				}
			}
			if v, err := db.SchemaVersion(ctx); err != nil || v != latest+1 {
				t.Errorf("SchemaVersion after the refusal = %d, %v; want %d", v, err, latest+1)
			}
		})
	}
}

// TestBackupSQLiteUnderWrites backs up, through a pool of its own as `nexus backup` does, while another pool
// (the server) commits organizations: every backup passes its check and holds a consistent snapshot, at least
// what was committed before it began and at most what was committed when it ended.
func TestBackupSQLiteUnderWrites(t *testing.T) {
	ctx := context.Background()
	opts := store.Options{DataDir: t.TempDir()}
	server := open(t, opts)
	if _, err := server.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	dir := store.NewDirectory(server)
	var committed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := dir.CreateOrganization(ctx, "org "+strconv.Itoa(i)); err != nil {
				t.Errorf("CreateOrganization during the backups: %v", err)
				return
			}
			committed.Add(1)
		}
	})
	defer func() { close(stop); wg.Wait() }()
	for committed.Load() < 20 {
		time.Sleep(time.Millisecond)
	}

	backups := open(t, opts)
	out := t.TempDir()
	for i := range 5 {
		target := filepath.Join(out, fmt.Sprintf("b%d.db", i))
		before := committed.Load()
		b, err := backups.BackupSQLite(ctx, target, false)
		after := committed.Load()
		if err != nil {
			t.Fatalf("BackupSQLite: %v", err)
		}
		if b.Path != target || b.SchemaVersion != store.SchemaVersion() || b.Size == 0 {
			t.Errorf("BackupSQLite = %+v", b)
		}
		if fi, err := os.Stat(target); err != nil || fi.Size() != b.Size || fi.Mode().Perm() != 0o600 {
			t.Errorf("the backup file: %v, %v; want %d bytes, mode 0600", fi, err, b.Size)
		}
		n := countRows(t, target, "organizations")
		if n < before || n > after {
			t.Errorf("backup %d holds %d organizations; %d were committed before it began, %d when it ended", i, n, before, after)
		}
	}
	if _, err := backups.BackupSQLite(ctx, filepath.Join(out, "b0.db"), false); err == nil {
		t.Error("BackupSQLite replaced an existing file without force")
	}
	if _, err := backups.BackupSQLite(ctx, filepath.Join(out, "b0.db"), true); err != nil {
		t.Errorf("BackupSQLite with force: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(out, ".*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// countRows counts a table's rows in the SQLite file at path.
func countRows(t *testing.T, path, table string) int64 {
	t.Helper()
	c, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int64
	if err := c.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRestoreSQLiteRefusals: a restore checks the backup before it touches the data directory.
func TestRestoreSQLiteRefusals(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	db := open(t, store.Options{DataDir: src})
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(t.TempDir(), "good.db")
	if _, err := db.BackupSQLite(ctx, good, false); err != nil {
		t.Fatal(err)
	}

	// A backup of a newer schema: this binary would refuse to start on it.
	newer := filepath.Join(t.TempDir(), "newer.db")
	if err := db.Exec(ctx, fmt.Sprintf("INSERT INTO schema_migrations (version, name, applied_at) VALUES (%d, 'future', '2030-01-01 00:00:00+00:00')", store.SchemaVersion()+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.BackupSQLite(ctx, newer, false); err != nil {
		t.Fatal(err)
	}
	// A damaged file: the good backup with pages overwritten.
	damaged := filepath.Join(t.TempDir(), "damaged.db")
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4096 * 2; i < len(raw) && i < 4096*6; i++ {
		raw[i] = 0x5a
	}
	if err := os.WriteFile(damaged, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	target := t.TempDir()
	for name, from := range map[string]string{"newer schema": newer, "damaged": damaged, "missing": filepath.Join(target, "none.db")} {
		if _, err := store.RestoreSQLite(ctx, target, from, time.Now()); err == nil {
			t.Errorf("%s: restored", name)
		}
		if entries, _ := os.ReadDir(target); len(entries) != 0 {
			t.Fatalf("%s: the refused restore left %v", name, entries)
		}
	}
	r, err := store.RestoreSQLite(ctx, target, good, time.Now())
	if err != nil || r.SchemaVersion != store.SchemaVersion() || len(r.MovedAside) != 0 {
		t.Fatalf("RestoreSQLite into an empty directory = %+v, %v", r, err)
	}
	// A second restore moves the first aside, and refuses while the database is open.
	restored := open(t, store.Options{DataDir: target})
	if _, err := restored.SchemaVersion(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RestoreSQLite(ctx, target, good, time.Now()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("restore over an open database: %v, want a refusal", err)
	}
	_ = restored.Close()
	r, err = store.RestoreSQLite(ctx, target, good, time.Now())
	if err != nil || len(r.MovedAside) != 1 {
		t.Fatalf("second RestoreSQLite = %+v, %v", r, err)
	}
}
