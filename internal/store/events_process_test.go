package store_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
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

// The tests of processing events (ProcessEvents) into the rollups the summary reads, concurrently and with
// locked rows, the backlog, and canceled calls.

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
