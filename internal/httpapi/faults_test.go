package httpapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite" // the "sqlite" driver, for a second connection that holds the write lock
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// The request deadline of the fault tests (NEXUS_REQUEST_TIMEOUT), and the slack a loaded test machine gets on
// top of it: every answer during a fault must come within faultTimeout + faultMargin.
const (
	faultTimeout = 1500 * time.Millisecond
	faultMargin  = time.Second
)

// denied are strings no response body may carry: SQL, driver names, stack traces, file paths, network
// errors. They are matched case-insensitively.
var denied = []string{"SQLSTATE", "pgx", "pgconn", "postgres", "sqlite", "SELECT", "INSERT", "goroutine", ".go:",
	"/root/", "/work/", "dial tcp", "connection refused"}

// faultEnv is a server over db whose requests have faultTimeout as their deadline, with the admin logged in,
// and spare sessions of the admin for logout.
type faultEnv struct {
	*env
	target string // a user of org A whose name updateUser changes

	mu      sync.Mutex
	bearer  []string // the admin's Authorization header; its session is never logged out
	refresh string   // the refresh token of that session
	spares  []string // access tokens of other sessions of the admin, for logout
	n       atomic.Int64
}

func newFaultEnv(t *testing.T, db *store.DB, spares int) *faultEnv {
	t.Helper()
	e := newEnv(t, db)
	e.h = faultHandler(e, store.NewEvents(db))
	f := &faultEnv{env: e, target: e.user(e.orgA.ID, "target@example.com", "member", "not-a-hash").ID}
	access, refresh := e.tokens(webClient)
	f.bearer, f.refresh = bearer(access), refresh
	for range spares {
		spare, _ := e.tokens(webClient)
		f.spares = append(f.spares, spare)
	}
	return f
}

// faultHandler returns a handler over e's services, with the analytics service over events, whose requests
// have faultTimeout as their deadline.
func faultHandler(e *env, events analytics.Store) http.Handler {
	dir, err := users.NewService(users.Options{Store: store.NewUsers(e.db), CheckPassword: auth.CheckNewPassword,
		HashPassword: auth.HashPassword, RefreshIdleTTL: 30 * 24 * time.Hour, Now: e.clock.Now})
	must(e.t, err)
	an, err := analytics.NewService(analytics.Options{Store: events, Writer: e.pipe.Writer, Now: e.clock.Now})
	must(e.t, err)
	_, h, err := New(Options{Auth: e.svc, Users: dir, Analytics: an, Pipeline: e.pipe, Ready: e.db.Ping,
		JWKSMaxAge: 5 * time.Minute, Limiter: e.limiter, Limits: e.limits, RequestTimeout: faultTimeout})
	must(e.t, err)
	return h
}

// faultOp is one operation of the contract that needs the database.
type faultOp struct {
	name  string
	write bool // it writes to the database
	// send sends one request of the operation through h and records what the answer changes.
	send func(f *faultEnv, h http.Handler) faultAnswer
}

