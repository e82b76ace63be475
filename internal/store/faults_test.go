package store_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite" // the "sqlite" driver, for a second connection that holds the write lock
	"github.com/jackc/pgx/v5"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// Bounds of the fault tests: each call gets a deadline of faultDeadline and must return by then plus
// faultSlack (a loaded test machine).
const (
	faultDeadline = 300 * time.Millisecond
	faultSlack    = time.Second
)

// openFault opens a fresh migrated database with a pool of conns connections (0: the default), and returns
// with it a function that blocks writes from another connection, as another process would, until the
// function it returns is called: on SQLite the write lock (BEGIN IMMEDIATE), on PostgreSQL a SHARE lock on the
// tables written below, which lets reads through.
func openFault(t *testing.T, d store.Dialect, conns int) (*store.DB, string, func() (release func())) {
	t.Helper()
	opts := store.Options{DataDir: t.TempDir(), MaxConns: conns}
	if d == store.Postgres {
		opts.URL = testdb.PostgresURL(t)
	}
	ctx := context.Background()
	db, err := store.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	block := func() func() {
		t.Helper()
		if d == store.SQLite {
			other, err := sql.Open("sqlite", "file:"+filepath.Join(opts.DataDir, store.SQLiteFile))
			if err != nil {
				t.Fatal(err)
			}
			conn, err := other.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
				t.Fatal(err)
			}
			return sync.OnceFunc(func() { _, _ = conn.ExecContext(ctx, "ROLLBACK"); _ = conn.Close(); _ = other.Close() })
		}
		conn, err := pgx.Connect(ctx, opts.URL)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err == nil {
			_, err = tx.Exec(ctx, "LOCK TABLE organizations, users IN SHARE MODE")
		}
		if err != nil {
			t.Fatal(err)
		}
		return sync.OnceFunc(func() { _ = tx.Rollback(ctx); _ = conn.Close(ctx) })
	}
	return db, opts.URL, block
}

// noAbandonedStatements fails unless, within 5 s, no session of the database at url waits for a lock: the
// statements whose deadline passed while they waited were given up by their client, and the server must give
// them up too rather than run them on its own once the lock is free. (pgx returns at the deadline at once by
// closing the connection, and then sends the server a cancel request in the background.)
func noAbandonedStatements(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	start := time.Now()
	for {
		var waiting int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 0 {
			t.Logf("the server gave up the abandoned statements %v after their deadline", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%d statements still wait for the lock %v after their client gave up", waiting, time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// within runs fn with a context that ends after faultDeadline and fails unless fn returned by the deadline
// plus faultSlack; it returns fn's error.
func within(t *testing.T, what string, fn func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), faultDeadline)
	defer cancel()
	start := time.Now()
	err := fn(ctx)
	if took := time.Since(start); took > faultDeadline+faultSlack {
		t.Errorf("%s returned after %v with a deadline of %v", what, took, faultDeadline)
	}
	return err
}

// TestStallWriteLock blocks writes from another connection: a write waits at most until its context's
// deadline and then fails as unavailable — a single statement and a transaction alike, even though SQLite's
// busy timeout is 10 s and nothing interrupts SQLite's wait for the lock —, reads keep working, and once the
// lock is gone writes succeed again.
func TestStallWriteLock(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			db, url, block := openFault(t, d, 0)
			dir := store.NewDirectory(db)
			org := mustOrg(t, db, "Org")
			u := mustUser(t, db, org.ID, "ada@example.com")

			release := block()
			defer release()
			for _, w := range []struct {
				name string
				fn   func(ctx context.Context) error
			}{
				{"CreateOrganization (one statement)", func(ctx context.Context) error {
					_, err := dir.CreateOrganization(ctx, "Other")
					return err
				}},
				{"UpdateUser (a transaction)", func(ctx context.Context) error {
					_, err := updateUser(ctx, store.NewUsers(db), org.ID, u.ID, users.Change{Status: ptr(nexus.UserInactive)}, t0)
					return err
				}},
			} {
				if err := within(t, w.name, w.fn); nexus.KindOf(err) != nexus.KindUnavailable {
					t.Errorf("%s while writes are blocked: %v (kind %v), want unavailable", w.name, err, nexus.KindOf(err))
				}
			}
			err := within(t, "OrganizationExists", func(ctx context.Context) error {
				ok, err := dir.OrganizationExists(ctx, org.ID)
				if err == nil && !ok {
					t.Error("OrganizationExists: false")
				}
				return err
			})
			if err != nil {
				t.Errorf("a read while writes are blocked: %v", err)
			}
			if err := within(t, "Ping", db.Ping); err != nil {
				t.Errorf("Ping while writes are blocked: %v", err)
			}

			if d == store.Postgres {
				noAbandonedStatements(t, url)
			}

			release()
			if err := within(t, "UpdateUser after the lock", func(ctx context.Context) error {
				_, err := updateUser(ctx, store.NewUsers(db), org.ID, u.ID, users.Change{Status: ptr(nexus.UserInactive)}, t0)
				return err
			}); err != nil {
				t.Errorf("a write after the lock is gone: %v", err)
			}
		})
	}
}

// TestPoolExhausted holds every connection of a pool of 2: a call waits for a connection at most until its
// context's deadline and fails as unavailable, Ping too, and the pool serves again once a connection is back.
func TestPoolExhausted(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			db, _, _ := openFault(t, d, 2)
			dir := store.NewDirectory(db)
			org := mustOrg(t, db, "Org")
			ctx := context.Background()
			var release []func()
			for range 2 {
				r, err := db.Hold(ctx)
				if err != nil {
					t.Fatal(err)
				}
				release = append(release, r)
			}
			if err := within(t, "Hold of a third connection", func(ctx context.Context) error {
				r, err := db.Hold(ctx)
				if err == nil {
					r()
				}
				return err
			}); nexus.KindOf(err) != nexus.KindUnavailable {
				t.Errorf("a third connection of a pool of 2: %v (kind %v), want unavailable", err, nexus.KindOf(err))
			}
			if err := within(t, "OrganizationExists", func(ctx context.Context) error {
				_, err := dir.OrganizationExists(ctx, org.ID)
				return err
			}); nexus.KindOf(err) != nexus.KindUnavailable {
				t.Errorf("a read with the pool exhausted: %v (kind %v), want unavailable", err, nexus.KindOf(err))
			}
			start := time.Now()
			if err := db.Ping(ctx); nexus.KindOf(err) != nexus.KindUnavailable || time.Since(start) > store.PingTimeout+faultSlack {
				t.Errorf("Ping with the pool exhausted: %v after %v, want unavailable within %v", err, time.Since(start), store.PingTimeout)
			}

			release[0]()
			if err := within(t, "OrganizationExists after a release", func(ctx context.Context) error {
				_, err := dir.OrganizationExists(ctx, org.ID)
				return err
			}); err != nil {
				t.Errorf("a read once a connection is back: %v", err)
			}
			release[1]()
		})
	}
}
