//go:build linux

package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// outcome classifies one HTTP attempt of the load.
type outcome int

const (
	ok2xx       outcome = iota // 2xx
	expected4xx                // the 4xx the workload asked for (409 for a deliberate conflict)
	nexus503                   // 503 with Retry-After from a nexus instance (X-Request-Id set)
	lbError                    // 502/503/504 made by HAProxy itself otherwise (no X-Request-Id)
	transport                  // no answer: connection refused, reset, timeout
	unexpected                 // anything else: always a failure
	outcomes
)

var outcomeNames = [outcomes]string{"2xx", "expected 4xx", "503 + Retry-After (nexus)", "5xx (HAProxy)", "transport error", "unexpected"}

// phase is a step of the test; an attempt counts in the phase during which it started.
type phase int

const (
	steady phase = iota
	rolling
	killed
	pgRestart
	redisDown
	authChecks
	phases
)

var phaseNames = [phases]string{"warm-up and between steps", "a. rolling restart (SIGTERM)", "b. SIGKILL one node", "c. PostgreSQL restart", "d. Redis killed", "e. revocation, key rotation"}

// recorder counts attempts by phase and outcome and keeps a few samples of failures.
type recorder struct {
	phase    atomic.Int32
	counts   [phases][outcomes]atomic.Int64
	inFlight [phases]atomic.Int64 // attempts started in each phase and not answered yet

	mu       sync.Mutex
	samples  [phases][]string
	acked    map[string]int      // event_id → 202s received for it
	sent     map[string]bool     // every event_id sent
	lastOK   time.Time           // the end of the latest 2xx
	failedAt [phases][]time.Time // when failed attempts (not 2xx or expected) started
}

func newRecorder() *recorder {
	return &recorder{acked: map[string]int{}, sent: map[string]bool{}}
}

func (r *recorder) record(p phase, o outcome, started time.Time, what string) {
	r.counts[p][o].Add(1)
	if o == ok2xx || o == expected4xx {
		r.mu.Lock()
		if now := time.Now(); now.After(r.lastOK) {
			r.lastOK = now
		}
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failedAt[p] = append(r.failedAt[p], started)
	if len(r.samples[p]) < 8 {
		r.samples[p] = append(r.samples[p], what)
	}
}

// firstOKAfter waits for a 2xx that ends after t and returns when it came (bounded by limit).
func (r *recorder) firstOKAfter(t time.Time, limit time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		last := r.lastOK
		r.mu.Unlock()
		if last.After(t) {
			return last, true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Time{}, false
}

// failures returns how many attempts of phase p were neither 2xx nor expected.
func (r *recorder) failures(p phase) int64 {
	var n int64
	for o := nexus503; o < outcomes; o++ {
		n += r.counts[p][o].Load()
	}
	return n
}

// worker is one client of the load: its own user, session and connections to HAProxy.
type worker struct {
	id       int
	base     string
	email    string
	userID   string
	password string
	clientID string
	c        *http.Client
	rng      *rand.Rand
	rec      *recorder
	access   string
	refresh  string
	events   [][]byte // bodies of acknowledged single events, for duplicates and conflicts
	err      error    // why the worker stopped early
}

// attempt is one HTTP exchange.
type attempt struct {
	status     int
	body       []byte
	header     http.Header
	err        error
	started    time.Time
	retryAfter time.Duration
}

func (w *worker) send(base, method, path string, body []byte, bearer string) attempt {
	a := attempt{started: time.Now()}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		a.err = err
		return a
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	var conn httptrace.GotConnInfo
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { conn = i }}))
	res, err := w.c.Do(req)
	if err != nil {
		local := "none"
		if conn.Conn != nil {
			local = conn.Conn.LocalAddr().String()
		}
		a.err = fmt.Errorf("%w (connection %s, reused %v, idle %v for %v; at %s)", err, local, conn.Reused, conn.WasIdle, conn.IdleTime,
			a.started.Format("15:04:05.000"))
		return a
	}
	defer res.Body.Close()
	a.body, a.err = io.ReadAll(res.Body)
	a.status, a.header = res.StatusCode, res.Header
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil {
		a.retryAfter = time.Duration(s) * time.Second
	}
	return a
}

// maxOpTime bounds one operation's retries; past it the worker gives up and the test fails.
const maxOpTime = 60 * time.Second

