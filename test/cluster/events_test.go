//go:build linux

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// catchUpLimit bounds the wait for the processors to count every stored event.
const catchUpLimit = 90 * time.Second

// verifyEvents checks, once the load has stopped, that every acknowledged event is stored exactly once, that
// nothing is stored that was never sent, and, once the processors have emptied the backlog, that the summary
// counts every stored event.
func (c *cluster) verifyEvents(t *testing.T, w *worker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.db.URL())
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())

	rows, err := conn.Query(ctx, `SELECT event_id::text, count(*) FROM events WHERE organization_id = $1 GROUP BY event_id`, c.orgID)
	if err != nil {
		t.Fatalf("count the stored events: %v", err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		stored[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	c.rec.mu.Lock()
	defer c.rec.mu.Unlock()
	var unsent []string
	total := 0
	for id, n := range stored {
		total += n
		if n > 1 {
			c.rep.duplicated += n - 1
		}
		if !c.rec.sent[id] {
			unsent = append(unsent, id)
		}
	}
	for id := range c.rec.acked {
		if stored[id] == 0 {
			c.rep.lost++
		}
	}
	c.rep.acked, c.rep.stored = len(c.rec.acked), total
	if c.rep.lost != 0 || c.rep.duplicated != 0 || len(unsent) != 0 {
		t.Errorf("acknowledged events: %d lost, %d stored more than once, %d stored but never sent (%.3q), want 0 each",
			c.rep.lost, c.rep.duplicated, len(unsent), unsent)
	}

	// The processors (one per node, sharing the database) count each event once: the summary total equals the
	// stored events when the backlog is empty.
	deadline := time.Now().Add(catchUpLimit)
	for {
		var backlog int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM event_backlog`).Scan(&backlog); err != nil {
			t.Fatalf("read the backlog: %v", err)
		}
		if backlog == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the processors left %d events unprocessed %v after the load stopped", backlog, catchUpLimit)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a := w.send(w.base, "GET", "/v2/analytics/summary", nil, w.access)
	if a.err != nil || a.status != http.StatusOK {
		t.Fatalf("getAnalyticsSummary: %s", describe(a, a.header.Get("X-Cluster-Node")))
	}
	var sum struct {
		Total int `json:"total"`
	}
	if err := json.Unmarshal(a.body, &sum); err != nil {
		t.Fatalf("getAnalyticsSummary: %v", err)
	}
	c.rep.summaryTotal = sum.Total
	if sum.Total != total {
		t.Errorf("getAnalyticsSummary counts %d events once the backlog is empty, want the %d stored", sum.Total, total)
	}
}

// killOne kills one node with SIGKILL under load, waits until HAProxy has taken it out, starts it again and
// waits until it is back. Only requests in flight on it may fail (HAProxy's 502, or a reset); the workers retry
// them with the same event_id.
func (c *cluster) killOne(t *testing.T) {
	t.Helper()
	n := c.nodes[1]
	c.enter(t, killed)
	c.rec.mu.Lock()
	c.killAt = time.Now()
	c.rec.mu.Unlock()
	_ = n.signal(t, sigkill) // "signal: killed"
	n.mu.Lock()
	c.killedAt = n.exitedAt
	n.mu.Unlock()
	stopped := c.killedAt.Sub(c.killAt)
	c.waitState(t, n.name, "DOWN")
	out := time.Since(c.killAt)
	restarted := time.Now()
	n.start(t)
	c.waitState(t, n.name, "UP")
	c.rep.restarts = append(c.rep.restarts, restartTiming{node: n.name, how: "SIGKILL", out: out, stopped: stopped, back: time.Since(restarted)})
	c.settle(t, time.Second)
	c.enter(t, steady)
}

// checkKilled asserts phase b's outcomes: nothing but HAProxy's 5xx and transport errors failed, at most one
// request per worker (the requests in flight on the killed node), and none that started after the process was
// gone (HAProxy retries those, refused by the closed port, on another node).
func (c *cluster) checkKilled(t *testing.T) {
	t.Helper()
	r := c.rec
	if n := r.counts[killed][nexus503].Load() + r.counts[killed][unexpected].Load(); n != 0 {
		t.Errorf("b: %d answers other than 2xx, HAProxy's 5xx or transport errors: %q", n, r.samples[killed])
	}
	r.mu.Lock()
	var after int
	for _, at := range r.failedAt[killed] {
		if at.After(c.killedAt) {
			after++
		}
	}
	inFlight := len(r.failedAt[killed]) - after
	r.mu.Unlock()
	if len(r.samples[killed]) > 0 {
		t.Logf("b: the failed attempts (retried): %q", r.samples[killed])
	}
	c.rep.lines = append(c.rep.lines, fmt.Sprintf("b: failed attempts sent before the killed process was gone / after | %d / %d", inFlight, after))
	if inFlight > workerCount || after != 0 {
		t.Errorf("b: %d failed attempts were sent before the killed process was gone (at most %d, one per worker) and %d after (want 0): %q",
			inFlight, workerCount, after, r.samples[killed])
	}
}
