package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

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

func TestInsertEventsOutcomes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		ada, grace := mustUser(t, db, acme.ID, "ada@example.com"), mustUser(t, db, acme.ID, "grace@example.com")
		alan := mustUser(t, db, globex.ID, "alan@example.com")
		s := store.NewEvents(db)

		a := pendingEvent(ada, "click", "ui", t0.Add(-time.Hour))
		checkOutcomes(t, "new event", []analytics.Outcome{storedOutcome(a)}, mustInsertEvents(t, s, a))

		// A retry: the first event's receipt, marked duplicate, whatever the retry's own times.
		retry := retryOf(a)
		retry.Timestamp = t0 // as the receive time of an event sent without a timestamp
		checkOutcomes(t, "retry", []analytics.Outcome{duplicateOutcome(a)}, mustInsertEvents(t, s, retry))

		// The same event id with other content.
		other := retryOf(a)
		other.Name, other.Fingerprint = "clack", "fp:clack/ui"
		checkOutcomes(t, "other content", []analytics.Outcome{{Kind: analytics.Conflict}}, mustInsertEvents(t, s, other))

		// The same event id in another organization is another event.
		elsewhere := pendingEvent(alan, "view", "nav", t0)
		elsewhere.EventID = a.EventID
		checkOutcomes(t, "other organization", []analytics.Outcome{storedOutcome(elsewhere)}, mustInsertEvents(t, s, elsewhere))
		elsewhereRetry := retryOf(elsewhere)
		checkOutcomes(t, "retry in the other organization", []analytics.Outcome{duplicateOutcome(elsewhere)},
			mustInsertEvents(t, s, elsewhereRetry))

		// One call (as a writer's group makes) with the same event id in both organizations.
		shared := uuid.NewString()
		inAcme, inGlobex := pendingEvent(grace, "click", "ui", t0), pendingEvent(alan, "click", "ui", t0)
		inAcme.EventID, inGlobex.EventID = shared, shared
		checkOutcomes(t, "one event id, two organizations, one call",
			[]analytics.Outcome{storedOutcome(inAcme), storedOutcome(inGlobex), duplicateOutcome(inAcme), duplicateOutcome(inGlobex)},
			mustInsertEvents(t, s, inAcme, inGlobex, retryOf(inAcme), retryOf(inGlobex)))

		// One call with repeats: each event id stored once, judged against the first of the call.
		b := pendingEvent(ada, "view", "ui", t0.Add(-2*time.Hour))
		bConflict := retryOf(b)
		bConflict.Category, bConflict.Fingerprint = "nav", "fp:view/nav"
		c := pendingEvent(grace, "click", "nav", t0.Add(-3*time.Hour))
		aAgain := retryOf(a)
		checkOutcomes(t, "repeats in one call",
			[]analytics.Outcome{storedOutcome(b), duplicateOutcome(b), {Kind: analytics.Conflict}, storedOutcome(c),
				duplicateOutcome(b), duplicateOutcome(a), duplicateOutcome(c)},
			mustInsertEvents(t, s, b, retryOf(b), bConflict, c, retryOf(b), aAgain, retryOf(c)))

		// Users that must be checked.
		checked := func(ev analytics.Pending) analytics.Pending { ev.CheckUser = true; return ev }
		d := checked(pendingEvent(grace, "click", "ui", t0))
		stranger := checked(pendingEvent(alan, "click", "ui", t0)) // a user of another organization
		stranger.OrganizationID = acme.ID
		ghost := checked(pendingEvent(ada, "click", "ui", t0)) // no user at all
		ghost.UserID = uuid.NewString()
		fixed := checked(pendingEvent(ada, "click", "ui", t0)) // the stranger's event id, with a user of acme
		fixed.EventID = stranger.EventID
		checkOutcomes(t, "checked users",
			[]analytics.Outcome{storedOutcome(d), {Kind: analytics.UnknownUser}, {Kind: analytics.UnknownUser}, storedOutcome(fixed)},
			mustInsertEvents(t, s, d, stranger, ghost, fixed))
		// A whole call of unknown users stores nothing.
		ghost2 := checked(pendingEvent(ada, "click", "ui", t0))
		ghost2.UserID = uuid.NewString()
		checkOutcomes(t, "only unknown users", []analytics.Outcome{{Kind: analytics.UnknownUser}}, mustInsertEvents(t, s, ghost2))

		if diff := cmp.Diff(sortedIDs(idsOf(a, b, c, d, fixed, inAcme)), sortedIDs(listAll(t, s, acme.ID))); diff != "" {
			t.Errorf("events of Acme (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(sortedIDs(idsOf(elsewhere, inGlobex)), sortedIDs(listAll(t, s, globex.ID))); diff != "" {
			t.Errorf("events of Globex (-want +got):\n%s", diff)
		}
		checkBacklog(t, s, 8, t0)
	})
}

