//go:build linux

package cluster

import (
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/testdb"
	"github.com/nexus-cloud/nexus-core/internal/testredis"
)

const (
	sigkill = syscall.SIGKILL

	keyPublishDelay = 35 * time.Second
	nodeCount       = 3
	workerCount     = 4
	workerPause     = 15 * time.Millisecond // between a worker's operations: a bounded load on a 2-core machine
	password        = "cluster test passphrase 0123"
	clientID        = "cluster-test"
	orgDomain       = "cluster.example.com"
	budgetEmail     = "budget@" + orgDomain
	revokerEmail    = "revoker@" + orgDomain
)

// cluster is everything the test started.
type cluster struct {
	bin   string
	env   []string // the nodes' and the admin commands' environment
	db    *testdb.Dedicated
	redis *testredis.Server
	lb    *lb
	nodes []*node
	lbs   lbSettings
	orgID string
	rec   *recorder
	rep   *report

	killAt   time.Time // when phase b's SIGKILL was sent
	killedAt time.Time // when the killed process was gone
}

// TestCluster is the cluster test; see the package documentation and README's "Cluster test".
func TestCluster(t *testing.T) {
	if os.Getenv("NEXUS_CLUSTER_TEST") != "1" {
		t.Skip("the cluster test runs with NEXUS_CLUSTER_TEST=1 (make cluster-test)")
	}
	ci := os.Getenv("CI") == "true"
	haproxy, err := findHAProxy()
	if err != nil {
		if ci {
			t.Fatalf("the cluster test needs HAProxy in CI: %v", err)
		}
		t.Skipf("SKIPPING the cluster test: %v", err)
	}
	c := &cluster{rec: newRecorder(), rep: &report{}}
	began := time.Now()
	c.setUp(t, haproxy)
	t.Logf("cluster up in %v: HAProxy on %s, nodes %s, %s, %s", time.Since(began).Round(time.Millisecond),
		c.lb.addr, c.nodes[0].addr, c.nodes[1].addr, c.nodes[2].addr)

	newKid, activeFrom, before := c.rotateKey(t)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	workers := c.startLoad(t, stop, &wg)
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()
	c.settle(t, 2*time.Second)

	c.rollingRestart(t)
	c.killOne(t)
	c.restartPostgres(t)
	c.killRedis(t)
	c.enter(t, authChecks)
	c.revocation(t)
	c.checkRotation(t, newKid, activeFrom, before)
	c.enter(t, steady)
	stopLoad()
	// Without the load: a Redis round trip slower than the limiter's timeout (100 ms, easily reached on two busy
	// cores) makes that node keep limits of its own for a while, by design; the budget is then no longer shared.
	c.budget(t)

	for _, w := range workers {
		if w.err != nil {
			t.Errorf("worker %d stopped: %v", w.id, w.err)
		}
	}
	c.verifyEvents(t, workers[0])
	defer c.rep.print(c)
	c.checkKilled(t)
	c.noNodeLeft(t)
	// No request fails between the steps, during the rolling restart, or while Redis is down; while PostgreSQL
	// restarts, only 503s with Retry-After.
	for _, p := range []phase{steady, rolling, redisDown, authChecks} {
		if n := c.rec.failures(p); n != 0 {
			t.Errorf("%s: %d requests failed, want 0: %s", phaseNames[p], n, strings.Join(c.rec.samples[p], "\n"))
		}
	}
	r := &c.rec.counts[pgRestart]
	if n := r[lbError].Load() + r[transport].Load() + r[unexpected].Load(); n != 0 {
		t.Errorf("%s: %d answers other than 2xx or 503 with Retry-After: %s", phaseNames[pgRestart], n, strings.Join(c.rec.samples[pgRestart], "\n"))
	}
}

