package httpapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// TestEventRetention runs a node with NEXUS_EVENT_RETENTION=30d: once the upkeep has run past the retention,
// the raw events of the expired day are gone from the listing and their event ids are accepted again as new
// events (the deduplication window is the retention), while the summary and the user's activity still count
// them (rollups outlive raw events), and the events within the retention stay, duplicates included.
func TestEventRetention(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnvWith(t, db, func(e *env) { e.retention = 30 * 24 * time.Hour })
		ctx := context.Background()
		admin, _ := e.tokens(webClient)
		oldID, keptID := uuid.NewString(), uuid.NewString()
		// Received on 2026-11-25 (the clock's day), and ten days later.
		old := mustAccept(t, postEvent(e, admin, map[string]any{"event_id": oldID, "event_name": "signup", "event_category": "retention",
			"timestamp": "2026-11-25T08:00:00Z"}), false)
		e.clock.Advance(10 * 24 * time.Hour)
		admin, _ = e.tokens(webClient)
		mustAccept(t, postEvent(e, admin, map[string]any{"event_id": keptID, "event_name": "signup", "event_category": "retention",
			"timestamp": "2026-12-05T08:00:00Z"}), false)
		_, err := e.pipe.Processor.Drain(ctx)
		must(t, err)

		summaryTotal := func(token string) float64 {
			t.Helper()
			r := e.do("GET", summaryPath+"?from=2026-11-01&to=2026-12-31&category=retention", nil, bearer(token)...)
			if r.status != http.StatusOK {
				t.Fatalf("summary: %d %s", r.status, r.body)
			}
			return r.obj(t)["total"].(float64)
		}
		activityTotal := func(token string) float64 {
			t.Helper()
			r := e.do("GET", "/v2/users/"+e.admin.ID+"?include_activity=true", nil, bearer(token)...)
			if r.status != http.StatusOK {
				t.Fatalf("user with activity: %d %s", r.status, r.body)
			}
			return r.obj(t)["activity"].(map[string]any)["events"].(map[string]any)["total"].(float64)
		}
		if n, a := summaryTotal(admin), activityTotal(admin); n != 2 || a != 2 {
			t.Fatalf("before the retention: summary total %v, activity total %v, want 2 and 2", n, a)
		}
		must(t, e.pipe.Processor.Maintain(ctx))
		if n := countEvents(t, e, admin); n != 2 {
			t.Fatalf("%d events listed within the retention, want 2", n)
		}

		// 2026-12-27 10:00: the day of 2026-11-25 ended more than 30 days ago; 2026-12-05 did not.
		e.clock.Advance(22*24*time.Hour + time.Hour)
		admin, _ = e.tokens(webClient)
		must(t, e.pipe.Processor.Maintain(ctx))
		if st := e.pipe.Processor.Stats(); st.Expired != 1 || st.OldestDay.IsZero() || st.OldestDay.Before(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("processor stats after the upkeep: expired %d, oldest day %s; want 1 expired, the oldest day after 2026-11-25",
				st.Expired, st.OldestDay)
		}
		mv := metricValues(t, e)
		if mv["nexus_events_expired_total"] != 1 || mv["nexus_events_oldest_day_timestamp_seconds"] < float64(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC).Unix()) ||
			(db.Dialect() == store.Postgres) != (mv["nexus_events_partitions"] > 0) {
			t.Errorf("metrics after the upkeep: expired %v, oldest day %v, partitions %v", mv["nexus_events_expired_total"],
				mv["nexus_events_oldest_day_timestamp_seconds"], mv["nexus_events_partitions"])
		}
		listed := listAllEvents(t, e, admin, "category=retention", 0)
		if len(listed) != 1 || listed[0]["event_id"] != keptID {
			t.Fatalf("listing after the retention: %v, want only %s", listed, keptID)
		}
		if n, a := summaryTotal(admin), activityTotal(admin); n != 2 || a != 2 {
			t.Fatalf("after the retention: summary total %v, activity total %v, want 2 and 2 (rollups outlive raw events)", n, a)
		}
		// The expired event id is new again; the kept one is still a duplicate.
		again := mustAccept(t, postEvent(e, admin, map[string]any{"event_id": oldID, "event_name": "signup", "event_category": "retention",
			"timestamp": "2026-11-25T08:00:00Z"}), false)
		if again["id"] == old["id"] {
			t.Errorf("the expired event id was answered with the expired event's receipt %v", old["id"])
		}
		mustAccept(t, postEvent(e, admin, map[string]any{"event_id": keptID, "event_name": "signup", "event_category": "retention",
			"timestamp": "2026-12-05T08:00:00Z"}), true)
		_, err = e.pipe.Processor.Drain(ctx)
		must(t, err)
		if n := summaryTotal(admin); n != 3 {
			t.Errorf("summary total %v after the expired event id came again, want 3", n)
		}
		if got := eventIDCount(t, e, admin, oldID); got != 1 {
			t.Errorf("the expired event id is listed %d times, want once (as the new event)", got)
		}
	})
}

// TestEventIngestWithoutPartition proves on PostgreSQL that an event received on a day whose partition the
// processor has not made (the clock far ahead of the partitions made) is stored: the insert makes the partition
// itself, once, and the next event of that day, and a duplicate, find it.
func TestEventIngestWithoutPartition(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		e.clock.Advance(400 * 24 * time.Hour)
		admin, _ := e.tokens(webClient)
		id := uuid.NewString()
		for _, dup := range []bool{false, true} {
			mustAccept(t, postEvent(e, admin, map[string]any{"event_id": id, "event_name": "late", "event_category": "partitions"}), dup)
		}
		// A day later, in a batch.
		e.clock.Advance(24 * time.Hour)
		admin, _ = e.tokens(webClient)
		r := e.do("POST", batchPath, map[string]any{"events": []any{newEvent("late"), newEvent("late")}}, bearer(admin)...)
		if r.status != http.StatusAccepted || r.obj(t)["accepted"] != float64(2) {
			t.Fatalf("batch on a day without a partition: %d %s", r.status, r.body)
		}
		if n := countEvents(t, e, admin); n != 3 {
			t.Errorf("%d events listed, want 3", n)
		}
	})
}
