package store

import (
	"context"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// TestTranslateDeadline: a statement that its context's deadline cuts short fails as unavailable, on either
// database: PostgreSQL drops the connection, SQLite interrupts the statement. The statement goes through Exec:
// the SQLite driver watches the context while it executes a statement, but not while the rows of a query are
// read, so a slow SQLite read runs to its end whatever the deadline.
func TestTranslateDeadline(t *testing.T) {
	slow := map[Dialect]string{
		SQLite:   `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c`,
		Postgres: `SELECT pg_sleep(30)`,
	}
	for _, d := range []Dialect{SQLite, Postgres} {
		t.Run(string(d), func(t *testing.T) {
			opts := Options{DataDir: t.TempDir()}
			if d == Postgres {
				opts.URL = testdb.PostgresURL(t)
			}
			db, err := Open(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = translate(db.gorm.WithContext(ctx).Exec(slow[d]).Error)
			if nexus.KindOf(err) != nexus.KindUnavailable || time.Since(start) > 5*time.Second {
				t.Errorf("a statement past its deadline: %v (kind %v) after %v, want unavailable", err, nexus.KindOf(err), time.Since(start))
			}
		})
	}
}
