package store_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// seedV11Events writes n events straight into the events table and backlog of a database at migration 11, as
// a server of that version stores them: spread over days of receipt, alternating between the users (and so
// their organizations). It returns them.
func seedV11Events(t testing.TB, db *store.DB, us []nexus.User, first time.Time, days, n int) []analytics.Pending {
	t.Helper()
	ctx := context.Background()
	evs := make([]analytics.Pending, n)
	for i := range evs {
		u := us[i%len(us)]
		received := first.Add(time.Duration(i%days)*day + time.Duration(i)*time.Millisecond)
		evs[i] = receivedEvent(u, "v11", received)
		evs[i].Timestamp = received.Add(-time.Duration(i%5) * time.Hour)
	}
	const chunk = 1000
	for start := 0; start < n; start += chunk {
		part := evs[start:min(start+chunk, n)]
		ids, orgs, eventIDs, users := make([]string, len(part)), make([]string, len(part)), make([]string, len(part)), make([]string, len(part))
		occurred, received, fps := make([]time.Time, len(part)), make([]time.Time, len(part)), make([]string, len(part))
		for i, ev := range part {
			ids[i], orgs[i], eventIDs[i], users[i] = ev.ID, ev.OrganizationID, ev.EventID, ev.UserID
			occurred[i], received[i], fps[i] = ev.Timestamp, ev.ReceivedAt, ev.Fingerprint
		}
		_, err := db.Pool().ExecContext(ctx, `WITH e AS (
	INSERT INTO events (id, organization_id, event_id, user_id, event_name, event_category, source, properties, occurred_at, received_at, fingerprint)
	SELECT id, org, event_id, user_id, 'v11', 'upkeep', 'web', '{"a":1}', occurred, received, fp
	FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::timestamptz[], $6::timestamptz[], $7::text[]) AS t(id, org, event_id, user_id, occurred, received, fp)
	RETURNING *
)
INSERT INTO event_backlog (id, organization_id, user_id, event_name, event_category, occurred_at, received_at)
SELECT id, organization_id, user_id, event_name, event_category, occurred_at, received_at FROM e`,
			ids, orgs, eventIDs, users, occurred, received, fps)
		if err != nil {
			t.Fatalf("seed events at migration 11: %v", err)
		}
	}
	return evs
}

// eventsDigest is a digest of every stored event, column by column, in id order.
func eventsDigest(t testing.TB, db *store.DB) (int, string) {
	t.Helper()
	var n int
	var digest string
	err := db.Pool().QueryRowContext(context.Background(), `SELECT count(*), coalesce(md5(string_agg(
	concat_ws('|', id, organization_id, event_id, user_id, event_name, event_category, source, properties::text,
		extract(epoch FROM occurred_at), extract(epoch FROM received_at), fingerprint), ',' ORDER BY id)), '')
FROM events`).Scan(&n, &digest)
	if err != nil {
		t.Fatalf("digest: %v", err)
	}
	return n, digest
}