func TestInsertEventsLargeCall(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		acme := mustOrg(t, db, "Acme")
		ada := mustUser(t, db, acme.ID, "ada@example.com")
		s := store.NewEvents(db)
		// More than one multi-row statement's worth of events in each part.
		old := make([]analytics.Pending, 700)
		for i := range old {
			old[i] = pendingEvent(ada, "old", "ui", t0.Add(-time.Duration(i)*time.Second))
		}
		mustInsertEvents(t, s, old...)

		var call []analytics.Pending
		for _, ev := range old {
			call = append(call, retryOf(ev))
		}
		fresh := make([]analytics.Pending, 1100)
		for i := range fresh {
			fresh[i] = pendingEvent(ada, "new", "ui", t0.Add(time.Duration(i)*time.Second))
			call = append(call, fresh[i])
			if i%100 == 0 {
				call = append(call, retryOf(fresh[i]))
			}
		}
		rand.Shuffle(len(call), func(i, j int) { call[i], call[j] = call[j], call[i] })
		// The first of each event id is stored (unless it was before the call); the others are its duplicates.
		first := map[string]analytics.Pending{}
		for _, ev := range old {
			first[ev.EventID] = ev
		}
		var want []analytics.Outcome
		for _, ev := range call {
			if f, ok := first[ev.EventID]; ok {
				want = append(want, duplicateOutcome(f))
				continue
			}
			first[ev.EventID] = ev
			want = append(want, storedOutcome(ev))
		}
		checkOutcomes(t, "large call", want, mustInsertEvents(t, s, call...))
		if got := len(listAll(t, s, acme.ID)); got != len(old)+len(fresh) {
			t.Errorf("%d events stored, want %d", got, len(old)+len(fresh))
		}
		checkBacklog(t, s, len(old)+len(fresh), t0)
	})
}

func TestInsertEventsConcurrentSameEventID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		acme := mustOrg(t, db, "Acme")
		ada := mustUser(t, db, acme.ID, "ada@example.com")
		s := store.NewEvents(db)
		base := pendingEvent(ada, "click", "ui", t0)

		const n = 50
		evs := make([]analytics.Pending, n)
		outs := make([]analytics.Outcome, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range evs {
			evs[i] = retryOf(base)
			evs[i].ReceivedAt = t0.Add(time.Duration(i) * time.Millisecond)
			wg.Go(func() {
				<-start
				out, err := s.InsertEvents(context.Background(), evs[i:i+1])
				errs[i] = err
				if err == nil {
					outs[i] = out[0]
				}
			})
		}
		close(start)
		wg.Wait()

		var winner *analytics.Pending
		for i, o := range outs {
			if errs[i] != nil {
				t.Fatalf("InsertEvents %d: %v", i, errs[i])
			}
			if o.Kind == analytics.Stored {
				if winner != nil {
					t.Fatalf("the event id was stored twice: %s and %s", winner.ID, evs[i].ID)
				}
				winner = &evs[i]
			}
		}
		if winner == nil {
			t.Fatalf("no insert stored the event: %+v", outs)
		}
		for i, o := range outs {
			want := duplicateOutcome(*winner)
			if &evs[i] == winner {
				want = storedOutcome(*winner)
			}
			checkOutcomes(t, fmt.Sprintf("insert %d", i), []analytics.Outcome{want}, []analytics.Outcome{o})
		}
		if diff := cmp.Diff([]string{winner.ID}, listAll(t, s, acme.ID)); diff != "" {
			t.Errorf("events stored (-want +got):\n%s", diff)
		}
		checkBacklog(t, s, 1, winner.ReceivedAt)
	})
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

// TestInsertEventsConcurrentOverlapping has transactions insert the same event ids in different orders: none may
// deadlock, and each event id is stored by exactly one of them. (Several rounds: the first one also opens the
// pool's connections, which staggers its transactions.)
func TestInsertEventsConcurrentOverlapping(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		acme := mustOrg(t, db, "Acme")
		ada := mustUser(t, db, acme.ID, "ada@example.com")
		s := store.NewEvents(db)
		const rounds, writers = 3, 8
		events := 600
		if db.Dialect() == store.SQLite {
			// One write transaction at a time: a lighter load, so that no writer waits out the busy timeout
			// (10 s) under the race detector.
			events = 150
		}
		for round := range rounds {
			base := make([]analytics.Pending, events)
			for i := range base {
				base[i] = pendingEvent(ada, "click", "ui", t0.Add(time.Duration(i)*time.Second))
			}
			outs := make([][]analytics.Outcome, writers)
			calls := make([][]analytics.Pending, writers)
			errs := make([]error, writers)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for w := range writers {
				call := make([]analytics.Pending, len(base))
				for i, j := range rand.Perm(len(base)) {
					call[i] = retryOf(base[j])
				}
				calls[w] = call
				wg.Go(func() {
					<-start
					errs[w] = busyRetry(db, func() (err error) {
						outs[w], err = s.InsertEvents(context.Background(), call)
						return err
					})
				})
			}
			close(start)
			wg.Wait()

			storedBy := map[string]string{} // event id → id of the event stored
			for w := range writers {
				if errs[w] != nil {
					t.Fatalf("round %d: InsertEvents %d: %v (transactions with overlapping event ids must wait for each other, not deadlock)",
						round, w, errs[w])
				}
				for i, o := range outs[w] {
					if o.Kind == analytics.Stored {
						if prev, ok := storedBy[calls[w][i].EventID]; ok {
							t.Errorf("event id %s stored as %s and %s", calls[w][i].EventID, prev, o.Receipt.ID)
						}
						storedBy[calls[w][i].EventID] = o.Receipt.ID
					}
				}
			}
			bad := 0
			for w := range writers {
				for i, o := range outs[w] {
					id := storedBy[calls[w][i].EventID]
					if o.Kind != analytics.Stored && (o.Kind != analytics.Duplicate || o.Receipt.ID != id) {
						if bad++; bad <= 5 {
							t.Errorf("writer %d event %d: outcome %+v, want stored or a duplicate of %s", w, i, o, id)
						}
					}
				}
			}
			if len(storedBy) != len(base) {
				t.Errorf("round %d: %d event ids stored, want %d", round, len(storedBy), len(base))
			}
		}
		if got := len(listAll(t, s, acme.ID)); got != rounds*events {
			t.Errorf("%d events stored, want %d", got, rounds*events)
		}
		checkBacklog(t, s, rounds*events, t0.Add(time.Minute))
	})
}

func TestListEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		ada, grace := mustUser(t, db, acme.ID, "ada@example.com"), mustUser(t, db, acme.ID, "grace@example.com")
		alan := mustUser(t, db, globex.ID, "alan@example.com")
		s := store.NewEvents(db)

		h := time.Hour
		specs := []struct {
			user           nexus.User
			name, category string
			source         string
			at             time.Time
		}{
			{ada, "click", "ui", "web", t0.Add(-3 * h)},
			{ada, "click", "ui", "", t0.Add(-3 * h)},
			{grace, "view", "ui", "web", t0.Add(-3 * h)},
			{ada, "view", "nav", "ios", t0.Add(-2 * h)},
			{grace, "click", "nav", "", t0.Add(-h)},
			{ada, "click", "nav", "web", t0.Add(-h)},
			{ada, "click", "ui", "web", t0.Add(-h + time.Microsecond)},
			{grace, "click", "ui", "ios", t0.Add(-h - time.Microsecond)},
			{ada, "view", "ui", "web", t0.In(time.FixedZone("UTC-7", -7*3600))},
			{grace, "view", "nav", "web", t0.Add(24 * h)},
			{ada, "click", "ui", "web", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
			{alan, "click", "ui", "web", t0.Add(-3 * h)}, // Globex, at Acme's times
			{alan, "click", "ui", "web", t0.Add(-h)},
		}
		var all []analytics.Event
		var pend []analytics.Pending
		for i, sp := range specs {
			p := pendingEvent(sp.user, sp.name, sp.category, sp.at)
			p.Source = sp.source
			p.Properties = []byte(fmt.Sprintf(`{"n":%d}`, i))
			p.ReceivedAt = t0.Add(time.Duration(i) * time.Second)
			pend = append(pend, p)
			ev := p.Event
			ev.Timestamp = ev.Timestamp.UTC()
			all = append(all, ev)
		}
		// In two calls, neither in the listing's order.
		mustInsertEvents(t, s, pend[7:]...)
		mustInsertEvents(t, s, pend[:7]...)

		// want is the listing computed here: the organization's events that match, newest first by timestamp
		// then id, up to limit+1.
		want := func(orgID string, q analytics.ListQuery) []analytics.Event {
			var out []analytics.Event
			for _, ev := range all {
				if ev.OrganizationID != orgID || q.Name != "" && ev.Name != q.Name || q.Category != "" && ev.Category != q.Category ||
					q.Source != "" && ev.Source != q.Source || q.UserID != "" && !strings.EqualFold(ev.UserID, q.UserID) ||
					q.From != nil && ev.Timestamp.Before(*q.From) || q.To != nil && !ev.Timestamp.Before(*q.To) {
					continue
				}
				if q.After != nil && (ev.Timestamp.After(q.After.Timestamp) || ev.Timestamp.Equal(q.After.Timestamp) && ev.ID >= q.After.ID) {
					continue
				}
				out = append(out, ev)
			}
			sort.Slice(out, func(i, j int) bool {
				if !out[i].Timestamp.Equal(out[j].Timestamp) {
					return out[i].Timestamp.After(out[j].Timestamp)
				}
				return out[i].ID > out[j].ID
			})
			if len(out) > q.Limit+1 {
				out = out[:q.Limit+1]
			}
			return out
		}
		// The three events at t0-3h, in listing order.
		ties := want(acme.ID, analytics.ListQuery{Limit: 100, From: ptr(t0.Add(-3 * h)), To: ptr(t0.Add(-3*h + 1))})
		if len(ties) != 3 {
			t.Fatalf("%d events at t0-3h, want 3", len(ties))
		}

		tests := []struct {
			name string
			org  string
			q    analytics.ListQuery
		}{
			{"everything", acme.ID, analytics.ListQuery{}},
			{"a page", acme.ID, analytics.ListQuery{Limit: 3}},
			{"one", acme.ID, analytics.ListQuery{Limit: 1}},
			{"by name", acme.ID, analytics.ListQuery{Name: "click"}},
			{"by category", acme.ID, analytics.ListQuery{Category: "nav"}},
			{"by source", acme.ID, analytics.ListQuery{Source: "ios"}},
			{"by user", acme.ID, analytics.ListQuery{UserID: grace.ID}},
			{"by user in upper case", acme.ID, analytics.ListQuery{UserID: strings.ToUpper(grace.ID)}},
			{"from, inclusive", acme.ID, analytics.ListQuery{From: ptr(t0.Add(-h))}},
			{"to, exclusive", acme.ID, analytics.ListQuery{To: ptr(t0.Add(-h))}},
			{"from and to", acme.ID, analytics.ListQuery{From: ptr(t0.Add(-2 * h)), To: ptr(t0.Add(-h + time.Microsecond))}},
			{"from and to in another zone", acme.ID, analytics.ListQuery{From: ptr(t0.Add(-2 * h).In(time.FixedZone("UTC+9", 9*3600))),
				To: ptr(t0.Add(-h + time.Microsecond).In(time.FixedZone("UTC-3", -3*3600)))}},
			{"everything at once", acme.ID, analytics.ListQuery{Name: "click", Category: "ui", Source: "web", UserID: ada.ID,
				From: ptr(t0.Add(-4 * h)), To: ptr(t0)}},
			{"nothing matches", acme.ID, analytics.ListQuery{Name: "click", Category: "ui", UserID: grace.ID, Source: "web"}},
			{"after the first of a tie", acme.ID, analytics.ListQuery{After: &analytics.Cursor{Timestamp: ties[0].Timestamp, ID: ties[0].ID}}},
			{"after the middle of a tie", acme.ID, analytics.ListQuery{After: &analytics.Cursor{Timestamp: ties[1].Timestamp, ID: ties[1].ID}}},
			{"after the last of a tie", acme.ID, analytics.ListQuery{After: &analytics.Cursor{Timestamp: ties[2].Timestamp, ID: ties[2].ID}}},
			{"after a time between events", acme.ID, analytics.ListQuery{After: &analytics.Cursor{Timestamp: t0.Add(-h + time.Nanosecond*1000), ID: "00000000-0000-0000-0000-000000000000"}}},
			{"after, with a filter", acme.ID, analytics.ListQuery{Name: "click", Limit: 2,
				After: &analytics.Cursor{Timestamp: t0.Add(-h), ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}}},
			{"after the oldest", acme.ID, analytics.ListQuery{After: &analytics.Cursor{Timestamp: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
				ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"}}},
			{"another organization", globex.ID, analytics.ListQuery{}},
			{"an organization without events", uuid.NewString(), analytics.ListQuery{}},
			{"a user of another organization", acme.ID, analytics.ListQuery{UserID: alan.ID}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				q := tt.q
				if q.Limit == 0 {
					q.Limit = 100
				}
				got, err := s.ListEvents(ctx, tt.org, q)
				if err != nil {
					t.Fatalf("ListEvents: %v", err)
				}
				w := want(tt.org, q)
				if w == nil {
					w = []analytics.Event{}
				}
				if diff := cmp.Diff(w, got, equalTimes); diff != "" {
					t.Errorf("ListEvents (-want +got):\n%s", diff)
				}
				for _, ev := range got {
					checkUTC(t, "event", ev.Timestamp, ev.ReceivedAt)
				}
			})
		}

		// Ids that are not UUIDs match nothing, without an error.
		for _, bad := range []string{"not-a-uuid", "' OR '1'='1"} {
			if got, err := s.ListEvents(ctx, bad, analytics.ListQuery{Limit: 10}); err != nil || len(got) != 0 {
				t.Errorf("ListEvents(organization %q) = %v, %v; want none", bad, got, err)
			}
			if got, err := s.ListEvents(ctx, acme.ID, analytics.ListQuery{Limit: 10, UserID: bad}); err != nil || len(got) != 0 {
				t.Errorf("ListEvents(user %q) = %v, %v; want none", bad, got, err)
			}
		}

		// Paging with the last event of each page as the cursor walks every event once, in order.
		for _, q := range []analytics.ListQuery{{Limit: 2}, {Limit: 3, Name: "click"}, {Limit: 1, UserID: ada.ID}} {
			var walked []analytics.Event
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatalf("paging %+v does not end", q)
				}
				got, err := s.ListEvents(ctx, acme.ID, q)
				if err != nil {
					t.Fatalf("ListEvents: %v", err)
				}
				if len(got) <= q.Limit {
					walked = append(walked, got...)
					break
				}
				walked = append(walked, got[:q.Limit]...)
				last := got[q.Limit-1]
				q.After = &analytics.Cursor{Timestamp: last.Timestamp, ID: last.ID}
			}
			q.After, q.Limit = nil, 1000
			if diff := cmp.Diff(want(acme.ID, q), walked, equalTimes); diff != "" {
				t.Errorf("paging %+v (-want +got):\n%s", q, diff)
			}
		}
	})
}

