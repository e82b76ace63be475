package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// TestListEventsRecentFirst proves that a listing which asks the recently received events first (on PostgreSQL,
// where they are the recent partitions; see listEvents) answers exactly what a listing of every event answers:
// events received over 30 days before now (the listing's Now, mostly), most of them recent, some sent late (timestamps days before their
// receipt) and some a little ahead (up to analytics.MaxFuture), listed by pages, with and without filters,
// time bounds and cursors, against the listing computed here.
func TestListEventsRecentFirst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme := mustOrg(t, db, "Acme")
		ada := mustUser(t, db, acme.ID, "ada@example.com")
		s := store.NewEvents(db)
		rng := rand.New(rand.NewPCG(17, 3)) // #nosec G404 -- a reproducible test workload
		now := time.Now().UTC().Truncate(time.Microsecond)
		day := 24 * time.Hour

		var all []analytics.Event
		var pend []analytics.Pending
		for i := range 600 {
			var received time.Time
			switch r := rng.IntN(10); {
			case r < 6: // the last 20 hours
				received = now.Add(-time.Duration(rng.Int64N(int64(20 * time.Hour))))
			case r < 8: // one to seven days ago
				received = now.Add(-day - time.Duration(rng.Int64N(int64(6*day))))
			default: // ten to thirty days ago
				received = now.Add(-10*day - time.Duration(rng.Int64N(int64(20*day))))
			}
			occurred := received.Add(-time.Duration(rng.Int64N(int64(time.Minute))))
			switch r := rng.IntN(10); {
			case r == 0: // sent late: up to 20 days before its receipt
				occurred = received.Add(-time.Duration(rng.Int64N(int64(20 * day))))
			case r == 1: // a client clock ahead, within the bound the API accepts
				occurred = received.Add(time.Duration(rng.Int64N(int64(analytics.MaxFuture))))
			}
			name := "common"
			if i%25 == 0 {
				name = "rare"
			}
			p := receivedEvent(ada, name, received)
			p.Timestamp = occurred.Truncate(time.Microsecond)
			p.Properties = []byte(fmt.Sprintf(`{"n":%d}`, i))
			pend = append(pend, p)
			all = append(all, p.Event)
		}
		for i := 0; i < len(pend); i += 100 {
			mustInsertEvents(t, s, pend[i:i+100]...)
		}
		sort.Slice(all, func(i, j int) bool {
			if !all[i].Timestamp.Equal(all[j].Timestamp) {
				return all[i].Timestamp.After(all[j].Timestamp)
			}
			return all[i].ID > all[j].ID
		})
		want := func(q analytics.ListQuery) []string {
			var out []string
			for _, ev := range all {
				if q.Name != "" && ev.Name != q.Name || q.From != nil && ev.Timestamp.Before(*q.From) ||
					q.To != nil && !ev.Timestamp.Before(*q.To) ||
					q.After != nil && (ev.Timestamp.After(q.After.Timestamp) || ev.Timestamp.Equal(q.After.Timestamp) && ev.ID >= q.After.ID) {
					continue
				}
				if out = append(out, ev.ID); len(out) == q.Limit+1 {
					break
				}
			}
			return out
		}
		for round := range 300 {
			// The service's clock is the one that stamped the events, usually; whatever it says, the answer is the
			// same (only its cost differs).
			q := analytics.ListQuery{Limit: []int{1, 5, 20, 50, 200}[rng.IntN(5)],
				Now: []time.Time{now, now, now, {}, now.Add(-15 * day), now.Add(15 * day)}[rng.IntN(6)]}
			if rng.IntN(4) == 0 {
				q.Name = "rare"
			}
			if rng.IntN(3) == 0 {
				from := now.Add(-time.Duration(rng.Int64N(int64(30 * day))))
				q.From = &from
			}
			if rng.IntN(3) == 0 {
				to := now.Add(time.Hour - time.Duration(rng.Int64N(int64(30*day))))
				q.To = &to
			}
			if rng.IntN(3) == 0 {
				ev := all[rng.IntN(len(all))]
				q.After = &analytics.Cursor{Timestamp: ev.Timestamp, ID: ev.ID}
			}
			got, err := s.ListEvents(ctx, acme.ID, q)
			if err != nil {
				t.Fatalf("round %d: ListEvents: %v", round, err)
			}
			ids := make([]string, len(got))
			for i, ev := range got {
				ids[i] = ev.ID
			}
			if w := want(q); fmt.Sprint(ids) != fmt.Sprint(w) {
				t.Fatalf("round %d (limit %d, name %q, from %v, to %v, after %v): listed %d events, want %d\n got %v\nwant %v",
					round, q.Limit, q.Name, q.From, q.To, q.After, len(ids), len(w), ids, w)
			}
		}
	})
}
