package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// syncBuffer is a bytes.Buffer for a logger written from the replica's loop and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) count(msg string) int { return strings.Count(s.String(), msg) }

func awaitReplica(t *testing.T, db *store.DB, healthy bool, reason string) store.ReplicaStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := db.ReplicaStatus()
		if st.Healthy == healthy && st.Reason == reason {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica never became healthy=%v %q: %+v", healthy, reason, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicaHealth measures a real streaming replica: an idle primary is no lag (however old the replica's
// last replayed transaction), a paused replay past the bound is, a killed replica is unreachable, and each
// transition is logged once however many checks see it.
func TestReplicaHealth(t *testing.T) {
	primary := testdb.NewDedicated(t)
	replica := primary.NewReplica()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: primary.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var logs syncBuffer
	const healthyMsg, unhealthyMsg = "read replica healthy", "read replica unhealthy"
	if err := db.OpenReplica(ctx, store.ReplicaOptions{URL: replica.URL(), MaxLag: 700 * time.Millisecond, Interval: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	if err := db.OpenReplica(ctx, store.ReplicaOptions{URL: replica.URL()}); err == nil {
		t.Error("a second replica was accepted")
	}
	awaitReplica(t, db, true, "")

	// Idle well past the bound: the replica is current, the age of its last replayed transaction notwithstanding.
	time.Sleep(1500 * time.Millisecond)
	if st := db.ReplicaStatus(); !st.Healthy || st.Lag > 700*time.Millisecond {
		t.Errorf("a replica of an idle primary: %+v", st)
	}

	conn, err := pgx.Connect(ctx, primary.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	replica.PauseReplay()
	if _, err := conn.Exec(ctx, "CREATE TABLE written_while_paused (n int)"); err != nil {
		t.Fatal(err)
	}
	if st := awaitReplica(t, db, false, store.ReplicaLagging); st.Lag <= 700*time.Millisecond {
		t.Errorf("lagging with a lag of %v", st.Lag)
	}
	time.Sleep(300 * time.Millisecond) // several more checks
	replica.ResumeReplay()
	awaitReplica(t, db, true, "")

	replica.Kill()
	awaitReplica(t, db, false, store.ReplicaUnreachable)
	time.Sleep(300 * time.Millisecond)
	replica.Start()
	awaitReplica(t, db, true, "")
	time.Sleep(300 * time.Millisecond)
	if h, u := logs.count(healthyMsg), logs.count(unhealthyMsg); h != 3 || u != 2 {
		t.Errorf("logged %d healthy and %d unhealthy transitions, want 3 and 2:\n%s", h, u, logs.String())
	}
	db.CloseReplica()
	if st := db.ReplicaStatus(); st.Configured || db.ReplicaPool() != nil {
		t.Errorf("a closed replica is still there: %+v", st)
	}
}

func TestReplicaNeedsPostgres(t *testing.T) {
	db, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.OpenReplica(context.Background(), store.ReplicaOptions{URL: "postgres://u@h/db"}); err == nil {
		t.Error("a replica of SQLite was accepted")
	}
}

// TestReplicaReadFallsBack: a listing that fails on the replica, killed or stalled before any check noticed,
// is answered from the primary within the request's deadline, and sends the next reads to the primary.
func TestReplicaReadFallsBack(t *testing.T) {
	primary := testdb.NewDedicated(t)
	replica := primary.NewReplica()
	ctx := context.Background()
	db := open(t, store.Options{URL: primary.URL()})
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	org := mustOrg(t, db, "Acme")
	u := mustUser(t, db, org.ID, "ada@example.com")
	replica.CatchUp()
	// One check at the start, none after: only the reads themselves can find the replica gone.
	if err := db.OpenReplica(ctx, store.ReplicaOptions{URL: replica.URL(), MaxLag: time.Hour, Interval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	awaitReplica(t, db, true, "")
	us := store.NewUsers(db)
	list := func(what string) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		page, total, err := us.ListUsers(rctx, org.ID, users.ListQuery{Limit: 10})
		if err != nil || total != 1 || len(page) != 1 || page[0].ID != u.ID {
			t.Fatalf("%s: ListUsers = %v, %d, %v", what, page, total, err)
		}
	}
	list("healthy replica")
	if st := db.ReplicaStatus(); st.ReplicaReads != 1 || st.Fallbacks != 0 {
		t.Fatalf("a read of the healthy replica: %+v", st)
	}

	replica.Pause() // stalled: connections and queries hang
	list("stalled replica")
	if st := db.ReplicaStatus(); st.Healthy || st.Reason != store.ReplicaUnreachable || st.Fallbacks != 1 || st.PrimaryReads != 1 {
		t.Errorf("after a read of a stalled replica: %+v", st)
	}
	list("replica known to be down")
	if st := db.ReplicaStatus(); st.Fallbacks != 1 || st.PrimaryReads != 2 {
		t.Errorf("a read after the replica was found down: %+v", st)
	}
	replica.Resume()
	db.CloseReplica()

	if err := db.OpenReplica(ctx, store.ReplicaOptions{URL: replica.URL(), MaxLag: time.Hour, Interval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	awaitReplica(t, db, true, "")
	list("healthy replica again")
	replica.Kill() // the pool's connection to it is dead now
	list("killed replica")
	if st := db.ReplicaStatus(); st.Healthy || st.Reason != store.ReplicaUnreachable || st.Fallbacks != 1 {
		t.Errorf("after a read of a killed replica: %+v", st)
	}
}
