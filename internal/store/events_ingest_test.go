package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// The tests of storing events (InsertEvents): outcomes, idempotency by event_id, large and concurrent calls.

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
