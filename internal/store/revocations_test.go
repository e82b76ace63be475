package store_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// sink records what a revocation feed tells it.
type sink struct {
	mu       sync.Mutex
	revoked  map[string]int
	current  int
	forgot   int
	changed  chan struct{}
	lastAsOf time.Time
}

func newSink() *sink { return &sink{revoked: map[string]int{}, changed: make(chan struct{}, 1)} }

func (s *sink) SessionsRevoked(ids []string) {
	s.mu.Lock()
	for _, id := range ids {
		s.revoked[id]++
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

func (s *sink) RevocationsCurrent(asOf time.Time) {
	s.mu.Lock()
	s.current++
	s.lastAsOf = asOf
	s.mu.Unlock()
}

func (s *sink) ForgetSessions() {
	s.mu.Lock()
	s.forgot++
	s.mu.Unlock()
}

func (s *sink) has(ids ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.revoked[id] == 0 {
			return false
		}
	}
	return true
}

func (s *sink) currents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current
}

// follow runs db's revocation feed into a new sink until the test ends, and waits for its first confirmation.
func follow(t *testing.T, db *store.DB) *sink {
	t.Helper()
	s := newSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.FollowRevocations(ctx, s, "", 10*time.Millisecond, nil)
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, "the feed's first confirmation", func() bool { return s.currents() > 0 })
	return s
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
	}
}

func revokeSession(t *testing.T, db *store.DB, id, reason string) {
	t.Helper()
	err := store.NewAuth(db).UpdateSession(context.Background(), id, func(s *auth.Session, _ nexus.User) (bool, error) {
		if s.Revoked() {
			return false, nil
		}
		s.RevokedAt, s.RevokedReason = t0, reason
		return true, nil
	}, nil)
	if err != nil {
		t.Fatalf("revoke %s: %v", id, err)
	}
}

// TestRevocationFeed: every way a session is revoked (a session update, a user's deactivation by the API or by
// an operator, a role change) is written to the log and told to this process's sinks before the call returns,
// and reaches another process's feed through the log; what is not revoked is not logged.
func TestRevocationFeed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		other, err := db.Reopen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = other.Close() })
		here, there := follow(t, db), follow(t, other)

		org := mustOrg(t, db, "Acme")
		ada := mustUser(t, db, org.ID, "ada@example.com")
		bob := mustUser(t, db, org.ID, "bob@example.com")
		cyd := mustUser(t, db, org.ID, "cyd@example.com")
		s1, s2, s3 := mustSession(t, db, ada), mustSession(t, db, bob), mustSession(t, db, bob)
		s4 := mustSession(t, db, cyd)

		revokeSession(t, db, s1.ID, "logout")
		if !here.has(s1.ID) {
			t.Fatal("the revoking process was not told before UpdateSession returned")
		}
		revokeSession(t, db, s1.ID, "logout") // already revoked: nothing new
		role := nexus.RoleAnalyst
		if _, err := updateUser(ctx, store.NewUsers(db), org.ID, bob.ID, users.Change{Role: &role}, t0); err != nil {
			t.Fatal(err)
		}
		if !here.has(s2.ID, s3.ID) {
			t.Fatal("a role change's revocations were not told before UpdateUser returned")
		}
		// An operator deactivates cyd from another process (nexus user … on the same database).
		if _, err := updateUser(ctx, store.NewUsers(other), org.ID, cyd.ID, users.Change{Status: ptr(nexus.UserInactive)}, t0); err != nil {
			t.Fatal(err)
		}
		all := []string{s1.ID, s2.ID, s3.ID, s4.ID}
		waitUntil(t, "every revocation on the other feed", func() bool { return there.has(all...) })
		waitUntil(t, "the operator's revocation on this feed", func() bool { return here.has(s4.ID) })

		seqs, ids, err := db.RevocationLog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		want := slices.Clone(all)
		slices.Sort(want)
		if !slices.Equal(seqs, []int64{1, 2, 3, 4}) || !slices.Equal(ids, want) {
			t.Errorf("log = %v %v; want numbers 1-4 for %v", seqs, ids, want)
		}
	})
}

// TestRevocationLogInCommitOrder revokes sessions from many goroutines at once, on one database handle and on
// another: the log's numbers are 1..n without a gap or a repeat, and a follower of either handle learns of
// every revocation.
func TestRevocationLogInCommitOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const writers, each = 6, 15
		ctx := context.Background()
		other, err := db.Reopen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = other.Close() })
		there := follow(t, other)
		org := mustOrg(t, db, "Acme")
		var sessions [writers][]string
		for w := range writers {
			u := mustUser(t, db, org.ID, fmt.Sprintf("u%d@example.com", w))
			for range each {
				sessions[w] = append(sessions[w], mustSession(t, db, u).ID)
			}
		}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := db
				if w%2 == 1 {
					h = other
				}
				for _, id := range sessions[w] {
					revokeSession(t, h, id, "logout")
				}
			}()
		}
		wg.Wait()
		var all []string
		for _, ids := range sessions {
			all = append(all, ids...)
		}
		seqs, logged, err := db.RevocationLog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, seq := range seqs {
			if seq != int64(i+1) {
				t.Fatalf("log numbers %v: want 1..%d", seqs, len(all))
			}
		}
		slices.Sort(all)
		slices.Sort(logged)
		if !slices.Equal(all, logged) {
			t.Fatalf("log holds %d sessions, want the %d revoked", len(logged), len(all))
		}
		waitUntil(t, "every revocation on the follower", func() bool { return there.has(all...) })
	})
}

// TestRevocationFeedCatchesUp cuts a PostgreSQL follower's listening connection without closing it: the
// follower stops confirming (so its sink stops trusting what it knows), and once the connection is back it
// catches up from the log with the revocations it missed, without forgetting everything.
func TestRevocationFeedCatchesUp(t *testing.T) {
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	other, err := db.Reopen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Close() })
	proxy := testdb.NewProxy(t, other.URL())
	s := newSink()
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		other.FollowRevocations(fctx, s, proxy.URL(other.URL()), 10*time.Millisecond, nil)
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, "the feed's first confirmation", func() bool { return s.currents() > 0 })

	org := mustOrg(t, db, "Acme")
	ada := mustUser(t, db, org.ID, "ada@example.com")
	before, during := mustSession(t, db, ada), mustSession(t, db, ada)
	revokeSession(t, db, before.ID, "logout")
	waitUntil(t, "a revocation before the cut", func() bool { return s.has(before.ID) })

	proxy.Cut()
	// Once a confirmation that started after the cut would have been due, none comes.
	time.Sleep(50 * time.Millisecond)
	cutAt := time.Now()
	revokeSession(t, db, during.ID, "logout")
	time.Sleep(300 * time.Millisecond)
	s.mu.Lock()
	stale, missed := s.lastAsOf.Before(cutAt), s.revoked[during.ID] == 0
	forgot := s.forgot
	s.mu.Unlock()
	if !stale {
		t.Error("the feed confirmed itself current through a cut connection")
	}
	if !missed {
		t.Error("a revocation crossed the cut connection (the proxy let it through)")
	}

	proxy.Restore()
	waitUntil(t, "the missed revocation after the connection came back", func() bool { return s.has(during.ID) })
	waitUntil(t, "a confirmation after the connection came back", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.lastAsOf.After(cutAt)
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forgot != forgot {
		t.Errorf("the follower forgot every session (%d times) instead of catching up from the log", s.forgot-forgot)
	}
}
