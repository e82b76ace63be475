//go:build linux

package cluster

import (
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/httpapi/apitest"
)

// restartPostgres stops PostgreSQL (pg_ctl stop -m fast) and starts it again under load. Requests meanwhile are
// answered 2xx or 503 with Retry-After (by a node, or by HAProxy when every node's /readyz has failed twice:
// see noNodeLeft), the load recovers by itself, and no node restarts.
func (c *cluster) restartPostgres(t *testing.T) {
	t.Helper()
	pids := c.pids()
	c.enter(t, pgRestart)
	began := time.Now()
	c.db.Stop()
	c.db.Start()
	started := time.Now()
	c.rep.pgOutage = started.Sub(began)
	first, ok := c.rec.firstOKAfter(started, time.Minute)
	if !ok {
		t.Fatalf("c: no request succeeded within a minute of PostgreSQL's start")
	}
	c.rep.pgRecovery = first.Sub(started)
	c.settle(t, 2*time.Second)
	c.enter(t, steady)
	c.checkSamePIDs(t, "c", pids)
}

func (c *cluster) pids() []int {
	var out []int
	for _, n := range c.nodes {
		out = append(out, n.pid())
	}
	return out
}

// checkSamePIDs fails the test if a node restarted or exited since pids were taken.
func (c *cluster) checkSamePIDs(t *testing.T, step string, pids []int) {
	t.Helper()
	for i, n := range c.nodes {
		if !n.running() || n.pid() != pids[i] {
			t.Errorf("%s: %s restarted or exited (pid %d, was %d): %v\nlog tail:\n%s", step, n.name, n.pid(), pids[i], n.exitErr(), n.log)
		}
	}
}

// killRedis kills redis-server under load: every node goes on with limits of its own (nexus_rate_limits_degraded
// 1) and no request fails; once Redis is started again, every node shares its limits through it again.
func (c *cluster) killRedis(t *testing.T) {
	t.Helper()
	pids := c.pids()
	c.enter(t, redisDown)
	killed := time.Now()
	c.redis.Stop()
	c.rep.redisDegraded = c.waitMetric(t, "nexus_rate_limits_degraded", 1, killed)
	c.settle(t, 2*time.Second) // the load goes on with local limits
	started := time.Now()
	c.redis.Start()
	c.rep.redisRecovery = c.waitMetric(t, "nexus_rate_limits_degraded", 0, started)
	c.settle(t, time.Second)
	c.enter(t, steady)
	c.checkSamePIDs(t, "d", pids)
}

// waitMetric waits (at most a minute) until every node's metrics listener reports series at want, and returns
// how long after since that was.
func (c *cluster) waitMetric(t *testing.T, series string, want float64, since time.Time) time.Duration {
	t.Helper()
	deadline := since.Add(time.Minute)
	for {
		all := true
		var seen []string
		for _, n := range c.nodes {
			v, err := n.metric(series)
			seen = append(seen, fmt.Sprintf("%s=%v (%v)", n.name, v, err))
			all = all && err == nil && v == want
		}
		if all {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %v on every node within a minute: %v", series, want, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noNodeLeft stops every node (SIGKILL) and asks HAProxy once it has taken them all out of the rotation: its own
// answer must be what the API documents for a 503 (a problem+json with Retry-After and X-Request-Id), as
// production's haproxy.cfg makes it, so that clients back off as they do for nexus's own 503s.
func (c *cluster) noNodeLeft(t *testing.T) {
	t.Helper()
	for _, n := range c.nodes {
		_ = n.signal(t, syscall.SIGKILL)
	}
	for _, n := range c.nodes {
		c.waitState(t, n.name, "DOWN")
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+c.lb.addr+"/v2/users", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer x")
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("HAProxy with no node up: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("HAProxy with no node up answered %d (Retry-After %q), want 503 with Retry-After: %s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	if err := apitest.Validate(req, res.StatusCode, res.Header, body); err != nil {
		t.Errorf("HAProxy's 503 with no node up is not the documented answer: %v\n%s", err, body)
	}
	c.rep.noNode = fmt.Sprintf("503 problem+json, Retry-After %s", res.Header.Get("Retry-After"))
}
