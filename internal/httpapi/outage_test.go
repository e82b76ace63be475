package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// Bounds of the outage test, from the issue: /readyz reports an outage within 2 s, and an event the server
// cannot store is answered 503 within a few seconds, never after a hang.
const (
	readyzDetects  = 2 * time.Second
	outageAnswer   = 5 * time.Second
	outageRecovers = 20 * time.Second
)

// TestOutageEventIngest stops the PostgreSQL server under a running handler: ingest answers 503 unavailable
// with Retry-After at once and stores nothing, /readyz fails within 2 s and recovers by itself once the
// database is back, and then the retry of the same event_id is stored exactly once. The database is stopped
// both ways it goes down: by an operator (sessions terminated) and by a crash (sessions dropped).
func TestOutageEventIngest(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*testdb.Dedicated)
	}{
		{"stopped", (*testdb.Dedicated).Stop},
		{"crashed", (*testdb.Dedicated).Kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg, e, bearer := outageEnv(t)

			// Before: an event is stored and the server is ready.
			before := uuid.NewString()
			if r := e.do("POST", "/v2/analytics/events", outageEvent(before, 0), bearer...); r.status != http.StatusAccepted {
				t.Fatalf("event before the outage: %d %s", r.status, r.body)
			}
			if r := e.do("GET", "/readyz", nil); r.status != http.StatusOK {
				t.Fatalf("/readyz before the outage: %d %s", r.status, r.body)
			}

			tc.stop(pg)
			down := time.Now()

			// /readyz reports the outage within 2 s.
			awaitUnready(t, e, down)

			// Ingest answers 503 unavailable with Retry-After, promptly, every time: single events (the same
			// event_id several times, as a client retrying too early would) and a batch.
			retried := uuid.NewString()
			batchIDs := []string{uuid.NewString(), uuid.NewString()}
			batch := map[string]any{"events": []any{outageEvent(batchIDs[0], 1), outageEvent(batchIDs[1], 2)}}
			attempts := []struct {
				path string
				body any
			}{
				{"/v2/analytics/events", outageEvent(retried, 3)},
				{"/v2/analytics/events", outageEvent(retried, 3)},
				{"/v2/analytics/events/batch", batch},
				{"/v2/analytics/events", outageEvent(retried, 3)},
			}
			for i, a := range attempts {
				start := time.Now()
				r := e.do("POST", a.path, a.body, bearer...)
				took := time.Since(start)
				t.Logf("attempt %d during the outage (POST %s): %d in %v", i+1, a.path, r.status, took.Round(time.Millisecond))
				expectUnavailable(t, r)
				if took > outageAnswer {
					t.Errorf("attempt %d: answered after %v, want within %v", i+1, took, outageAnswer)
				}
			}

			// Authentication needs the database too, so the requests above were refused before the event
			// writer; the writer itself refuses the same way when its transaction cannot reach the database.
			probe := uuid.NewString()
			start := time.Now()
			_, err := e.pipe.Writer.Submit(context.Background(), []analytics.Pending{{Event: analytics.Event{
				ID: uuid.NewString(), EventID: probe, OrganizationID: e.orgA.ID, UserID: e.admin.ID, Name: "outage_probe",
				Category: "test", Properties: []byte("{}"), Timestamp: e.clock.Now(), ReceivedAt: e.clock.Now(),
			}, Fingerprint: "probe"}})
			if nexus.KindOf(err) != nexus.KindUnavailable || time.Since(start) > outageAnswer {
				t.Errorf("event writer during the outage: %v after %v; want an unavailable error within %v", err, time.Since(start), outageAnswer)
			}

			// The database comes back; /readyz recovers by itself, with no request needed to heal the pool.
			pg.Start()
			awaitReady(t, e)

			// Nothing of the refused requests was stored.
			if ids := listedEventIDs(t, e, bearer); len(ids) != 1 || ids[before] != 1 {
				t.Fatalf("after the outage the listing holds %v; want only the event stored before it (%s)", ids, before)
			}

			// The retry of the same event_id is stored once: a new event the first time it succeeds (a retry
			// may still meet a connection the outage broke, and then answers 503 again), a duplicate after.
			first := retryUntilStored(t, e, outageEvent(retried, 3), bearer)
			if first.status != http.StatusAccepted || first.obj(t)["duplicate"] != false {
				t.Fatalf("first successful retry: %d %s; want 202 with duplicate false", first.status, first.body)
			}
			again := e.do("POST", "/v2/analytics/events", outageEvent(retried, 3), bearer...)
			if again.status != http.StatusAccepted || again.obj(t)["duplicate"] != true || again.str(t, "id") != first.str(t, "id") {
				t.Fatalf("second retry: %d %s; want 202 duplicate of %s", again.status, again.body, first.body)
			}
			r := e.do("POST", "/v2/analytics/events/batch", batch, bearer...)
			if r.status != http.StatusAccepted || r.obj(t)["accepted"] != float64(2) {
				t.Fatalf("batch retried after the outage: %d %s; want both events accepted", r.status, r.body)
			}

			ids := listedEventIDs(t, e, bearer)
			want := map[string]int{before: 1, retried: 1, batchIDs[0]: 1, batchIDs[1]: 1}
			if fmt.Sprint(ids) != fmt.Sprint(want) {
				t.Fatalf("listing after the retries: %v; want each event exactly once: %v", ids, want)
			}
		})
	}
}

