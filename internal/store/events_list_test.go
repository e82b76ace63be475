package store_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// The tests of listing events (ListEvents): filters, order, sub-second timestamps, properties.

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
