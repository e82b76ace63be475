package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The tests of the events pipeline behind POST /v2/analytics/events: its state in /readyz and /metrics, a full
// queue (backpressure) and lag while processing fails.

// readyEvents returns the events member of the /readyz body of e.
func readyEvents(t testing.TB, e *env) map[string]any {
	t.Helper()
	r := e.do("GET", "/readyz", nil)
	if r.status != http.StatusOK {
		t.Fatalf("/readyz: %d %s", r.status, r.body)
	}
	ev, ok := r.obj(t)["events"].(map[string]any)
	if !ok {
		t.Fatalf("/readyz without events: %s", r.body)
	}
	return ev
}

// metricValues returns the nexus_events_* samples of /metrics (on the metrics listener), checking that each has
// a TYPE line.
func metricValues(t testing.TB, e *env) map[string]float64 {
	t.Helper()
	r := e.scrape()
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	out := map[string]float64{}
	described := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(r.body)), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			described[strings.Fields(rest)[0]] = true
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "nexus_events_") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		if !described[name] {
			t.Errorf("metric %s has no TYPE line", name)
		}
		out[name] = v
	}
	return out
}

func TestEventsReadinessAndMetrics(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		ev := readyEvents(t, e)
		for _, k := range []string{"write_queue", "backlog", "lag_seconds", "processor_failing", "stored_total", "processed_total",
			"refused_total", "duplicates_total", "commits_total"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("/readyz events without %s: %v", k, ev)
			}
		}
		m := metricValues(t, e)
		for _, name := range []string{"nexus_events_write_queue", "nexus_events_backlog", "nexus_events_processing_lag_seconds",
			"nexus_events_stored_total", "nexus_events_duplicates_total", "nexus_events_refused_total", "nexus_events_commits_total",
			"nexus_events_processed_total", "nexus_events_processor_failing"} {
			if _, ok := m[name]; !ok {
				t.Errorf("/metrics without %s", name)
			}
		}

		dup := newEvent("counted")
		mustAccept(t, postEvent(e, admin, dup), false)
		mustAccept(t, postEvent(e, admin, dup), true)
		mustAccept(t, postEvent(e, admin, newEvent("counted")), false)
		waitUntil(t, countedWithin, "the events processed, in /readyz and /metrics", func() (bool, string) {
			ev, m := readyEvents(t, e), metricValues(t, e)
			return ev["processed_total"] == float64(2) && ev["backlog"] == float64(0) && m["nexus_events_processed_total"] == 2,
				fmt.Sprint(ev, m)
		})
		ev, m = readyEvents(t, e), metricValues(t, e)
		want := map[string]float64{"write_queue": 0, "backlog": 0, "lag_seconds": 0, "stored_total": 2, "duplicates_total": 1,
			"refused_total": 0, "processed_total": 2}
		for k, v := range want {
			if ev[k] != v {
				t.Errorf("/readyz events.%s = %v, want %v", k, ev[k], v)
			}
			name := "nexus_events_" + strings.Replace(k, "lag_seconds", "processing_lag_seconds", 1)
			if m[name] != v {
				t.Errorf("%s = %v, want %v", name, m[name], v)
			}
		}
		if ev["processor_failing"] != false || m["nexus_events_processor_failing"] != 0 {
			t.Errorf("processor failing: %v %v", ev["processor_failing"], m["nexus_events_processor_failing"])
		}
		if c, _ := ev["commits_total"].(float64); c < 1 || c > 3 {
			t.Errorf("commits_total %v after 3 requests", ev["commits_total"])
		}
		sameTime(t, "processor_checked_at", ev["processor_checked_at"], e.clock.Now())
	})
}

// heldStore is an events store whose inserts can be held until released, as a slow database holds them, and
// whose processing can be made to fail.
type heldStore struct {
	analytics.Store
	holdInserts bool  // InsertEvents waits for open
	failProcess error // ProcessEvents fails with it, if set
	release     chan struct{}
	once        sync.Once
	mu          sync.Mutex
	calls, held int // inserts held so far, and their events
}

func newHeldStore(holdInserts bool, failProcess error) *heldStore {
	return &heldStore{holdInserts: holdInserts, failProcess: failProcess, release: make(chan struct{})}
}

// open releases the held inserts and holds no more.
func (h *heldStore) open() { h.once.Do(func() { close(h.release) }) }

