package store_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

var tables = []string{"schema_migrations", "organizations", "users", "clients", "refresh_sessions", "signing_keys", "auth_events"}

// openBare opens a fresh database of dialect d without migrating it.
func openBare(t *testing.T, d store.Dialect) store.Options {
	t.Helper()
	opts := store.Options{DataDir: t.TempDir()}
	if d == store.Postgres {
		opts.URL = testdb.PostgresURL(t)
	}
	return opts
}

func open(t *testing.T, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			db := open(t, openBare(t, d))
			if got := db.Dialect(); got != d {
				t.Fatalf("Dialect() = %q, want %q", got, d)
			}
			for _, name := range tables {
				if db.HasTable(name) {
					t.Fatalf("table %s exists before Migrate", name)
				}
			}

			applied, err := db.Migrate(ctx)
			if err != nil {
				t.Fatalf("first Migrate: %v", err)
			}
			if diff := cmp.Diff(allVersions(t), applied); diff != "" {
				t.Errorf("first Migrate applied (-want +got):\n%s", diff)
			}
			for _, name := range tables {
				if !db.HasTable(name) {
					t.Errorf("table %s missing after Migrate", name)
				}
			}

			applied, err = db.Migrate(ctx)
			if err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			if len(applied) != 0 {
				t.Errorf("second Migrate applied %v, want nothing", applied)
			}
		})
	}
}

// TestMigrateConcurrent starts several servers on one database at once: each migration is applied exactly once.
func TestMigrateConcurrent(t *testing.T) {
	ctx := context.Background()
	const servers = 4
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			opts := openBare(t, d)
			dbs := make([]*store.DB, servers)
			for i := range dbs {
				dbs[i] = open(t, opts)
			}
			results := make([][]int, servers)
			errs := make([]error, servers)
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Go(func() { results[i], errs[i] = db.Migrate(ctx) })
			}
			wg.Wait()
			var all []int
			for i := range dbs {
				if errs[i] != nil {
					t.Errorf("server %d: Migrate: %v", i, errs[i])
				}
				all = append(all, results[i]...)
			}
			if diff := cmp.Diff(allVersions(t), all); diff != "" {
				t.Errorf("versions applied across servers (-want +got):\n%s", diff)
			}
		})
	}
}

// allVersions lists the versions of every migration, and checks that they count up from 1 without gaps.
func allVersions(t *testing.T) []int {
	t.Helper()
	var out []int
	for i, v := range store.MigrationVersions() {
		if v != i+1 {
			t.Fatalf("migration %d has version %d, want %d", i, v, i+1)
		}
		out = append(out, v)
	}
	return out
}