// enter starts phase p: attempts count in it from now on. It returns once every attempt started before has been
// answered (at most a minute), so that what the phase does reaches no request of another phase.
func (c *cluster) enter(t *testing.T, p phase) {
	t.Helper()
	c.rec.phase.Store(int32(p))
	deadline := time.Now().Add(time.Minute)
	for q := range phases {
		for q != p && c.rec.inFlight[q].Load() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d requests of %s still in flight a minute after it ended", c.rec.inFlight[q].Load(), phaseNames[q])
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// waitState waits until HAProxy reports server in state and returns how long it took.
func (c *cluster) waitState(t *testing.T, server, state string) time.Duration {
	t.Helper()
	return c.lb.waitState(t, server, state, time.Minute)
}

// settle lets the load run for d.
func (c *cluster) settle(t *testing.T, d time.Duration) {
	t.Helper()
	time.Sleep(d)
}

func newSecret() string {
	b := make([]byte, 32)
	_, _ = crand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// setUp starts PostgreSQL, Redis, seeds the database with the admin commands, starts the nodes and HAProxy, and
// waits until HAProxy sees every node up.
func (c *cluster) setUp(t *testing.T, haproxy string) {
	t.Helper()
	c.db = testdb.NewDedicated(t)
	c.redis = testredis.Start(t)
	c.bin = buildNexus(t)
	c.lbs = readLBSettings(t)
	// Above HAProxy's interval × fall, as compose.yaml's 5 s is above its 2 s × 2: a draining node is out of the
	// rotation before its listener closes.
	shutdownDelay := c.lbs.inter*time.Duration(c.lbs.fall) + time.Second
	c.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"NEXUS_DATABASE_URL=" + c.db.URL(), "NEXUS_REDIS_URL=" + c.redis.URL(), "NEXUS_SECRET_KEY=" + newSecret(),
		"NEXUS_BEHIND_TLS_PROXY=true", "NEXUS_TRUSTED_PROXIES=127.0.0.1/32", "NEXUS_LOG_LEVEL=warn",
		"NEXUS_SHUTDOWN_DELAY=" + shutdownDelay.String(),
		// A rotated key signs after this: more than a node's key reload interval (30 s), as production's 10 m.
		"NEXUS_KEY_PUBLISH_DELAY=" + keyPublishDelay.String(),
		// The load comes from one address through one client: its per-IP and per-client limits are raised so that
		// the workload is never refused; login_failures (10/15m) keeps its default for the budget check.
		"NEXUS_RATE_LIMIT_IP=1000000/1m", "NEXUS_RATE_LIMIT_AUTH_IP=1000000/1m", "NEXUS_RATE_LIMIT_CLIENT=1000000/1m",
		"NEXUS_RATE_LIMIT_LOGIN_ACCOUNT=1000/1m", "NEXUS_RATE_LIMIT_PRINCIPAL=1000000/1m",
	}
	cli(t, c.bin, c.env, "", nil, "migrate")
	cli(t, c.bin, c.env, "", &struct{}{}, "client", "create", "--client-id", clientID, "--name", "Cluster test")
	var org struct{ ID string }
	cli(t, c.bin, c.env, "", &org, "org", "create", "--name", "Cluster test")
	c.orgID = org.ID
	emails := []string{budgetEmail, revokerEmail}
	for i := range workerCount {
		emails = append(emails, fmt.Sprintf("worker%d@%s", i, orgDomain))
	}
	for _, e := range emails {
		cli(t, c.bin, c.env, password+"\n", &struct{}{}, "user", "create", "--org", c.orgID, "--email", e,
			"--role", "admin", "--name", "Cluster "+strings.Split(e, "@")[0], "--password-stdin")
	}

	for i := range nodeCount {
		n := &node{name: fmt.Sprintf("nexus%d", i+1), bin: c.bin, addr: freePort(t), metricsAddr: freePort(t), env: c.env, log: &tailBuffer{}}
		c.nodes = append(c.nodes, n)
		t.Cleanup(n.cleanup)
	}
	for _, n := range c.nodes {
		n.start(t)
	}
	c.lb = startLB(t, haproxy, c.lbs, c.nodes)
	for _, n := range c.nodes {
		c.waitState(t, n.name, "UP")
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("%s log tail:\n%s", n.name, n.log)
			}
			t.Logf("HAProxy log tail:\n%s", c.lb.log)
		}
	})
}

// startLoad logs every worker in and starts it.
func (c *cluster) startLoad(t *testing.T, stop <-chan struct{}, wg *sync.WaitGroup) []*worker {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	var workers []*worker
	for i := range workerCount {
		w := &worker{id: i, base: "http://" + c.lb.addr, email: fmt.Sprintf("worker%d@%s", i, orgDomain), password: password,
			clientID: clientID, rec: c.rec, rng: rand.New(rand.NewPCG(seed, uint64(i))), // #nosec G404 -- event ids and the mix, nothing secret
			c: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}}}
		if !w.login() {
			t.Fatalf("worker %d: login through HAProxy: %v", i, w.err)
		}
		workers = append(workers, w)
	}
	for _, w := range workers {
		wg.Go(func() { w.run(stop, workerPause) })
	}
	return workers
}

// rollingRestart restarts every node in turn with SIGTERM: it waits for the exit (status 0), starts it again and
// waits until HAProxy has it up again.
func (c *cluster) rollingRestart(t *testing.T) {
	t.Helper()
	c.enter(t, rolling)
	for _, n := range c.nodes {
		began := time.Now()
		n.mu.Lock()
		cmd, exited := n.cmd, n.exited
		n.mu.Unlock()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("%s: SIGTERM: %v", n.name, err)
		}
		out := c.waitState(t, n.name, "DOWN")
		select {
		case <-exited:
		case <-time.After(time.Minute):
			t.Fatalf("%s did not exit within a minute of SIGTERM\nlog tail:\n%s", n.name, n.log)
		}
		if err := n.exitErr(); err != nil {
			t.Fatalf("%s exited with %v after SIGTERM, want 0\nlog tail:\n%s", n.name, err, n.log)
		}
		stopped := time.Since(began)
		restarted := time.Now()
		n.start(t)
		c.waitState(t, n.name, "UP")
		c.rep.restarts = append(c.rep.restarts, restartTiming{node: n.name, how: "SIGTERM", out: out, stopped: stopped, back: time.Since(restarted)})
	}
	c.settle(t, time.Second)
	c.enter(t, steady)
}