// faultOps are every operation that needs the database. Each request is new (new emails and event ids); the
// refresh token and the spare session follow what the server answered.
var faultOps = []faultOp{
	{"login", true, sendLogin},
	{"refreshToken", true, func(f *faultEnv, h http.Handler) faultAnswer {
		// A refresh answered 503 may have rotated the token; presenting it again is within the grace period
		// (the test clock stands still), so the token is kept until a refresh succeeds.
		f.mu.Lock()
		defer f.mu.Unlock()
		a := timed(f.t, h, "POST", "/v2/auth/refresh", map[string]any{"refresh_token": f.refresh, "client_id": webClient})
		if a.resp.status == http.StatusOK {
			f.refresh = a.resp.str(f.t, "refresh_token")
		}
		return a
	}},
	{"logout", true, func(f *faultEnv, h http.Handler) faultAnswer {
		// The spare session is logged out once: after a 503 its revocation may have been committed, so it is
		// never presented again; a later login gives a new one. Without a spare, the login is what is sent.
		f.mu.Lock()
		var spare string
		if n := len(f.spares); n > 0 {
			spare, f.spares = f.spares[n-1], f.spares[:n-1]
		}
		f.mu.Unlock()
		if spare == "" {
			return sendLogin(f, h)
		}
		return timed(f.t, h, "POST", "/v2/auth/logout", nil, bearer(spare)...)
	}},
	{"listUsers", false, func(f *faultEnv, h http.Handler) faultAnswer {
		return timed(f.t, h, "GET", "/v2/users?limit=5", nil, f.bearer...)
	}},
	{"getUser", false, func(f *faultEnv, h http.Handler) faultAnswer {
		return timed(f.t, h, "GET", "/v2/users/"+f.admin.ID+"?include_permissions=true&include_activity=true", nil, f.bearer...)
	}},
	{"createUser", true, func(f *faultEnv, h http.Handler) faultAnswer {
		n := f.n.Add(1)
		return timed(f.t, h, "POST", "/v2/users", map[string]any{"email": fmt.Sprintf("new%d@example.com", n), "name": "New",
			"role": "member", "password": "a long initial passphrase"}, f.bearer...)
	}},
	{"updateUser", true, func(f *faultEnv, h http.Handler) faultAnswer {
		return timed(f.t, h, "PATCH", "/v2/users/"+f.target, map[string]any{"name": fmt.Sprintf("Target %d", f.n.Add(1))}, f.bearer...)
	}},
	{"trackEvent", true, func(f *faultEnv, h http.Handler) faultAnswer {
		return timed(f.t, h, "POST", "/v2/analytics/events", outageEvent(uuid.NewString(), int(f.n.Add(1))), f.bearer...)
	}},
	{"trackEventBatch", true, func(f *faultEnv, h http.Handler) faultAnswer {
		n := int(f.n.Add(1))
		batch := map[string]any{"events": []any{outageEvent(uuid.NewString(), n), outageEvent(uuid.NewString(), n)}}
		return timed(f.t, h, "POST", "/v2/analytics/events/batch", batch, f.bearer...)
	}},
	{"listEvents", false, func(f *faultEnv, h http.Handler) faultAnswer {
		return timed(f.t, h, "GET", "/v2/analytics/events?limit=5", nil, f.bearer...)
	}},
	{"getAnalyticsSummary", false, func(f *faultEnv, h http.Handler) faultAnswer {
		return timed(f.t, h, "GET", "/v2/analytics/summary", nil, f.bearer...)
	}},
	{"getJwks", false, func(f *faultEnv, h http.Handler) faultAnswer {
		return timed(f.t, h, "GET", "/v2/.well-known/jwks.json", nil)
	}},
}

// sendLogin logs the admin in; the session is a spare for logout.
func sendLogin(f *faultEnv, h http.Handler) faultAnswer {
	a := timed(f.t, h, "POST", "/v2/auth/login", map[string]any{"email": adminEmail, "password": adminPassword, "client_id": webClient})
	if a.resp.status == http.StatusOK {
		f.mu.Lock()
		f.spares = append(f.spares, a.resp.str(f.t, "access_token"))
		f.mu.Unlock()
	}
	return a
}

// staleKeys moves the clock past the signing keys' reload interval, so that the next request that needs them
// (JWKS, and every bearer token) reads them from the database again.
func (f *faultEnv) staleKeys() { f.clock.Advance(31 * time.Second) }

// faultAnswer is one recorded exchange.
type faultAnswer struct {
	op   string
	req  *http.Request
	resp resp
	took time.Duration
}

// timed sends a request through h and records the answer and how long it took.
func timed(t testing.TB, h http.Handler, method, path string, body any, header ...string) faultAnswer {
	start := time.Now()
	req, r := exchange(t, h, method, path, body, header...)
	return faultAnswer{req: req, resp: r, took: time.Since(start)}
}

// sendAll sends one request of each operation, all at once, and returns the answers in the order of ops.
func (f *faultEnv) sendAll(ops []faultOp) []faultAnswer {
	out := make([]faultAnswer, len(ops))
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = op.send(f, f.h)
			out[i].op = op.name
		}()
	}
	wg.Wait()
	return out
}

// checkFaultAnswer fails unless a is an answer of the contract, 2xx or 503 unavailable with an integer
// Retry-After, came within faultTimeout + faultMargin, and carries nothing of the server's insides.
func checkFaultAnswer(t *testing.T, a faultAnswer) {
	t.Helper()
	checkAnswer(t, a)
	if a.took > faultTimeout+faultMargin {
		t.Errorf("%s: answered %d after %v, want within %v", a.op, a.resp.status, a.took, faultTimeout+faultMargin)
	}
}

