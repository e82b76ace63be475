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