func (h *heldStore) InsertEvents(ctx context.Context, events []analytics.Pending) ([]analytics.Outcome, error) {
	if h.holdInserts {
		h.mu.Lock()
		h.calls++
		h.held += len(events)
		h.mu.Unlock()
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.Store.InsertEvents(ctx, events)
}

func (h *heldStore) ProcessEvents(ctx context.Context, limit int) (int, error) {
	if h.failProcess != nil {
		return 0, h.failProcess
	}
	return h.Store.ProcessEvents(ctx, limit)
}

func (h *heldStore) state() (calls, held int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, h.held
}

// heldInstance returns a second server instance over e's database whose writer queues at most queue events
// (0: the default) and whose events store is h.
func heldInstance(t testing.TB, e *env, queue int, h *heldStore) *env {
	t.Helper()
	c := *e
	c.queue = queue
	c.wrapEvents = func(s analytics.Store) analytics.Store { h.Store = s; return h }
	n := c.instance()
	t.Cleanup(h.open) // before the instance's pipeline closes: cleanups run last first
	return n
}

// TestTrackEventQueueFull fills the write queue of an instance whose database is slow: the next event is
// answered 503 unavailable with Retry-After, stores nothing, shows in /readyz and /metrics, and its retry once
// the queue drains is stored exactly once.
func TestTrackEventQueueFull(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		h := newHeldStore(true, nil)
		small := heldInstance(t, e, 1, h)

		// Requests in flight until both workers are stuck in a transaction and one event waits in the queue.
		type flight struct {
			body map[string]any
			req  *http.Request
			r    resp
		}
		var flights []*flight
		var wg sync.WaitGroup
		for i := 0; ; i++ {
			if i == 10 {
				t.Fatal("the write queue does not fill")
			}
			f := &flight{body: newEvent(fmt.Sprintf("held%d", i))}
			raw, err := json.Marshal(f.body)
			must(t, err)
			flights = append(flights, f)
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.req, f.r = exchange(t, small.h, "POST", eventsPath, raw, bearer(admin)...)
			}()
			var queued int
			waitUntil(t, 2*time.Second, "the event held or queued", func() (bool, string) {
				calls, held := h.state()
				queued = small.pipe.WriterStats().Queued
				return held+queued == i+1 && (queued == 0 || calls == 2), fmt.Sprintf("calls %d, held %d, queued %d", calls, held, queued)
			})
			if queued == 1 {
				break
			}
		}

		// Refused at once, not after waiting for room.
		refused := newEvent("refused")
		asked := time.Now()
		r := small.do("POST", eventsPath, refused, bearer(admin)...)
		expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
		if d := time.Since(asked); d > time.Second {
			t.Errorf("a full queue was answered after %v, want at once", d)
		}
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After = %q, want a number of seconds", r.header.Get("Retry-After"))
		}
		// A batch that does not fit is refused whole.
		rb := small.do("POST", batchPath, map[string]any{"events": []any{newEvent("refused_batch"), newEvent("refused_batch")}}, bearer(admin)...)
		expectProblem(t, rb, http.StatusServiceUnavailable, "unavailable")
		if rb.header.Get("Retry-After") == "" {
			t.Errorf("batch 503 without Retry-After")
		}
		// The queue and the refusals are visible.
		ev, m := readyEvents(t, small), metricValues(t, small)
		if ev["write_queue"] != float64(1) || m["nexus_events_write_queue"] != 1 {
			t.Errorf("write queue in /readyz %v and /metrics %v, want 1", ev["write_queue"], m["nexus_events_write_queue"])
		}
		if ev["refused_total"] != float64(3) || m["nexus_events_refused_total"] != 3 {
			t.Errorf("refused events in /readyz %v and /metrics %v, want 3", ev["refused_total"], m["nexus_events_refused_total"])
		}

		// The database catches up: every request in flight is stored, the refused ones are not.
		h.open()
		wg.Wait()
		for _, f := range flights {
			checkResponse(t, f.req, f.r)
			got := mustAccept(t, f.r, false)
			if got["event_id"] != f.body["event_id"] {
				t.Errorf("receipt %v for event %v", got, f.body["event_id"])
			}
		}
		list := listAllEvents(t, e, admin, "", 0)
		if len(list) != len(flights) {
			t.Errorf("%d events stored, want the %d in flight", len(list), len(flights))
		}
		for _, ev := range list {
			if ev["event_id"] == refused["event_id"] || ev["event_name"] == "refused_batch" {
				t.Errorf("a refused event was stored: %v", ev)
			}
		}

		// The retry is stored, exactly once.
		first := mustAccept(t, small.do("POST", eventsPath, refused, bearer(admin)...), false)
		again := mustAccept(t, small.do("POST", eventsPath, refused, bearer(admin)...), true)
		if again["id"] != first["id"] {
			t.Errorf("second retry %v, want the first %v", again, first)
		}
		if c := eventIDCount(t, e, admin, refused["event_id"].(string)); c != 1 {
			t.Errorf("refused then retried event stored %d times", c)
		}
		if ev := readyEvents(t, small); ev["write_queue"] != float64(0) {
			t.Errorf("write_queue after the queue drained: %v", ev["write_queue"])
		}
	})
}

// TestEventsLagWhileProcessingFails checks that /readyz and /metrics show the backlog and its age when the
// processor cannot process: that is when they matter.
func TestEventsLagWhileProcessingFails(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		e.pipe.Processor.Stop() // the failing instance's processor is the only one left
		h := newHeldStore(false, nexus.Unavailable(errors.New("rollups unavailable")))
		failing := heldInstance(t, e, 0, h)
		for range 3 {
			mustAccept(t, postEvent(failing, admin, newEvent("waiting")), false)
		}
		e.clock.Advance(2 * time.Minute)
		// The processor retries with a backoff of at most 5 s: within 6 s it has looked again.
		waitUntil(t, 6*time.Second, "/readyz and /metrics showing the 3 waiting events and their 120 s lag while processing fails "+
			"(backlog and lag must not freeze at their last good values)", func() (bool, string) {
			ev, m := readyEvents(t, failing), metricValues(t, failing)
			lag, _ := ev["lag_seconds"].(float64)
			return ev["processor_failing"] == true && m["nexus_events_processor_failing"] == 1 &&
				ev["backlog"] == float64(3) && m["nexus_events_backlog"] == 3 &&
				lag >= 120 && m["nexus_events_processing_lag_seconds"] >= 120, fmt.Sprint("/readyz ", ev, "; /metrics ", m)
		})
	})
}