// TestListEventsSubsecond orders and filters timestamps whose fractions of a second have different lengths
// (SQLite compares the stored text: "09:30:15+00:00", "09:30:15.05+00:00", "09:30:15.5+00:00").
func TestListEventsSubsecond(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme := mustOrg(t, db, "Acme")
		ada := mustUser(t, db, acme.ID, "ada@example.com")
		s := store.NewEvents(db)
		sec := time.Date(2030, 5, 17, 9, 30, 15, 0, time.UTC)
		offsets := []time.Duration{999999 * time.Microsecond, 0, 500 * time.Millisecond, time.Microsecond, 50 * time.Millisecond,
			time.Second, 100 * time.Microsecond, 10 * time.Microsecond, 510 * time.Millisecond, -time.Microsecond, 5 * time.Millisecond}
		var evs []analytics.Pending
		for _, d := range offsets {
			ev := pendingEvent(ada, "click", "ui", sec.Add(d))
			ev.ReceivedAt = sec.Add(d)
			evs = append(evs, ev)
		}
		mustInsertEvents(t, s, evs...)
		newestFirst := slices.Clone(evs)
		sort.Slice(newestFirst, func(i, j int) bool { return newestFirst[i].Timestamp.After(newestFirst[j].Timestamp) })
		times := func(evs []analytics.Event) []time.Time {
			ts := []time.Time{}
			for _, ev := range evs {
				ts = append(ts, ev.Timestamp)
			}
			return ts
		}
		var want []time.Time
		for _, ev := range newestFirst {
			want = append(want, ev.Timestamp)
		}

		got, err := s.ListEvents(ctx, acme.ID, analytics.ListQuery{Limit: 100})
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		if diff := cmp.Diff(want, times(got), equalTimes); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		// Every boundary, as From, To and cursor.
		for i, ev := range newestFirst {
			at := ev.Timestamp
			from, err := s.ListEvents(ctx, acme.ID, analytics.ListQuery{Limit: 100, From: &at})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want[:i+1], times(from), equalTimes); diff != "" {
				t.Errorf("From %v (-want +got):\n%s", at, diff)
			}
			to, err := s.ListEvents(ctx, acme.ID, analytics.ListQuery{Limit: 100, To: &at})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want[i+1:], times(to), equalTimes); diff != "" {
				t.Errorf("To %v (-want +got):\n%s", at, diff)
			}
			after, err := s.ListEvents(ctx, acme.ID, analytics.ListQuery{Limit: 100, After: &analytics.Cursor{Timestamp: at, ID: ev.ID}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want[i+1:], times(after), equalTimes); diff != "" {
				t.Errorf("After %v (-want +got):\n%s", at, diff)
			}
		}
		checkBacklog(t, s, len(evs), sec.Add(-time.Microsecond))
	})
}