// TestOutageInFlight stops the PostgreSQL server while events stream in from concurrent clients, so that some
// requests are past authentication, waiting in the group-commit writer or inside its transaction, when the
// database goes: every request is answered 202 or 503 unavailable (never 500) within a few seconds, every event
// answered 202 is stored, and once the database is back the retries of all the others leave each event stored
// exactly once. (An event answered 503 may have been stored after all, when the connection was lost during its
// COMMIT; its retry is then answered as a duplicate.)
func TestOutageInFlight(t *testing.T) {
	const (
		workers   = 8
		maxEvents = 5000 // bounds the run whatever happens
		warmup    = 200  // events answered 202 before the database stops
	)
	for _, tc := range []struct {
		name string
		stop func(*testdb.Dedicated)
	}{
		{"stopped", (*testdb.Dedicated).Stop},
		{"crashed", (*testdb.Dedicated).Kill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg, e, bearer := outageEnv(t)
			ids := make([]string, maxEvents)
			for i := range ids {
				ids[i] = uuid.NewString()
			}
			type answer struct {
				n    int
				req  *http.Request
				resp resp
				took time.Duration
			}
			var (
				mu      sync.Mutex
				answers []answer
				next    atomic.Int64
				acked   atomic.Int64
				stopped = make(chan struct{}) // closed when the workers are to stop
				wg      sync.WaitGroup
			)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					refused := 0
					for refused < 3 {
						select {
						case <-stopped:
							return
						default:
						}
						n := int(next.Add(1)) - 1
						if n >= maxEvents {
							return
						}
						start := time.Now()
						req, r := exchange(t, e.h, "POST", "/v2/analytics/events", outageEvent(ids[n], n), bearer...)
						a := answer{n: n, req: req, resp: r, took: time.Since(start)}
						if r.status == http.StatusAccepted {
							acked.Add(1)
						} else {
							refused++
						}
						mu.Lock()
						answers = append(answers, a)
						mu.Unlock()
					}
				}()
			}
			for deadline := time.Now().Add(30 * time.Second); acked.Load() < warmup; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					close(stopped)
					wg.Wait()
					t.Fatalf("only %d events answered 202 in 30 s before the outage", acked.Load())
				}
			}
			tc.stop(pg)
			down := time.Now()
			workersDone := make(chan struct{})
			go func() { wg.Wait(); close(workersDone) }()
			select {
			case <-workersDone:
			case <-time.After(outageAnswer + 5*time.Second):
				close(stopped)
				<-workersDone
				t.Fatalf("requests still running %v after the database stopped", time.Since(down))
			}

			// Every answer is one of the contract's, 202 or 503 unavailable, and came promptly.
			var refused []int
			status := map[int]int{}
			eventOf := map[string]string{} // event_id → id, of the events answered 202
			for _, a := range answers {
				checkResponse(t, a.req, a.resp)
				status[a.resp.status]++
				if a.took > outageAnswer {
					t.Errorf("event %d: answered %d after %v, want within %v", a.n, a.resp.status, a.took, outageAnswer)
				}
				switch a.resp.status {
				case http.StatusAccepted:
					eventOf[ids[a.n]] = a.resp.str(t, "id")
				default:
					expectUnavailable(t, a.resp)
					refused = append(refused, a.n)
				}
			}
			var slowest time.Duration
			for _, a := range answers {
				if a.resp.status == http.StatusServiceUnavailable {
					slowest = max(slowest, a.took)
				}
			}
			t.Logf("%d requests, by status %v (slowest 503 in %v); the database stopped after %d events were answered 202",
				len(answers), status, slowest.Round(time.Microsecond), warmup)
			if len(refused) == 0 {
				t.Fatal("no request met the outage")
			}

			pg.Start()
			awaitReady(t, e)

			// Every event answered 202 is stored; nothing else was stored but events that were sent.
			sent := map[string]bool{}
			for _, a := range answers {
				sent[ids[a.n]] = true
			}
			listed := listedEventIDs(t, e, bearer)
			for id := range eventOf {
				if listed[id] != 1 {
					t.Errorf("event %s was answered 202 but is listed %d times", id, listed[id])
				}
			}
			ambiguous := 0
			for id := range listed {
				if !sent[id] {
					t.Errorf("event %s is stored but was never sent", id)
				}
				if _, ok := eventOf[id]; !ok {
					ambiguous++
				}
			}
			t.Logf("after the restart: %d events stored, %d of them answered 503", len(listed), ambiguous)

			// The retries of the refused events store each of them once.
			for _, n := range refused {
				r := retryUntilStored(t, e, outageEvent(ids[n], n), bearer)
				if r.status != http.StatusAccepted {
					t.Fatalf("retry of event %d: %d %s", n, r.status, r.body)
				}
				if dup := r.obj(t)["duplicate"] == true; dup != (listed[ids[n]] == 1) {
					t.Errorf("retry of event %d: duplicate %v, but the event was listed %d times before", n, dup, listed[ids[n]])
				}
			}
			listed = listedEventIDs(t, e, bearer)
			if len(listed) != len(sent) {
				t.Errorf("after the retries %d distinct events are stored, want the %d sent", len(listed), len(sent))
			}
			for id := range sent {
				if listed[id] != 1 {
					t.Errorf("after the retries event %s is listed %d times, want once", id, listed[id])
				}
			}
		})
	}
}

