package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// TestUpdateSessionLocksTheUserFirst proves the lock order of UpdateSession on PostgreSQL, where one statement
// takes both locks: while it waits for its session (held by another transaction), it already holds the user's
// row, so a change to the user waits behind it. Taken the other way round (session first), the change would go
// through at once, and a writer that takes the user and then the session could deadlock with the rotation.
func TestUpdateSessionLocksTheUserFirst(t *testing.T) {
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	db, err := store.Open(ctx, store.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u := mustUser(t, db, mustOrg(t, db, "Acme").ID, "ada@example.com")
	s := mustSession(t, db, u)
	connect := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(ctx) })
		return c
	}
	holder, changer, watcher := connect(), connect(), connect()

	// Another transaction holds the session.
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM refresh_sessions WHERE id = $1 FOR UPDATE", s.ID); err != nil {
		t.Fatal(err)
	}
	waiters := func() int {
		var n int
		if err := watcher.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor := func(n int, what string, done <-chan error) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for waiters() < n {
			select {
			case err := <-done:
				t.Fatalf("%s returned (%v) instead of waiting", what, err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s does not wait for a lock", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	rotated := make(chan error, 1)
	go func() {
		rotated <- store.NewAuth(db).UpdateSession(ctx, s.ID, func(cur *auth.Session, _ nexus.User) (bool, error) {
			cur.Generation++
			return true, nil
		}, nil)
	}()
	waitFor(1, "UpdateSession", rotated)
	changed := make(chan error, 1)
	go func() {
		_, err := changer.Exec(ctx, "UPDATE users SET name = 'Changed' WHERE id = $1", u.ID)
		changed <- err
	}()
	waitFor(2, "the user's change", changed) // it waits for the user's row, which the waiting rotation holds

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-rotated; err != nil {
		t.Fatalf("UpdateSession: %v", err)
	}
	if err := <-changed; err != nil {
		t.Fatalf("change the user: %v", err)
	}
}