// TestEventPropertiesRoundTrip stores properties and reads them back byte for byte: what is stored is what was
// fingerprinted, so a database that normalizes JSON (PostgreSQL's jsonb) would break retries.
func TestEventPropertiesRoundTrip(t *testing.T) {
	props := []string{
		`{}`,
		`{"a":1}`,
		`{"z":1,"a":2}`,
		`{ "spaced" : [ 1, 2 ] }`,
		`{"n":12345678901234567890,"f":0.1000000000000000055511151231257827,"e":1E+400,"m":-0,"d":1.50}`,
		`{"h":"<a href=\"x\">&amp;</a>"}`,
		`{"u":"café 日本語 😀","e":"\u2028\u2029","q":"\"\\/\b\f\n\r\t"}`,
		`{"r":"` + "\uFFFD" + `"}`,
		`{"a":"\\u0000 is text here"}`,
		`{"dup":1,"dup":2}`,
		`{"a":{"b":{"c":{"d":{"e":[null,true,false]}}}}}`,
		`{"big":"` + strings.Repeat("xé", 10_000) + `"}`,
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		acme := mustOrg(t, db, "Acme")
		ada := mustUser(t, db, acme.ID, "ada@example.com")
		s := store.NewEvents(db)
		want := map[string]string{}
		var evs []analytics.Pending
		for i, p := range props {
			ev := pendingEvent(ada, "click", "ui", t0.Add(time.Duration(i)*time.Second))
			ev.Properties = []byte(p)
			want[ev.ID] = p
			evs = append(evs, ev)
		}
		mustInsertEvents(t, s, evs...)
		got, err := s.ListEvents(context.Background(), acme.ID, analytics.ListQuery{Limit: 100})
		if err != nil {
			t.Fatalf("ListEvents: %v", err)
		}
		if len(got) != len(props) {
			t.Fatalf("%d events read back, want %d", len(got), len(props))
		}
		for _, ev := range got {
			if string(ev.Properties) != want[ev.ID] {
				t.Errorf("properties stored as\n%.300q\nread back as\n%.300q", want[ev.ID], ev.Properties)
			}
		}
	})
}