// TestMigrateEventsToPartitions migrates a database at migration 11 with events received on several days, of
// several organizations: every row is kept as it was, each day in its partition, and the listing, the
// deduplication (duplicates and conflicts of the migrated event ids) and the summary work on the migrated
// events.
func TestMigrateEventsToPartitions(t *testing.T) {
	ctx := context.Background()
	db := open(t, store.Options{URL: testdb.PostgresURL(t)})
	if _, err := db.MigrateTo(ctx, 11); err != nil {
		t.Fatalf("MigrateTo(11): %v", err)
	}
	orgA, orgB := mustOrg(t, db, "A"), mustOrg(t, db, "B")
	us := []nexus.User{mustUser(t, db, orgA.ID, "a1@a.test"), mustUser(t, db, orgB.ID, "b1@b.test"), mustUser(t, db, orgA.ID, "a2@a.test")}
	first := time.Date(2026, 10, 30, 22, 0, 0, 0, time.UTC)
	evs := seedV11Events(t, db, us, first, 5, 3000)
	n, before := eventsDigest(t, db)
	if n != len(evs) {
		t.Fatalf("%d events seeded, want %d", n, len(evs))
	}

	applied, err := db.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if len(applied) == 0 || applied[0] != 12 {
		t.Fatalf("Migrate applied %v, want 12 first", applied)
	}
	if n, after := eventsDigest(t, db); n != len(evs) || after != before {
		t.Fatalf("after the migration: %d events, digest %s; want %d events, digest %s", n, after, len(evs), before)
	}
	// Each event in the partition of its day of receipt, and one key per event.
	if n := queryCount(t, db, `SELECT count(*) FROM events e JOIN pg_class c ON c.oid = e.tableoid
WHERE c.relname = 'events_p' || to_char(e.received_at AT TIME ZONE 'UTC', 'YYYYMMDD')`); n != len(evs) {
		t.Errorf("%d events in the partition of their day, want %d", n, len(evs))
	}
	if names := partitionNames(t, db); len(names) < 6 { // 6 days (22:00 + 4 days crosses into a 6th), and today's
		t.Errorf("partitions after the migration: %v", names)
	}
	if n := queryCount(t, db, "SELECT count(*) FROM event_keys"); n != len(evs) {
		t.Errorf("%d keys, want %d", n, len(evs))
	}

	s := store.NewEvents(db)
	// The listing: organization A's events, newest first, all of them.
	var wantA int
	for _, ev := range evs {
		if ev.OrganizationID == orgA.ID {
			wantA++
		}
	}
	listed, err := s.ListEvents(ctx, orgA.ID, analytics.ListQuery{Limit: 10_000})
	if err != nil || len(listed) != wantA {
		t.Fatalf("ListEvents: %d events, %v; want %d", len(listed), err, wantA)
	}
	for i := 1; i < len(listed); i++ {
		if listed[i].Timestamp.After(listed[i-1].Timestamp) {
			t.Fatalf("listing out of order at %d", i)
		}
	}
	// Deduplication of the migrated event ids: retries are duplicates with the stored receipt, a different
	// event under the same id a conflict; a new event id is stored.
	now := time.Now().UTC().Truncate(time.Microsecond)
	dup, conflict, fresh := retryOf(evs[17]), retryOf(evs[2018]), receivedEvent(us[0], "new", now)
	dup.ReceivedAt, conflict.ReceivedAt = now, now
	conflict.Fingerprint = "another"
	out := mustInsertEvents(t, s, dup, conflict, fresh)
	if out[0] != duplicateOutcome(evs[17]) || out[1].Kind != analytics.Conflict || out[2] != storedOutcome(fresh) {
		t.Errorf("after the migration: %+v", out)
	}
	// The summary: the backlog of migration 11 is processed into the rollups, the new event too.
	processed := 0
	for {
		n, err := s.ProcessEvents(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		processed += n
	}
	if processed != len(evs)+1 {
		t.Errorf("processed %d events, want %d", processed, len(evs)+1)
	}
	counts, err := s.DailyCounts(ctx, orgA.ID, analytics.SummaryQuery{From: "2000-01-01", To: "9999-12-31"})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, c := range counts {
		total += c.Count
	}
	if total != int64(wantA+1) {
		t.Errorf("organization A's rollups count %d events, want %d", total, wantA+1)
	}
}

// TestMigrateEventsTime times migration 12 over NEXUS_MIGRATION_ROWS events (skipped when unset), for the
// numbers of the README.
func TestMigrateEventsTime(t *testing.T) {
	rows, _ := strconv.Atoi(os.Getenv("NEXUS_MIGRATION_ROWS"))
	if rows <= 0 {
		t.Skip("NEXUS_MIGRATION_ROWS unset")
	}
	ctx := context.Background()
	db := open(t, store.Options{URL: testdb.PostgresURL(t)})
	if _, err := db.MigrateTo(ctx, 11); err != nil {
		t.Fatal(err)
	}
	org := mustOrg(t, db, "A")
	us := []nexus.User{mustUser(t, db, org.ID, "a@a.test")}
	seedV11Events(t, db, us, time.Now().Add(-30*day), 30, rows)
	for _, stmt := range []string{"DELETE FROM event_backlog", "VACUUM ANALYZE events"} {
		if _, err := db.Pool().ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("migration 12 over %d events (30 days): %s", rows, time.Since(began))
}
