package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
)

// The helpers shared by the tests of the analytics store (store.Events), which are split by concern:
//   - events_ingest_test.go: InsertEvents (outcomes, idempotency by event_id, large and concurrent calls)
//   - events_list_test.go: ListEvents (filters, order, sub-second timestamps, properties)
//   - events_process_test.go: ProcessEvents (the rollups the summary reads, concurrency, the backlog)

// pendingEvent returns an event of u's organization about u, with new ids, received at t0, its fingerprint
// made of its name and category (what the tests vary).
func pendingEvent(u nexus.User, name, category string, at time.Time) analytics.Pending {
	return analytics.Pending{Event: analytics.Event{ID: uuid.NewString(), EventID: uuid.NewString(), OrganizationID: u.OrganizationID,
		UserID: u.ID, Name: name, Category: category, Properties: []byte(`{}`), Timestamp: at, ReceivedAt: t0},
		Fingerprint: "fp:" + name + "/" + category}
}

// retryOf returns ev as a client's retry makes it: the same event id and fingerprint, a new id, received later.
func retryOf(ev analytics.Pending) analytics.Pending {
	ev.ID = uuid.NewString()
	ev.ReceivedAt = ev.ReceivedAt.Add(time.Minute)
	return ev
}

func mustInsertEvents(t *testing.T, s *store.Events, evs ...analytics.Pending) []analytics.Outcome {
	t.Helper()
	out, err := s.InsertEvents(context.Background(), evs)
	if err != nil {
		t.Fatalf("InsertEvents: %v", err)
	}
	if len(out) != len(evs) {
		t.Fatalf("InsertEvents returned %d outcomes for %d events", len(out), len(evs))
	}
	return out
}

func storedOutcome(ev analytics.Pending) analytics.Outcome {
	return analytics.Outcome{Kind: analytics.Stored, Receipt: analytics.Receipt{ID: ev.ID, EventID: ev.EventID,
		ReceivedAt: ev.ReceivedAt, Timestamp: ev.Timestamp}}
}

// duplicateOutcome is the outcome of an event whose event id was stored as ev.
func duplicateOutcome(ev analytics.Pending) analytics.Outcome {
	o := storedOutcome(ev)
	o.Kind, o.Receipt.Duplicate = analytics.Duplicate, true
	return o
}

func checkOutcomes(t *testing.T, what string, want, got []analytics.Outcome) {
	t.Helper()
	if diff := cmp.Diff(want, got, equalTimes); diff != "" {
		t.Errorf("%s: outcomes (-want +got):\n%s", what, diff)
	}
	for _, o := range got {
		checkUTC(t, what, o.Receipt.ReceivedAt, o.Receipt.Timestamp)
	}
}

// listAll returns the ids of every event of the organization, newest first.
func listAll(t *testing.T, s *store.Events, orgID string) []string {
	t.Helper()
	evs, err := s.ListEvents(context.Background(), orgID, analytics.ListQuery{Limit: 100_000})
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

func idsOf(evs ...analytics.Pending) []string {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	return ids
}

func sortedIDs(ids []string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

func checkBacklog(t *testing.T, s *store.Events, wantN int, wantOldest time.Time) {
	t.Helper()
	n, oldest, err := s.Backlog(context.Background())
	if err != nil {
		t.Fatalf("Backlog: %v", err)
	}
	if n != wantN || !oldest.Equal(wantOldest) {
		t.Errorf("Backlog = %d, oldest received %v; want %d, %v", n, oldest, wantN, wantOldest)
	}
	checkUTC(t, "Backlog", oldest)
}

// busyRetry runs fn until it succeeds, again while it fails as unavailable on SQLite: a transaction that waited
// out the busy timeout behind other writers, which rolled back and which a client retries (slow runs, such as
// under the race detector, make it happen). On PostgreSQL fn runs once: a deadlock, also unavailable, is a bug.
func busyRetry(db *store.DB, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || db.Dialect() != store.SQLite || nexus.KindOf(err) != nexus.KindUnavailable || attempt == 10 {
			return err
		}
	}
}