// drainEvents runs ProcessEvents with the given limit until it processes nothing, and returns how many it
// processed.
func drainEvents(t *testing.T, s *store.Events, limit int) int {
	t.Helper()
	total := 0
	for {
		n, err := s.ProcessEvents(context.Background(), limit)
		if err != nil {
			t.Fatalf("ProcessEvents: %v", err)
		}
		if n < 0 || n > limit {
			t.Fatalf("ProcessEvents(%d) = %d", limit, n)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

// rollups is what the processor should have made of some events.
type rollups struct {
	daily map[string]map[analytics.Count]bool // by organization; counts with Count set
	users map[string]users.EventActivity      // by user id; Days over the activity window ending at now
}

// expectedRollups computes, here, the rollups of the events and the users' activity as of now.
func expectedRollups(evs []analytics.Pending, now time.Time) rollups {
	type dayKey struct{ org, day, name, category string }
	daily := map[dayKey]int64{}
	type userDay struct{ user, day string }
	perDay := map[userDay]int64{}
	r := rollups{daily: map[string]map[analytics.Count]bool{}, users: map[string]users.EventActivity{}}
	firstDay := analytics.Day(now.Add(-users.ActivityWindow + 24*time.Hour))
	for _, ev := range evs {
		day := analytics.Day(ev.Timestamp)
		daily[dayKey{ev.OrganizationID, day, ev.Name, ev.Category}]++
		a := r.users[ev.UserID]
		a.Total++
		if ev.Timestamp.After(a.LastEventAt) {
			a.LastEventAt = ev.Timestamp.UTC()
		}
		r.users[ev.UserID] = a
		if day >= firstDay {
			perDay[userDay{ev.UserID, day}]++
		}
	}
	for k, n := range daily {
		if r.daily[k.org] == nil {
			r.daily[k.org] = map[analytics.Count]bool{}
		}
		r.daily[k.org][analytics.Count{Day: k.day, Name: k.name, Category: k.category, Count: n}] = true
	}
	for k, n := range perDay {
		a := r.users[k.user]
		a.Days = append(a.Days, users.DayCount{Day: k.day, Count: n})
		r.users[k.user] = a
	}
	for id, a := range r.users {
		sort.Slice(a.Days, func(i, j int) bool { return a.Days[i].Day < a.Days[j].Day })
		r.users[id] = a
	}
	return r
}

// checkRollups compares the organizations' daily counts (over every day) and the users' event activity with
// what the events should have made.
func checkRollups(t *testing.T, db *store.DB, evs []analytics.Pending, orgs []string, us []nexus.User, now time.Time) {
	t.Helper()
	ctx := context.Background()
	want := expectedRollups(evs, now)
	s := store.NewEvents(db)
	for _, org := range orgs {
		got, err := s.DailyCounts(ctx, org, analytics.SummaryQuery{From: "2000-01-01", To: "9999-12-31"})
		if err != nil {
			t.Fatalf("DailyCounts: %v", err)
		}
		var wantCounts []analytics.Count
		for c := range want.daily[org] {
			wantCounts = append(wantCounts, c)
		}
		sortCounts(wantCounts)
		if wantCounts == nil {
			wantCounts = []analytics.Count{}
		}
		if diff := cmp.Diff(wantCounts, got); diff != "" {
			t.Errorf("DailyCounts of %s (-want +got):\n%s", org, diff)
		}
	}
	for _, u := range us {
		a, err := store.NewUsers(db).LoginActivity(ctx, u.OrganizationID, u.ID, now.Add(-users.ActivityWindow), now, 0)
		if err != nil {
			t.Fatalf("LoginActivity: %v", err)
		}
		if diff := cmp.Diff(want.users[u.ID], a.Events, equalTimes); diff != "" {
			t.Errorf("event activity of %s (-want +got):\n%s", u.Email, diff)
		}
		checkUTC(t, "LastEventAt", a.Events.LastEventAt)
	}
}

func cnt(day, name, category string, n int64) analytics.Count {
	return analytics.Count{Day: day, Name: name, Category: category, Count: n}
}

func sortCounts(cs []analytics.Count) {
	sort.Slice(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Day != b.Day {
			return a.Day < b.Day
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Category < b.Category
	})
}

func TestProcessEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := t0
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		ada, grace := mustUser(t, db, acme.ID, "ada@example.com"), mustUser(t, db, acme.ID, "grace@example.com")
		alan := mustUser(t, db, globex.ID, "alan@example.com")
		idle := mustUser(t, db, acme.ID, "idle@example.com")
		everyone := []nexus.User{ada, grace, alan, idle}
		orgs := []string{acme.ID, globex.ID}
		s := store.NewEvents(db)
		day := 24 * time.Hour
		midnight := time.Date(2030, 5, 17, 0, 0, 0, 0, time.UTC)

		evs := []analytics.Pending{
			pendingEvent(ada, "click", "ui", now.Add(-time.Hour)),
			pendingEvent(ada, "click", "ui", now.Add(-time.Hour)),
			pendingEvent(ada, "view", "ui", now.Add(-25*time.Hour)),
			pendingEvent(ada, "click", "ui", midnight.Add(-time.Microsecond)), // the 16th
			pendingEvent(ada, "click", "ui", midnight),                        // the 17th
			pendingEvent(ada, "click", "nav", now.Add(-40*day)),               // before the activity window
			pendingEvent(ada, "click", "nav", now.Add(-29*day)),               // the window's first day
			pendingEvent(ada, "click", "nav", now.Add(-30*day)),               // the day before it
			pendingEvent(grace, "click", "ui", now.Add(-2*time.Hour)),
			pendingEvent(grace, "view", "nav", now.Add(30*time.Minute).In(time.FixedZone("UTC+14", 14*3600))),
			pendingEvent(alan, "click", "ui", now.Add(-time.Hour)),
		}
		for i := range evs {
			evs[i].ReceivedAt = now.Add(time.Duration(len(evs)-i) * time.Second)
		}
		mustInsertEvents(t, s, evs...)
		checkBacklog(t, s, len(evs), now.Add(time.Second))

		// Nothing is counted before processing.
		checkRollups(t, db, nil, orgs, everyone, now)

		if n := drainEvents(t, s, 3); n != len(evs) {
			t.Errorf("processed %d events, want %d", n, len(evs))
		}
		checkBacklog(t, s, 0, time.Time{})
		checkRollups(t, db, evs, orgs, everyone, now)

		// Retries store nothing and count nothing.
		var retries []analytics.Pending
		for _, ev := range evs {
			retries = append(retries, retryOf(ev))
		}
		mustInsertEvents(t, s, retries...)
		checkBacklog(t, s, 0, time.Time{})
		if n := drainEvents(t, s, 100); n != 0 {
			t.Errorf("processed %d events after retries only, want 0", n)
		}
		checkRollups(t, db, evs, orgs, everyone, now)

		// New events add to the counts; an older one leaves the last event time alone.
		more := []analytics.Pending{
			pendingEvent(ada, "click", "ui", now.Add(-time.Hour)),
			pendingEvent(ada, "click", "ui", now.Add(-10*day)),
			pendingEvent(grace, "click", "ui", now.Add(-3*day)),
			pendingEvent(idle, "view", "ui", now.Add(-5*day)),
		}
		mustInsertEvents(t, s, more...)
		checkBacklog(t, s, len(more), t0)
		if n := drainEvents(t, s, 1); n != len(more) {
			t.Errorf("processed %d events, want %d", n, len(more))
		}
		evs = append(evs, more...)
		checkRollups(t, db, evs, orgs, everyone, now)

		// The summary's selections.
		tests := []struct {
			name string
			org  string
			q    analytics.SummaryQuery
			want []analytics.Count
		}{
			{"one day", acme.ID, analytics.SummaryQuery{From: "2030-05-16", To: "2030-05-16"},
				[]analytics.Count{cnt("2030-05-16", "click", "ui", 1), cnt("2030-05-16", "view", "ui", 1)}},
			{"two days", acme.ID, analytics.SummaryQuery{From: "2030-05-16", To: "2030-05-17"},
				[]analytics.Count{cnt("2030-05-16", "click", "ui", 1), cnt("2030-05-16", "view", "ui", 1),
					cnt("2030-05-17", "click", "ui", 5), cnt("2030-05-17", "view", "nav", 1)}},
			{"by name", acme.ID, analytics.SummaryQuery{From: "2030-05-16", To: "2030-05-17", Name: "view"},
				[]analytics.Count{cnt("2030-05-16", "view", "ui", 1), cnt("2030-05-17", "view", "nav", 1)}},
			{"by category", acme.ID, analytics.SummaryQuery{From: "2030-04-01", To: "2030-05-31", Category: "nav"},
				[]analytics.Count{cnt("2030-04-07", "click", "nav", 1), cnt("2030-04-17", "click", "nav", 1), cnt("2030-04-18", "click", "nav", 1),
					cnt("2030-05-17", "view", "nav", 1)}},
			{"by name and category", acme.ID, analytics.SummaryQuery{From: "2030-05-01", To: "2030-05-31", Name: "click", Category: "ui"},
				[]analytics.Count{cnt("2030-05-07", "click", "ui", 1), cnt("2030-05-14", "click", "ui", 1), cnt("2030-05-16", "click", "ui", 1),
					cnt("2030-05-17", "click", "ui", 5)}},
			{"another organization", globex.ID, analytics.SummaryQuery{From: "2030-05-17", To: "2030-05-17"},
				[]analytics.Count{cnt("2030-05-17", "click", "ui", 1)}},
			{"no events", acme.ID, analytics.SummaryQuery{From: "2030-06-01", To: "2030-06-30"}, []analytics.Count{}},
			{"an unknown organization", uuid.NewString(), analytics.SummaryQuery{From: "2000-01-01", To: "2099-12-31"}, []analytics.Count{}},
			{"not an organization id", "acme", analytics.SummaryQuery{From: "2000-01-01", To: "2099-12-31"}, []analytics.Count{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.DailyCounts(ctx, tt.org, tt.q)
				if err != nil {
					t.Fatalf("DailyCounts: %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("DailyCounts (-want +got):\n%s", diff)
				}
			})
		}
	})
}

// TestProcessEventsConcurrent runs several processors at once over the same backlog, with and without writers
// adding to it meanwhile: every event must be counted exactly once.
func TestProcessEventsConcurrent(t *testing.T) {
	for _, tc := range []struct {
		processors       int
		writeMeanwhile   bool
		limit, perInsert int
	}{
		{2, false, 250, 1000},
		{4, true, 97, 100},
	} {
		t.Run(fmt.Sprintf("%d processors, writing meanwhile %v", tc.processors, tc.writeMeanwhile), func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				now := t0
				events := 5000
				if db.Dialect() == store.SQLite {
					// SQLite runs one write transaction at a time, so its processors cannot overlap: fewer events
					// suffice, and keep the test fast under the race detector.
					events = 2000
				}
				acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
				var us []nexus.User
				for i := range 10 {
					org := acme.ID
					if i%4 == 3 {
						org = globex.ID
					}
					us = append(us, mustUser(t, db, org, fmt.Sprintf("user%d@example.com", i)))
				}
				names, categories := []string{"click", "view", "buy", "share"}, []string{"ui", "nav", "api"}
				evs := make([]analytics.Pending, events)
				for i := range evs {
					evs[i] = pendingEvent(us[i%len(us)], names[i%len(names)], categories[i%len(categories)],
						now.Add(-time.Duration(i%45)*24*time.Hour-time.Duration(i)*time.Minute))
					evs[i].ReceivedAt = now.Add(time.Duration(i%500) * time.Millisecond)
				}
				s := store.NewEvents(db)
				insert := func(part []analytics.Pending) error {
					for len(part) > 0 {
						n := min(tc.perInsert, len(part))
						if err := busyRetry(db, func() error {
							_, err := s.InsertEvents(ctx, part[:n])
							return err
						}); err != nil {
							return err
						}
						part = part[n:]
					}
					return nil
				}
				if !tc.writeMeanwhile {
					if err := insert(evs); err != nil {
						t.Fatalf("InsertEvents: %v", err)
					}
				}

				var processed atomic.Int64
				var writing sync.WaitGroup
				var writersDone atomic.Bool
				errs := make(chan error, 100)
				start := make(chan struct{})
				if tc.writeMeanwhile {
					const writers = 5
					for w := range writers {
						part := evs[w*events/writers : (w+1)*events/writers]
						writing.Go(func() {
							<-start
							if err := insert(part); err != nil {
								errs <- fmt.Errorf("InsertEvents: %w", err)
							}
						})
					}
				}
				var processing sync.WaitGroup
				for range tc.processors {
					processing.Go(func() {
						<-start
						for {
							done := writersDone.Load() // before looking, so that nothing written is missed
							var n int
							err := busyRetry(db, func() (err error) {
								n, err = s.ProcessEvents(ctx, tc.limit)
								return err
							})
							if err != nil {
								errs <- fmt.Errorf("ProcessEvents: %w", err)
								return
							}
							processed.Add(int64(n))
							if n == 0 {
								if done || !tc.writeMeanwhile {
									return
								}
								time.Sleep(time.Millisecond) // as the processor polls: not a busy loop of write transactions
							}
						}
					})
				}
				close(start)
				writing.Wait()
				writersDone.Store(true)
				processing.Wait()
				close(errs)
				for err := range errs {
					t.Fatal(err)
				}

				if got := processed.Load(); got != int64(events) {
					t.Errorf("the processors processed %d events, want %d", got, events)
				}
				checkBacklog(t, s, 0, time.Time{})
				var sum int64
				for _, org := range []string{acme.ID, globex.ID} {
					counts, err := s.DailyCounts(ctx, org, analytics.SummaryQuery{From: "2000-01-01", To: "9999-12-31"})
					if err != nil {
						t.Fatalf("DailyCounts: %v", err)
					}
					for _, c := range counts {
						sum += c.Count
					}
				}
				if sum != int64(events) {
					t.Errorf("the daily counts add up to %d, want %d", sum, events)
				}
				checkRollups(t, db, evs, []string{acme.ID, globex.ID}, us, now)
			})
		})
	}
}

