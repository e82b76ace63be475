package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// The tests of the upkeep of events (store.Events.MaintainEvents): PostgreSQL's daily partitions, made ahead,
// on demand and concurrently, and the retention on both databases.

const day = 24 * time.Hour

// partitionNames returns the names of events' partitions on PostgreSQL, in order.
func partitionNames(t *testing.T, db *store.DB) []string {
	t.Helper()
	rows, err := db.Pool().QueryContext(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'events'::regclass ORDER BY c.relname`)
	if err != nil {
		t.Fatalf("partitions: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	return out
}

func queryCount(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// receivedEvent is pendingEvent received at received, with the id the service gives it: a UUIDv7 of the
// receive time.
func receivedEvent(u nexus.User, name string, received time.Time) analytics.Pending {
	ev := pendingEvent(u, name, "upkeep", received.Add(-time.Minute))
	ev.ReceivedAt = received
	id := uuid.Must(uuid.NewV7())
	ms := received.UnixMilli()
	for i := 5; i >= 0; i-- {
		id[i] = byte(ms)
		ms >>= 8
	}
	ev.ID = id.String()
	return ev
}

func TestEventPartitionsAhead(t *testing.T) {
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	s := store.NewEvents(db)
	now := time.Date(2031, 3, 30, 23, 59, 0, 0, time.UTC)
	m, err := s.MaintainEvents(ctx, now, 0)
	if err != nil {
		t.Fatalf("MaintainEvents: %v", err)
	}
	if m.Created != 8 {
		t.Errorf("first upkeep made %d partitions, want 8 (today and 7 days ahead)", m.Created)
	}
	names := partitionNames(t, db)
	for i := 0; i <= 7; i++ {
		want := "events_p" + now.AddDate(0, 0, i).Format("20060102")
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("partition %s missing; have %v", want, names)
		}
	}
	if m, err := s.MaintainEvents(ctx, now, 0); err != nil || m.Created != 0 {
		t.Errorf("second upkeep: made %d, %v; want nothing made", m.Created, err)
	}

	// Several nodes at once, a week later: each partition is made once, and no node fails.
	later := now.Add(7 * day)
	var wg sync.WaitGroup
	made := make([]int, 6)
	errs := make([]error, 6)
	for i := range made {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := store.NewEvents(db).MaintainEvents(ctx, later, 0)
			made[i], errs[i] = m.Created, err
		}()
	}
	wg.Wait()
	total := 0
	for i := range made {
		if errs[i] != nil {
			t.Errorf("node %d: %v", i, errs[i])
		}
		total += made[i]
	}
	if total != 7 {
		t.Errorf("concurrent upkeep made %d partitions in all, want 7", total)
	}

	// Making a partition does not wait for the transactions that read and write events (its lock timeout
	// is 1 s: it would fail): here one that has inserted an event and listed events, and stays open.
	org := mustOrg(t, db, "Acme")
	u := mustUser(t, db, org.ID, "ada@acme.test")
	tx, err := db.Pool().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	ev := receivedEvent(u, "open", later)
	if _, err := tx.ExecContext(ctx, `INSERT INTO events (id, organization_id, event_id, user_id, event_name, event_category, properties, occurred_at, received_at, fingerprint)
VALUES ($1, $2, $3, $4, 'open', 'upkeep', '{}', $5, $5, 'fp')`, ev.ID, ev.OrganizationID, ev.EventID, ev.UserID, ev.ReceivedAt); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "SELECT count(*) FROM events"); err != nil {
		t.Fatal(err)
	}
	if m, err := s.MaintainEvents(ctx, later.Add(3*day), 0); err != nil || m.Created != 3 {
		t.Errorf("upkeep beside an open transaction on events: made %d, %v; want 3 made", m.Created, err)
	}
	if out := mustInsertEvents(t, s, receivedEvent(u, "beside", later.Add(20*day))); out[0].Kind != analytics.Stored {
		t.Errorf("insert making its partition beside an open transaction on events: %+v", out[0])
	}
}

// TestEventPartitionOnDemand: an insert whose day has no partition (the processor never ran) makes it and is
// stored; duplicates and conflicts of that day are judged as any other.
func TestEventPartitionOnDemand(t *testing.T) {
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	s := store.NewEvents(db)
	org := mustOrg(t, db, "Acme")
	u := mustUser(t, db, org.ID, "ada@acme.test")
	received := time.Date(2040, 2, 29, 12, 0, 0, 0, time.UTC)
	before := len(partitionNames(t, db))
	first := receivedEvent(u, "a", received)
	second := receivedEvent(u, "b", received.Add(day))
	out := mustInsertEvents(t, s, first, second)
	for i := range out {
		if out[i].Kind != analytics.Stored {
			t.Fatalf("event %d: %+v, want stored", i, out[i])
		}
	}
	if got := len(partitionNames(t, db)); got != before+2 {
		t.Errorf("%d partitions after the insert, want %d", got, before+2)
	}
	dup := retryOf(first)
	conflict := retryOf(first)
	conflict.Fingerprint = "other"
	out = mustInsertEvents(t, s, dup, conflict)
	if out[0] != duplicateOutcome(first) || out[1].Kind != analytics.Conflict {
		t.Errorf("retry and conflict: %+v", out)
	}
	if _, err := s.MaintainEvents(ctx, received, 0); err != nil {
		t.Fatalf("MaintainEvents over the partitions made on demand: %v", err)
	}
}

// TestEventRetentionDropsPartitions: the upkeep drops the partitions whose last instant is older than the
// retention, with their keys (the event ids are new again), and keeps the newer ones and every rollup.
func TestEventRetentionDropsPartitions(t *testing.T) {
	db := storetest.Open(t, store.Postgres)
	ctx := context.Background()
	s := store.NewEvents(db)
	org := mustOrg(t, db, "Acme")
	u := mustUser(t, db, org.ID, "ada@acme.test")
	d0 := time.Date(2030, 1, 10, 0, 0, 0, 0, time.UTC)
	var old, kept []analytics.Pending
	for i := range 12_345 { // more than two batches of keys
		old = append(old, receivedEvent(u, "old", d0.Add(time.Duration(i)*time.Second)))
	}
	for i := range 10 {
		kept = append(kept, receivedEvent(u, "kept", d0.Add(day+time.Duration(i)*time.Hour)))
	}
	for start := 0; start < len(old); start += 1000 {
		mustInsertEvents(t, s, old[start:min(start+1000, len(old))]...)
	}
	mustInsertEvents(t, s, kept...)
	for {
		n, err := s.ProcessEvents(ctx, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	counts := func() []analytics.Count {
		c, err := s.DailyCounts(ctx, org.ID, analytics.SummaryQuery{From: "2000-01-01", To: "9999-12-31"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := counts()

	// d0's partition ends at d0+1d: with a retention of 30 days it goes at d0+31d, not a microsecond before.
	retention := 30 * day
	if m, err := s.MaintainEvents(ctx, d0.Add(31*day-time.Microsecond), retention); err != nil || m.Expired != 0 {
		t.Fatalf("upkeep just before the retention: expired %d, %v", m.Expired, err)
	}
	m, err := s.MaintainEvents(ctx, d0.Add(31*day), retention)
	if err != nil {
		t.Fatalf("MaintainEvents: %v", err)
	}
	if m.Expired != int64(len(old)) || !m.Oldest.Equal(d0.Add(day)) {
		t.Errorf("upkeep: expired %d, oldest %s; want %d and %s", m.Expired, m.Oldest, len(old), d0.Add(day))
	}
	for _, n := range partitionNames(t, db) {
		if n == "events_p20300110" {
			t.Errorf("the expired partition is still there")
		}
	}
	if n := queryCount(t, db, "SELECT count(*) FROM event_keys"); n != len(kept) {
		t.Errorf("%d keys left, want the %d of the kept events", n, len(kept))
	}
	if n := queryCount(t, db, "SELECT count(*) FROM events"); n != len(kept) {
		t.Errorf("%d events left, want %d", n, len(kept))
	}
	if diff := cmp.Diff(before, counts()); diff != "" || len(before) < 2 {
		t.Errorf("rollups changed by the retention (-before +after):\n%s", diff)
	}
	// An expired event id is new again; a kept one is still a duplicate.
	now := d0.Add(31 * day)
	again := retryOf(old[7])
	again.ReceivedAt = now
	dup := retryOf(kept[3])
	dup.ReceivedAt = now
	out := mustInsertEvents(t, s, again, dup)
	if out[0] != storedOutcome(again) || out[1] != duplicateOutcome(kept[3]) {
		t.Errorf("after the retention: %+v, want the expired event id stored anew and the kept one a duplicate", out)
	}
}

// TestEventRetentionSQLite: the retention deletes, in batches, exactly the events received before the cutoff,
// and never a rollup.
func TestEventRetentionSQLite(t *testing.T) {
	db := storetest.Open(t, store.SQLite)
	ctx := context.Background()
	s := store.NewEvents(db)
	org := mustOrg(t, db, "Acme")
	u := mustUser(t, db, org.ID, "ada@acme.test")
	d0 := time.Date(2030, 1, 10, 0, 0, 0, 0, time.UTC)
	var evs []analytics.Pending
	for i := range 12_000 { // two full batches and some
		evs = append(evs, receivedEvent(u, "e", d0.Add(time.Duration(i)*time.Second)))
	}
	for start := 0; start < len(evs); start += 1000 {
		mustInsertEvents(t, s, evs[start:min(start+1000, len(evs))]...)
	}
	cutoff := evs[10_500].ReceivedAt
	m, err := s.MaintainEvents(ctx, cutoff.Add(30*day), 30*day)
	if err != nil {
		t.Fatalf("MaintainEvents: %v", err)
	}
	if m.Expired != 10_500 {
		t.Errorf("expired %d events, want 10500", m.Expired)
	}
	if n := queryCount(t, db, "SELECT count(*) FROM events"); n != 1500 {
		t.Errorf("%d events left, want 1500", n)
	}
	if n := queryCount(t, db, "SELECT count(*) FROM events WHERE id = ?", evs[10_500].ID); n != 1 {
		t.Errorf("the event received at the cutoff was deleted")
	}
	// The backlog keeps its copies: the expired events are still counted.
	n, err := s.ProcessEvents(ctx, 20_000)
	if err != nil || n != len(evs) {
		t.Errorf("processed %d, %v; want %d", n, err, len(evs))
	}
}
