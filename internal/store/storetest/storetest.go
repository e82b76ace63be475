// Package storetest opens real, fresh, migrated databases for tests: an embedded SQLite file in a temporary
// directory, and a new PostgreSQL database from testdb. Only tests import it.
package storetest

import (
	"context"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// Dialects lists the databases every storage behaviour is tested on.
var Dialects = []store.Dialect{store.SQLite, store.Postgres}

// Open returns a fresh, migrated database of the given dialect, closed when the test ends. The PostgreSQL one
// skips the test (loudly) when no server can be had, except under CI=true, where it fails.
func Open(tb testing.TB, d store.Dialect) *store.DB {
	tb.Helper()
	return OpenWith(tb, d, nil)
}

// OpenWith is Open with adjust changing the options before the database opens (a tracer provider).
func OpenWith(tb testing.TB, d store.Dialect, adjust func(*store.Options)) *store.DB {
	tb.Helper()
	opts := store.Options{DataDir: tb.TempDir()}
	if d == store.Postgres {
		opts.URL = testdb.PostgresURL(tb)
	}
	if adjust != nil {
		adjust(&opts)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, opts)
	if err != nil {
		tb.Fatalf("open %s: %v", d, err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatalf("migrate %s: %v", d, err)
	}
	return db
}

// Each runs fn as one subtest per dialect, each with its own fresh database.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(string(d), func(t *testing.T) {
			fn(t, Open(t, d))
		})
	}
}