// TestProcessEventsSkipsLocked holds some of the backlog locked, as another processor's transaction does on
// PostgreSQL: ProcessEvents must process the rest without waiting for them, and process them once they are
// free. (SQLite has one writer at a time, so there is nothing to skip.)
func TestProcessEventsSkipsLocked(t *testing.T) {
	ctx := context.Background()
	url := testdb.PostgresURL(t)
	db, err := store.Open(ctx, store.Options{URL: url})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	acme := mustOrg(t, db, "Acme")
	ada := mustUser(t, db, acme.ID, "ada@example.com")
	s := store.NewEvents(db)
	var evs []analytics.Pending
	for i := range 10 {
		ev := pendingEvent(ada, "click", "ui", t0)
		ev.ReceivedAt = t0.Add(time.Duration(i) * time.Second)
		evs = append(evs, ev)
	}
	mustInsertEvents(t, s, evs...)

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	holder, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	var held int
	if err := holder.QueryRow(ctx, `SELECT count(*) FROM (SELECT id FROM event_backlog ORDER BY received_at LIMIT 3 FOR UPDATE) AS l`).Scan(&held); err != nil || held != 3 {
		t.Fatalf("locking 3 backlog rows: %d, %v", held, err)
	}

	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := s.ProcessEvents(tctx, 100)
	if err != nil {
		t.Fatalf("ProcessEvents with 3 events locked elsewhere: %v (it must skip them, not wait)", err)
	}
	if n != 7 {
		t.Errorf("ProcessEvents with 3 of 10 events locked elsewhere = %d, want 7", n)
	}
	checkBacklog(t, s, 3, t0)

	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n := drainEvents(t, s, 100); n != 3 {
		t.Errorf("once free, %d events processed, want 3", n)
	}
	checkRollups(t, db, evs, []string{acme.ID}, []nexus.User{ada}, t0)
}