// TestOutageEveryOperation takes the PostgreSQL server away from a running handler in each way it can go:
// stopped by an operator, crashed, and stalled (every server process frozen, so nothing is refused and nothing
// answers). Each time, every operation that needs the database is answered 503 unavailable with Retry-After
// within the request deadline (never 500, never later), /readyz fails within 2 s while /healthz stays up, no
// body carries anything of the server's insides, and once the database is back everything recovers by itself.
func TestOutageEveryOperation(t *testing.T) {
	pg := testdb.NewDedicated(t)
	f := newFaultEnv(t, openMigrated(t, store.Options{URL: pg.URL()}), 3)
	for _, tc := range []struct {
		name       string
		down, back func()
	}{
		{"stopped", pg.Stop, pg.Start},
		{"crashed", pg.Kill, pg.Start},
		{"stalled", pg.Pause, pg.Resume},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			expectRecovered(t, f)
			f.staleKeys() // JWKS and bearer tokens need the signing keys from the database again

			tc.down()
			down := time.Now()
			awaitUnready(t, f.env, down)
			expectHealthy(t, f.env)
			expectFaultAnswers(t, f.sendAll(faultOps), nil)
			expectHealthy(t, f.env)

			tc.back()
			awaitReady(t, f.env)
			expectRecovered(t, f)
		})
	}
}

// TestOutageUnderLoad stops and restarts the PostgreSQL server while 8 clients send a mix of every operation:
// every answer is 2xx or 503 unavailable with Retry-After; while the database is down every operation that
// needs it is answered 503 within the request deadline; and without a restart of the server every operation
// succeeds again once the database is back.
func TestOutageUnderLoad(t *testing.T) {
	const clients = 8
	pg := testdb.NewDedicated(t)
	f := newFaultEnv(t, openMigrated(t, store.Options{URL: pg.URL()}), 0)
	type answer struct {
		faultAnswer
		phase, endPhase int32 // when it was sent, when its answer came
	}
	var (
		mu       sync.Mutex
		answers  []answer
		phase    atomic.Int32 // when the request was sent: 0 before the outage, 1 during it, 2 after it
		okAfter  = map[string]bool{}
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		perPhase [3]map[int]int
	)
	for i := range perPhase {
		perPhase[i] = map[int]int{}
	}
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				op := faultOps[i%len(faultOps)]
				a := answer{phase: phase.Load()}
				a.faultAnswer = op.send(f, f.h)
				a.op = op.name
				a.endPhase = phase.Load()
				mu.Lock()
				answers = append(answers, a)
				perPhase[a.phase][a.resp.status]++
				if a.phase == 2 && a.resp.status/100 == 2 {
					okAfter[op.name] = true
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond) // a client's think time
			}
		}()
	}
	finish := func() {
		close(stop)
		wg.Wait()
	}
	waitFor := func(what string, limit time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(limit); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				finish()
				t.Fatalf("%s: not within %v", what, limit)
			}
		}
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(answers) }

	waitFor("100 answers before the outage", 30*time.Second, func() bool { return count() >= 100 })
	pg.Stop()
	phase.Store(1) // from here until the restart begins, the server is down
	down := time.Now()
	awaitUnready(t, f.env, down)
	expectHealthy(t, f.env)
	during := count()
	waitFor("100 answers during the outage", 30*time.Second, func() bool { return count() >= during+100 })

	phase.Store(2)
	pg.Start()
	awaitReady(t, f.env)
	waitFor("every operation answered 2xx after the restart", outageRecovers, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(okAfter) == len(faultOps)
	})
	finish()

	var slowest [3]time.Duration
	for _, a := range answers {
		slowest[a.phase] = max(slowest[a.phase], a.took)
		if a.phase != 1 {
			// Before and after the outage requests do real work — argon2id for logins and new users — on a
			// machine that may be loaded, and the deadline bounds waiting, not computing: no bound on time here.
			checkAnswer(t, a.faultAnswer)
			continue
		}
		checkFaultAnswer(t, a.faultAnswer)
		// The keys are cached; and a request that was still running when the restart began (a password hashed
		// for a new user, after an authentication from the cache) may reach the database once it is back.
		if a.op != "getJwks" && a.endPhase == 1 && a.resp.status != http.StatusServiceUnavailable {
			t.Errorf("%s sent while the database was down: %d %s", a.op, a.resp.status, a.resp.body)
		}
	}
	for p, name := range []string{"before the outage", "during it", "after the restart"} {
		t.Logf("%s: by status %v, the slowest in %v", name, perPhase[p], slowest[p].Round(time.Millisecond))
	}
	if perPhase[1][http.StatusServiceUnavailable] == 0 {
		t.Error("no request met the outage")
	}
}