// checkAnswer is checkFaultAnswer without the bound on time.
func checkAnswer(t *testing.T, a faultAnswer) {
	t.Helper()
	checkResponse(t, a.req, a.resp)
	noInsides(t, a.op, a.resp)
	if a.resp.status/100 != 2 {
		expectUnavailable(t, a.resp)
	}
}

// noInsides fails if a response body carries SQL, driver names, stack traces, file paths or network errors.
func noInsides(t *testing.T, what string, r resp) {
	t.Helper()
	body := strings.ToLower(string(withoutRandom(r.body)))
	for _, s := range denied {
		if strings.Contains(body, strings.ToLower(s)) {
			t.Fatalf("%s: the %d response carries %q: %s", what, r.status, s, r.body)
		}
	}
}

// randomMembers are members of response bodies whose values are random, and may spell anything.
var randomMembers = map[string]bool{"request_id": true, "access_token": true, "refresh_token": true, "kid": true, "x": true, "y": true}

// withoutRandom returns a JSON body with the values of randomMembers blanked out, or any other body as it is.
func withoutRandom(body []byte) []byte {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return body
	}
	var scrub func(v any)
	scrub = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, m := range v {
				if _, ok := m.(string); ok && randomMembers[k] {
					v[k] = ""
				} else {
					scrub(m)
				}
			}
		case []any:
			for _, m := range v {
				scrub(m)
			}
		}
	}
	scrub(v)
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// expectFaultAnswers checks every answer, and that the operations named in want503 were answered 503 and the
// others 2xx (want503 nil: every answer 503).
func expectFaultAnswers(t *testing.T, answers []faultAnswer, want503 func(faultOp) bool) {
	t.Helper()
	var slowest time.Duration
	for i, a := range answers {
		checkFaultAnswer(t, a)
		slowest = max(slowest, a.took)
		if unavailable := want503 == nil || want503(faultOps[i]); unavailable != (a.resp.status == http.StatusServiceUnavailable) {
			t.Errorf("%s: %d %s; want %s", a.op, a.resp.status, a.resp.body, map[bool]string{true: "503", false: "2xx"}[unavailable])
		}
	}
	t.Logf("%d operations answered, the slowest in %v", len(answers), slowest.Round(time.Millisecond))
}