func TestBacklog(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		acme := mustOrg(t, db, "Acme")
		ada := mustUser(t, db, acme.ID, "ada@example.com")
		s := store.NewEvents(db)
		checkBacklog(t, s, 0, time.Time{})

		late, early, middle := pendingEvent(ada, "a", "ui", t0), pendingEvent(ada, "b", "ui", t0), pendingEvent(ada, "c", "ui", t0)
		late.ReceivedAt = t0.Add(time.Hour)
		early.ReceivedAt = t0.Add(-time.Hour).In(time.FixedZone("UTC+3", 3*3600))
		middle.ReceivedAt = t0.Add(time.Microsecond)
		mustInsertEvents(t, s, late)
		checkBacklog(t, s, 1, late.ReceivedAt)
		mustInsertEvents(t, s, early, middle)
		checkBacklog(t, s, 3, early.ReceivedAt)
		mustInsertEvents(t, s, retryOf(early)) // a duplicate waits for nothing
		checkBacklog(t, s, 3, early.ReceivedAt)

		if n := drainEvents(t, s, 100); n != 3 {
			t.Errorf("processed %d events, want 3", n)
		}
		checkBacklog(t, s, 0, time.Time{})
	})
}

func TestEventsCanceled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		acme := mustOrg(t, db, "Acme")
		ada := mustUser(t, db, acme.ID, "ada@example.com")
		s := store.NewEvents(db)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.InsertEvents(ctx, []analytics.Pending{pendingEvent(ada, "click", "ui", t0)})
		if nexus.KindOf(err) != nexus.KindUnavailable || !errors.Is(err, context.Canceled) {
			t.Errorf("InsertEvents with a canceled context = %v, want unavailable", err)
		}
		if _, err := s.ProcessEvents(ctx, 10); nexus.KindOf(err) != nexus.KindUnavailable {
			t.Errorf("ProcessEvents with a canceled context = %v, want unavailable", err)
		}
		checkBacklog(t, s, 0, time.Time{})
		if got := listAll(t, s, acme.ID); len(got) != 0 {
			t.Errorf("events stored by a canceled call: %v", got)
		}
	})
}