// outageEnv returns a server over a dedicated PostgreSQL server, migrated, with the admin logged in (before
// any outage: logging in needs the database) and the Authorization header of its access token.
func outageEnv(t *testing.T) (*testdb.Dedicated, *env, []string) {
	t.Helper()
	pg := testdb.NewDedicated(t)
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: pg.URL()})
	must(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Migrate(ctx)
	must(t, err)
	e := newEnv(t, db)
	access, _ := e.tokens(webClient)
	return pg, e, []string{"Authorization", "Bearer " + access}
}

// awaitReady waits until /readyz answers 200 again after the database restarted.
func awaitReady(t *testing.T, e *env) {
	t.Helper()
	up := time.Now()
	for {
		r := e.do("GET", "/readyz", nil)
		if r.status == http.StatusOK {
			t.Logf("/readyz ready %v after the database restarted", time.Since(up).Round(time.Millisecond))
			return
		}
		if r.status != http.StatusServiceUnavailable {
			t.Fatalf("/readyz after the restart: %d %s", r.status, r.body)
		}
		if time.Since(up) > outageRecovers {
			t.Fatalf("/readyz still %d %v after the database restarted: %s", r.status, time.Since(up), r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// retryUntilStored sends an event until it is answered something else than 503 (a first retry after the
// restart may still meet a connection the outage broke), at most 10 times.
func retryUntilStored(t *testing.T, e *env, event map[string]any, bearer []string) resp {
	t.Helper()
	for i := 1; ; i++ {
		r := e.do("POST", "/v2/analytics/events", event, bearer...)
		if r.status != http.StatusServiceUnavailable {
			return r
		}
		expectUnavailable(t, r)
		if i == 10 {
			t.Fatalf("a retry still answers 503 after %d attempts: %s", i, r.body)
		}
		t.Logf("retry %d after the restart: 503", i)
		time.Sleep(100 * time.Millisecond)
	}
}

// outageEvent is the n-th event of the outage test, with its client event_id; the same arguments give the same
// event, so a resend is a retry.
func outageEvent(eventID string, n int) map[string]any {
	return map[string]any{"event_id": eventID, "event_name": "outage_probe", "event_category": "test",
		"timestamp": "2026-11-25T08:00:00Z", "properties": map[string]any{"n": n}}
}

// expectUnavailable fails unless r is 503 unavailable problem+json with a positive Retry-After.
func expectUnavailable(t *testing.T, r resp) {
	t.Helper()
	if r.status == http.StatusInternalServerError {
		t.Fatalf("500 while the database is unavailable, want 503 unavailable: %s", r.body)
	}
	expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s <= 0 {
		t.Fatalf("Retry-After = %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
}

// listedEventIDs pages through the organization's events and counts each event_id.
func listedEventIDs(t *testing.T, e *env, bearer []string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	path := "/v2/analytics/events?limit=500"
	for page := 0; ; page++ {
		if page == 100 {
			t.Fatal("more than 100 pages of events")
		}
		r := e.do("GET", path, nil, bearer...)
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, r.status, r.body)
		}
		body := r.obj(t)
		for _, ev := range body["data"].([]any) {
			ids[ev.(map[string]any)["event_id"].(string)]++
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			return ids
		}
		path = "/v2/analytics/events?limit=500&cursor=" + next
	}
}