// awaitUnready polls /readyz until it answers 503, and fails unless that happens within 2 s of down.
func awaitUnready(t *testing.T, e *env, down time.Time) {
	t.Helper()
	for {
		r := e.do("GET", "/readyz", nil)
		noInsides(t, "/readyz", r)
		if r.status == http.StatusServiceUnavailable {
			if got := r.obj(t); got["status"] != "unavailable" || got["database"] != "unreachable" {
				t.Errorf("/readyz during the fault: %s", r.body)
			}
			t.Logf("/readyz failed %v after the fault began", time.Since(down).Round(time.Millisecond))
			return
		}
		if r.status != http.StatusOK {
			t.Fatalf("/readyz during the fault: %d %s", r.status, r.body)
		}
		if time.Since(down) > readyzDetects {
			t.Fatalf("/readyz still answers %d %v after the fault began", r.status, time.Since(down))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// expectHealthy fails unless /healthz answers 200 promptly.
func expectHealthy(t *testing.T, e *env) {
	t.Helper()
	start := time.Now()
	r := e.do("GET", "/healthz", nil)
	if r.status != http.StatusOK || time.Since(start) > faultMargin {
		t.Fatalf("/healthz: %d after %v: %s", r.status, time.Since(start), r.body)
	}
}

// expectRecovered sends each operation until it is answered 2xx — a request may still meet a connection the
// fault broke, and be answered 503 — and fails on any other answer, or when one keeps failing.
func expectRecovered(t *testing.T, f *faultEnv) {
	t.Helper()
	for _, op := range faultOps {
		for i := 1; ; i++ {
			a := op.send(f, f.h)
			a.op = op.name
			checkFaultAnswer(t, a)
			if a.resp.status/100 == 2 {
				break
			}
			if i == 20 {
				t.Fatalf("%s after the fault: still %d after %d attempts: %s", op.name, a.resp.status, i, a.resp.body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestFaultPoolExhausted takes every connection of a small pool away from the server: each operation waits
// for a connection until its deadline and is answered 503 unavailable with Retry-After, /readyz fails within
// 2 s, /healthz stays up, and all of it recovers by itself once the connections come back.
func TestFaultPoolExhausted(t *testing.T) {
	const conns = 2
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			f := newFaultEnv(t, openPool(t, d, conns), 1)
			expectRecovered(t, f) // every operation works with a pool of 2
			f.staleKeys()

			ctx := context.Background()
			var release []func()
			for range conns {
				r, err := f.db.Hold(ctx)
				must(t, err)
				release = append(release, r)
			}
			down := time.Now()
			awaitUnready(t, f.env, down)
			expectHealthy(t, f.env)
			expectFaultAnswers(t, f.sendAll(faultOps), nil)
			expectHealthy(t, f.env)

			for _, r := range release {
				r()
			}
			awaitReady(t, f.env)
			expectRecovered(t, f)
		})
	}
}

// TestFaultSQLiteWriteLock stalls the embedded database the way another process does that holds the write
// lock (BEGIN IMMEDIATE, never committed): every operation that writes is answered 503 unavailable with
// Retry-After at its deadline instead of waiting out SQLite's busy timeout, every operation that only reads
// keeps working (write-ahead log), and once the lock is released the writes succeed again.
func TestFaultSQLiteWriteLock(t *testing.T) {
	dir := t.TempDir()
	f := newFaultEnv(t, openMigrated(t, store.Options{DataDir: dir}), 1)
	expectRecovered(t, f)
	f.staleKeys()

	other, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.SQLiteFile)+"?_pragma=busy_timeout(5000)")
	must(t, err)
	defer other.Close()
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	must(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	must(t, err)

	if r := f.do("GET", "/readyz", nil); r.status != http.StatusOK {
		t.Errorf("/readyz while only writes wait: %d %s; want 200, reads work", r.status, r.body)
	}
	expectHealthy(t, f.env)
	expectFaultAnswers(t, f.sendAll(faultOps), func(op faultOp) bool { return op.write })

	_, err = conn.ExecContext(ctx, "ROLLBACK")
	must(t, err)
	expectRecovered(t, f)
}

// openPool opens and migrates a fresh database of dialect d whose pool holds conns connections at most.
func openPool(t *testing.T, d store.Dialect, conns int) *store.DB {
	t.Helper()
	opts := store.Options{DataDir: t.TempDir(), MaxConns: conns}
	if d == store.Postgres {
		opts.URL = testdb.PostgresURL(t)
	}
	return openMigrated(t, opts)
}

// openMigrated opens and migrates a database, closed when the test ends.
func openMigrated(t *testing.T, opts store.Options) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, opts)
	must(t, err)
	t.Cleanup(func() { _ = db.Close() })
	_, err = db.Migrate(ctx)
	must(t, err)
	return db
}

// TestFaultDeadlineUnclassified: an error that the request's deadline causes is answered 503 unavailable with
// Retry-After even when nothing on its way classified it; the same error without the deadline is a bug, 500.
func TestFaultDeadlineUnclassified(t *testing.T) {
	f := newFaultEnv(t, storetest.Open(t, store.SQLite), 0)
	stuck := &stuckCounts{Store: store.NewEvents(f.db)}
	f.h = faultHandler(f.env, stuck)

	stuck.wait.Store(true)
	a := timed(t, f.h, "GET", "/v2/analytics/summary", nil, f.bearer...)
	a.op = "getAnalyticsSummary"
	checkFaultAnswer(t, a)
	expectUnavailable(t, a.resp)
	if a.took < faultTimeout {
		t.Errorf("answered after %v, before the deadline of %v", a.took, faultTimeout)
	}

	stuck.wait.Store(false)
	r := f.do("GET", "/v2/analytics/summary", nil, f.bearer...)
	expectProblem(t, r, http.StatusInternalServerError, "internal")
	noInsides(t, "getAnalyticsSummary", r)
}

// stuckCounts is an events store whose DailyCounts fails with an unclassified error: at the end of its
// context when wait is set, at once otherwise.
type stuckCounts struct {
	analytics.Store
	wait atomic.Bool
}

func (s *stuckCounts) DailyCounts(ctx context.Context, _ string, _ analytics.SummaryQuery) ([]analytics.Count, error) {
	if s.wait.Load() {
		<-ctx.Done()
		return nil, fmt.Errorf("daily counts: %w", ctx.Err())
	}
	return nil, errors.New("daily counts: out of luck")
}