// do sends one operation until it gets an answer that is not a transport error or a 502/503/504, recording
// every attempt, and returns the final attempt. want is the status the operation expects; expect4xx marks a
// deliberate 4xx.
func (w *worker) do(op, method, path string, body func() []byte, bearer func() string, want int) (attempt, bool) {
	start := time.Now()
	for {
		p := phase(w.rec.phase.Load())
		w.rec.inFlight[p].Add(1)
		a := w.send(w.base, method, path, body(), bearer())
		w.rec.inFlight[p].Add(-1)
		o := classify(a, want)
		node := a.header.Get("X-Cluster-Node")
		w.rec.record(p, o, a.started, fmt.Sprintf("%s %s %s: %s", op, method, path, describe(a, node)))
		switch o {
		case ok2xx, expected4xx:
			return a, true
		case nexus503, lbError, transport:
			if time.Since(start) > maxOpTime {
				w.err = fmt.Errorf("%s %s: no answer within %v: %s", method, path, maxOpTime, describe(a, node))
				return a, false
			}
			wait := 50 * time.Millisecond
			if a.retryAfter > 0 {
				wait = min(a.retryAfter, time.Second) // the test has little time: a second at most
			}
			time.Sleep(wait)
		default:
			return a, false
		}
	}
}

func classify(a attempt, want int) outcome {
	switch {
	case a.err != nil:
		return transport
	case a.status == want && want >= 400:
		return expected4xx
	case a.status == want:
		return ok2xx
	case a.status == http.StatusServiceUnavailable && a.header.Get("X-Request-Id") != "" && a.retryAfter > 0:
		return nexus503
	case (a.status == 502 || a.status == 503 || a.status == 504) && a.header.Get("X-Request-Id") == "":
		return lbError
	}
	return unexpected
}

func describe(a attempt, node string) string {
	if a.err != nil {
		return a.err.Error()
	}
	return fmt.Sprintf("%d from %q: %.200s", a.status, node, a.body)
}

// tokenPair is what the workload reads of a TokenResponse.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	User         struct {
		ID string `json:"id"`
	} `json:"user"`
}

func (w *worker) login() bool {
	body, _ := json.Marshal(map[string]string{"email": w.email, "password": w.password, "client_id": w.clientID})
	a, ok := w.do("login", "POST", "/v2/auth/login", func() []byte { return body }, func() string { return "" }, 200)
	if !ok {
		return false
	}
	return w.takeTokens(a)
}

func (w *worker) takeTokens(a attempt) bool {
	var tp tokenPair
	if err := json.Unmarshal(a.body, &tp); err != nil || tp.AccessToken == "" || tp.RefreshToken == "" {
		w.err = fmt.Errorf("no tokens in %.200s", a.body)
		return false
	}
	w.access, w.refresh, w.userID = tp.AccessToken, tp.RefreshToken, tp.User.ID
	return true
}

// refreshSession refreshes the worker's own session: a retry re-presents the same refresh token, which the
// grace period answers with the same successor.
func (w *worker) refreshSession() bool {
	body, _ := json.Marshal(map[string]string{"refresh_token": w.refresh, "client_id": w.clientID})
	a, ok := w.do("refresh", "POST", "/v2/auth/refresh", func() []byte { return body }, func() string { return "" }, 200)
	return ok && w.takeTokens(a)
}

func (w *worker) bearer() string { return w.access }

func (w *worker) read(op, path string) bool {
	_, ok := w.do(op, "GET", path, func() []byte { return nil }, w.bearer, 200)
	return ok
}

// run sends operations until stop is closed, pausing between them; the mix is about 35% single events, 10%
// batches of 10, 5% duplicates, 3% deliberate conflicts, 12% listUsers, 15% getUser, 3% summaries, 15% refreshes
// and 2% new logins.
func (w *worker) run(stop <-chan struct{}, pause time.Duration) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(pause):
		}
		var ok bool
		switch p := w.rng.IntN(100); {
		case p < 35:
			ok = w.trackEvent()
		case p < 45:
			ok = w.trackBatch()
		case p < 50:
			ok = w.resend()
		case p < 53:
			ok = w.conflict()
		case p < 65:
			ok = w.read("listUsers", "/v2/users?limit=20")
		case p < 80:
			ok = w.read("getUser", "/v2/users/"+w.userID)
		case p < 83:
			ok = w.read("getAnalyticsSummary", "/v2/analytics/summary")
		case p < 98:
			ok = w.refreshSession()
		default:
			ok = w.login()
		}
		if !ok && w.err != nil {
			return
		}
	}
}
