package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nexus-cloud/nexus-core/internal/ratelimit"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testredis"
)

// withLimits returns another instance of e's server, sharing its database, with a limiter of its own (over
// Redis when redisURL is set) and the given limits.
func withLimits(t testing.TB, e *env, limits Limits, redisURL string) *env {
	t.Helper()
	// A generous Redis timeout: a loaded test machine must not make Redis look failed (and the limits local).
	l, err := ratelimit.New(ratelimit.Options{RedisURL: redisURL, Secret: testSecret, RecheckEvery: 100 * time.Millisecond, Timeout: 2 * time.Second})
	must(t, err)
	t.Cleanup(func() { _ = l.Close() })
	n := *e
	n.limiter, n.limits = l, limits
	n.start()
	must(t, n.svc.EnsureSigningKey(t.Context()))
	return &n
}

// from sends a request through the handler as if it came from the socket peer remote ("ip:port"), with the
// given headers, and checks the response against the contract.
func (e *env) from(remote, method, path string, body any, header ...string) resp {
	e.t.Helper()
	var raw []byte
	if body != nil {
		var err error
		raw, err = json.Marshal(body)
		must(e.t, err)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(raw))
	req.RemoteAddr = remote
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	checkResponse(e.t, req, r)
	return r
}

var (
	rateLimitItem  = regexp.MustCompile(`^"([a-z_]+)";r=(\d+);t=(\d+)$`)
	rateLimitQuota = regexp.MustCompile(`^"([a-z_]+)";q=(\d+);w=(\d+)$`)
)

// limitsOf parses the RateLimit and RateLimit-Policy headers of r: remaining and quota by policy name. It fails
// the test when either header is missing or malformed, or when they do not name the same policies.
func limitsOf(t testing.TB, r resp) (remaining, quota map[string]int) {
	t.Helper()
	remaining, quota = map[string]int{}, map[string]int{}
	for _, it := range strings.Split(r.header.Get("RateLimit"), ", ") {
		m := rateLimitItem.FindStringSubmatch(it)
		if m == nil {
			t.Fatalf("RateLimit %q: item %q is not \"name\";r=N;t=N", r.header.Get("RateLimit"), it)
		}
		remaining[m[1]], _ = strconv.Atoi(m[2])
	}
	for _, it := range strings.Split(r.header.Get("RateLimit-Policy"), ", ") {
		m := rateLimitQuota.FindStringSubmatch(it)
		if m == nil {
			t.Fatalf("RateLimit-Policy %q: item %q is not \"name\";q=N;w=N", r.header.Get("RateLimit-Policy"), it)
		}
		quota[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(remaining) != len(quota) {
		t.Fatalf("RateLimit %q and RateLimit-Policy %q name different policies", r.header.Get("RateLimit"), r.header.Get("RateLimit-Policy"))
	}
	for name := range remaining {
		if _, ok := quota[name]; !ok {
			t.Fatalf("RateLimit names %q, RateLimit-Policy does not", name)
		}
	}
	return remaining, quota
}

// retryAfter returns the integer Retry-After of a 429, failing unless it is one.
func retryAfter(t testing.TB, r resp) time.Duration {
	t.Helper()
	expectProblem(t, r, http.StatusTooManyRequests, "rate_limited")
	n, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("429 with Retry-After %q, want a positive integer", r.header.Get("Retry-After"))
	}
	return time.Duration(n) * time.Second
}

func q(limit int, window time.Duration) ratelimit.Quota {
	return ratelimit.Quota{Limit: limit, Window: window}
}

// TestRateLimitHeaders: every response under a limit says where the caller stands, the request over it gets 429
// with an integer Retry-After, and waiting that long is enough.
func TestRateLimitHeaders(t *testing.T) {
	forEachDB(t, func(t *testing.T, base *env) {
		// Windows of hours, so that nothing comes back while the test runs and every count is exact.
		e := withLimits(t, base, Limits{IP: q(1000, time.Hour), AuthIP: q(100, time.Hour), Client: q(100, time.Hour),
			LoginAccount: q(100, time.Hour), LoginFailures: q(10, time.Hour), Principal: q(5, time.Hour)}, "")
		const peer = "198.51.100.10:40000"
		login := e.from(peer, "POST", "/v2/auth/login", map[string]any{"email": adminEmail, "password": adminPassword, "client_id": webClient})
		if login.status != http.StatusOK {
			t.Fatalf("login: %d %s", login.status, login.body)
		}
		rem, quota := limitsOf(t, login)
		want := map[string]int{"ip": 1000, "auth_ip": 100, "client": 100, "login_account": 100, "login_failures": 10}
		for name, q := range want {
			if quota[name] != q {
				t.Errorf("login: RateLimit-Policy %q = %d, want %d (all: %v)", name, quota[name], q, quota)
			}
		}
		if rem["ip"] != 999 || rem["auth_ip"] != 99 || rem["client"] != 99 || rem["login_account"] != 99 {
			t.Errorf("login: remaining %v, want one taken from each", rem)
		}
		if rem["login_failures"] != 10 {
			t.Errorf("login: a success leaves login_failures full, got %d", rem["login_failures"])
		}
		access := login.str(t, "access_token")
		bearer := []string{"Authorization", "Bearer " + access}
		for i := 1; i <= 5; i++ {
			r := e.from(peer, "GET", "/v2/users/"+e.admin.ID, nil, bearer...)
			if r.status != http.StatusOK {
				t.Fatalf("request %d: %d %s", i, r.status, r.body)
			}
			rem, quota := limitsOf(t, r)
			if quota["principal"] != 5 || rem["principal"] != 5-i || rem["ip"] != 999-i {
				t.Fatalf("request %d: remaining %v, quota %v", i, rem, quota)
			}
			if _, ok := rem["auth_ip"]; ok {
				t.Fatalf("request %d: auth_ip applied to getUser", i)
			}
		}
		over := e.from(peer, "GET", "/v2/users/"+e.admin.ID, nil, bearer...)
		wait := retryAfter(t, over)
		if rem, _ := limitsOf(t, over); rem["principal"] != 0 {
			t.Fatalf("429: RateLimit %q does not show principal exhausted", over.header.Get("RateLimit"))
		}
		if wait < 719*time.Second || wait > 720*time.Second { // 5 per hour: one comes back every 12 minutes
			t.Fatalf("Retry-After %v, want 720s", wait)
		}
		if m := e.scrape(); !strings.Contains(string(m.body), `nexus_rate_limited_total{policy="principal"} 1`+"\n") ||
			!strings.Contains(string(m.body), `nexus_rate_limited_total{policy="ip"} 0`+"\n") || !strings.Contains(string(m.body), "nexus_rate_limits_degraded 0\n") {
			t.Fatalf("/metrics after one 429 of the principal policy:\n%s", m.body)
		}
		// Another user of the same IP is not limited by this user's budget.
		bob := e.from("198.51.100.10:40001", "POST", "/v2/auth/login", map[string]any{"email": "bob@example.org", "password": adminPassword, "client_id": webClient})
		if r := e.from(peer, "GET", "/v2/users/"+e.bob.ID, nil, "Authorization", "Bearer "+bob.str(t, "access_token")); r.status != http.StatusOK {
			t.Fatalf("another user: %d %s", r.status, r.body)
		}
		// Unauthenticated requests count against the IP, and errors carry the headers too.
		r := e.from(peer, "GET", "/v2/users", nil)
		expectProblem(t, r, http.StatusUnauthorized, "unauthenticated")
		if rem, _ := limitsOf(t, r); rem["ip"] >= 1000-8 {
			t.Fatalf("401: ip remaining %d, want it counted", rem["ip"])
		}
	})
}

// TestRateLimitIPCannotBeSpoofed: without trusted proxies, forwarding headers and the login's ip_address never
// create, split or reset a bucket; behind a trusted proxy, the client is the address the proxy saw.
func TestRateLimitIPCannotBeSpoofed(t *testing.T) {
	spoof := func(i int) []string {
		ip := fmt.Sprintf("203.0.113.%d", i%250+1)
		return []string{"X-Forwarded-For", ip, "X-Real-IP", ip, "Forwarded", "for=" + ip, "True-Client-IP", ip,
			"CF-Connecting-IP", ip, "X-Client-IP", ip}
	}
	loginBody := func(i int) map[string]any {
		return map[string]any{"email": fmt.Sprintf("nobody%d@example.com", i), "password": "wrong password here",
			"client_id": webClient, "ip_address": fmt.Sprintf("192.0.2.%d", i%250+1)}
	}
	forEachDB(t, func(t *testing.T, base *env) {
		t.Run("no trusted proxy", func(t *testing.T) {
			e := withLimits(t, base, Limits{IP: q(1000, time.Hour), AuthIP: q(5, time.Hour)}, "")
			allowed := 0
			for i := range 40 {
				r := e.from("198.51.100.20:5000", "POST", "/v2/auth/login", loginBody(i), spoof(i)...)
				switch r.status {
				case http.StatusUnauthorized:
					allowed++
				case http.StatusTooManyRequests:
					retryAfter(t, r)
				default:
					t.Fatalf("attempt %d: %d %s", i, r.status, r.body)
				}
			}
			if allowed != 5 {
				t.Fatalf("a flood with spoofed headers got %d attempts, want exactly the quota of 5", allowed)
			}
			// Another socket peer has its own budget: the limit is per client, not global.
			if r := e.from("198.51.100.21:5000", "POST", "/v2/auth/login", loginBody(99)); r.status != http.StatusUnauthorized {
				t.Fatalf("another peer: %d %s", r.status, r.body)
			}
			// IPv6 clients are limited per /64: changing the interface id gains nothing.
			allowed = 0
			for i := range 10 {
				r := e.from(fmt.Sprintf("[2001:db8:1:2::%x]:5000", i+1), "POST", "/v2/auth/login", loginBody(i))
				if r.status == http.StatusUnauthorized {
					allowed++
				}
			}
			if allowed != 5 {
				t.Fatalf("one IPv6 /64 got %d attempts, want 5", allowed)
			}
		})
		t.Run("trusted proxy", func(t *testing.T) {
			e := withLimits(t, base, Limits{IP: q(1000, time.Hour), AuthIP: q(5, time.Hour)}, "")
			e.trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			e.start()
			count := func(remote string, xff ...string) (allowed int) {
				t.Helper()
				for i := range 8 {
					var h []string
					for _, v := range xff {
						h = append(h, "X-Forwarded-For", v)
					}
					r := e.from(remote, "POST", "/v2/auth/login", loginBody(i), h...)
					if r.status == http.StatusUnauthorized {
						allowed++
					} else if r.status != http.StatusTooManyRequests {
						t.Fatalf("%d %s", r.status, r.body)
					}
				}
				return allowed
			}
			// Through the proxy, each client has its own budget, whatever it puts in front of the proxy's entry.
			if n := count("10.1.1.1:443", "203.0.113.5"); n != 5 {
				t.Fatalf("client behind the proxy: %d attempts, want 5", n)
			}
			if n := count("10.1.1.1:443", "1.1.1.1, 203.0.113.5"); n != 0 {
				t.Fatalf("client behind the proxy with a spoofed leftmost entry: %d attempts, want 0", n)
			}
			if n := count("10.1.1.2:443", "203.0.113.6"); n != 5 {
				t.Fatalf("second client behind the proxy: %d attempts, want 5", n)
			}
			// A peer outside the trusted range is believed about nothing.
			if n := count("198.51.100.30:5000", "203.0.113.7"); n != 5 {
				t.Fatalf("untrusted peer: %d attempts, want 5", n)
			}
			if n := count("198.51.100.30:5000", "203.0.113.8"); n != 0 {
				t.Fatalf("untrusted peer changing X-Forwarded-For: %d attempts, want 0", n)
			}
		})
	})
}

// TestLoginBruteForce: after 10 logins to an account without a success, the account is slowed and then answered
// 429 — correct password or not, known account or not — for a bounded time; a success resets the count.
func TestLoginBruteForce(t *testing.T) {
	forEachDB(t, func(t *testing.T, base *env) {
		e := withLimits(t, base, Limits{LoginFailures: q(10, 15*time.Minute)}, "")
		peer := func(i int) string { return fmt.Sprintf("198.51.100.%d:6000", i%200+1) } // many IPs: the account limit alone
		attempt := func(i int, email, password string) resp {
			return e.from(peer(i), "POST", "/v2/auth/login", map[string]any{"email": email, "password": password, "client_id": webClient})
		}
		var knownAnswers []string
		for _, account := range []struct{ name, email string }{{"known", adminEmail}, {"unknown", "ghost@example.com"}} {
			t.Run(account.name, func(t *testing.T) {
				var answers []string
				for i := range 10 {
					r := attempt(i, account.email, "wrong password here")
					expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
					rem, _ := limitsOf(t, r)
					answers = append(answers, fmt.Sprint(r.status, rem["login_failures"]))
				}
				blocked := attempt(10, account.email, "wrong password here")
				wait := retryAfter(t, blocked)
				if wait > 90*time.Second {
					t.Fatalf("Retry-After %v: the block must be bounded by the time one attempt comes back (90 s)", wait)
				}
				// The correct password gets the same answer during the block: no oracle.
				right := attempt(11, strings.ToUpper(account.email), adminPassword)
				if retryAfter(t, right); withoutRequestID(t, right) != withoutRequestID(t, blocked) {
					t.Fatalf("correct password during the block:\n%s\nwrong password:\n%s", right.body, blocked.body)
				}
				rem, _ := limitsOf(t, blocked)
				answers = append(answers, fmt.Sprint(blocked.status, rem["login_failures"]))
				if account.name == "known" {
					knownAnswers = answers
				} else if fmt.Sprint(answers) != fmt.Sprint(knownAnswers) {
					t.Fatalf("an unknown account is answered differently:\n%v\nknown:\n%v", answers, knownAnswers)
				}
			})
		}
		t.Run("a success resets the count", func(t *testing.T) {
			const email = "bob@example.org"
			for i := range 9 {
				expectProblem(t, attempt(i, email, "wrong password here"), http.StatusUnauthorized, "invalid_credentials")
			}
			if r := attempt(9, email, adminPassword); r.status != http.StatusOK {
				t.Fatalf("tenth attempt, correct: %d %s", r.status, r.body)
			}
			for i := range 10 {
				expectProblem(t, attempt(i, email, "wrong password here"), http.StatusUnauthorized, "invalid_credentials")
			}
			retryAfter(t, attempt(10, email, "wrong password here"))
		})
		t.Run("parallel guesses cannot outrun the count", func(t *testing.T) {
			const email = "racer@example.com"
			var wg sync.WaitGroup
			var mu sync.Mutex
			statuses := map[int]int{}
			for i := range 40 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := attempt(i, email, "wrong password here")
					mu.Lock()
					statuses[r.status]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if statuses[http.StatusUnauthorized] != 10 || statuses[http.StatusTooManyRequests] != 30 {
				t.Fatalf("40 parallel guesses: %v, want exactly 10 answered 401 and 30 answered 429", statuses)
			}
		})
	})
	t.Run("slowed, not locked", func(t *testing.T) {
		// With 3 attempts per 6 s, one attempt comes back every 2 s: after the block, the account takes one
		// attempt per Retry-After, and never two within one interval.
		forEachDB(t, func(t *testing.T, base *env) {
			e := withLimits(t, base, Limits{LoginFailures: q(3, 6*time.Second)}, "")
			try := func() resp {
				return e.from("198.51.100.50:7000", "POST", "/v2/auth/login", map[string]any{"email": adminEmail, "password": "wrong password here", "client_id": webClient})
			}
			for range 3 {
				expectProblem(t, try(), http.StatusUnauthorized, "invalid_credentials")
			}
			for round := range 2 {
				r := try()
				for r.status == http.StatusUnauthorized { // an attempt that came back while the machine was slow
					r = try()
				}
				time.Sleep(retryAfter(t, r))
				comeback := time.Now()
				expectProblem(t, try(), http.StatusUnauthorized, "invalid_credentials")
				// The next attempt is refused, unless a whole interval passed since the one that came back (a
				// loaded machine: an argon2id check under the race detector takes a while), when it has come back
				// too: the claim is one attempt per interval, and the clock decides which case this is.
				r = try()
				switch interval := 2 * time.Second; {
				case r.status == http.StatusTooManyRequests:
					retryAfter(t, r)
				case time.Since(comeback) < interval:
					t.Fatalf("round %d: a second attempt within %v of the one that came back: %d", round, interval, r.status)
				default:
					expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
					t.Logf("round %d: the two attempts took over %v; the second had come back", round, interval)
				}
			}
			// A correct password, once an attempt has come back, logs in.
			time.Sleep(2 * time.Second)
			if r := e.from("198.51.100.50:7000", "POST", "/v2/auth/login", map[string]any{"email": adminEmail, "password": adminPassword, "client_id": webClient}); r.status != http.StatusOK {
				t.Fatalf("correct password after the wait: %d %s", r.status, r.body)
			}
		})
	})
}

// TestRateLimitSharedThroughRedis: two instances sharing one Redis enforce one budget; when Redis goes away they
// keep serving with local limits and say so in /readyz, and they share again once it is back.
func TestRateLimitSharedThroughRedis(t *testing.T) {
	rs := testredis.Start(t)
	forEachDB(t, func(t *testing.T, base *env) {
		// Windows of hours: nothing comes back while the test runs, so every count is exact.
		limits := Limits{IP: q(1000, time.Hour), Principal: q(20, time.Hour), AuthIP: q(1000, time.Hour), LoginFailures: q(10, 15*time.Minute)}
		a := withLimits(t, base, limits, rs.URL())
		b := withLimits(t, base, limits, rs.URL())
		access, _ := a.tokens(webClient)
		bearer := []string{"Authorization", "Bearer " + access}
		allowed := 0
		for i := range 40 {
			node := a
			if i%2 == 1 {
				node = b
			}
			r := node.from("198.51.100.60:8000", "GET", "/v2/users/"+a.admin.ID, nil, bearer...)
			switch r.status {
			case http.StatusOK:
				allowed++
			case http.StatusTooManyRequests:
				retryAfter(t, r)
			default:
				t.Fatalf("%d %s", r.status, r.body)
			}
		}
		if allowed != 20 {
			t.Fatalf("two instances allowed %d requests of one principal, want the one budget of 20", allowed)
		}
		// Brute force across instances: 10 failures in all, then 429 on both.
		for i := range 10 {
			node := []*env{a, b}[i%2]
			r := node.from("198.51.100.61:8000", "POST", "/v2/auth/login", map[string]any{"email": "bob@example.org", "password": "wrong password here", "client_id": webClient})
			expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
		}
		for _, node := range []*env{a, b} {
			retryAfter(t, node.from("198.51.100.61:8000", "POST", "/v2/auth/login", map[string]any{"email": "bob@example.org", "password": adminPassword, "client_id": webClient}))
		}
		ready := func(e *env) map[string]any {
			r := e.do("GET", "/readyz", nil)
			if r.status != http.StatusOK {
				t.Fatalf("/readyz: %d %s", r.status, r.body)
			}
			rl, _ := r.obj(t)["rate_limits"].(map[string]any)
			if rl == nil {
				t.Fatalf("/readyz without rate_limits: %s", r.body)
			}
			return rl
		}
		if rl := ready(a); rl["backend"] != "redis" || rl["degraded"] != false {
			t.Fatalf("/readyz rate_limits with Redis up: %v", rl)
		}
		rs.Stop()
		// Still limited, locally, without errors: a fresh principal budget on each node now.
		if r := a.from("198.51.100.62:8000", "POST", "/v2/auth/login", map[string]any{"email": adminEmail, "password": adminPassword, "client_id": orgAClient}); r.status != http.StatusOK {
			t.Fatalf("login with Redis down: %d %s", r.status, r.body)
		}
		got := 0
		for range 25 {
			r := a.from("198.51.100.60:8000", "GET", "/v2/users/"+a.admin.ID, nil, bearer...)
			switch r.status {
			case http.StatusOK:
				got++
			case http.StatusTooManyRequests:
				retryAfter(t, r)
			default:
				t.Fatalf("with Redis down: %d %s", r.status, r.body)
			}
		}
		if got > 20 {
			t.Fatalf("with Redis down one node allowed %d of 25, want at most the quota of 20", got)
		}
		if rl := ready(a); rl["backend"] != "redis" || rl["degraded"] != true {
			t.Fatalf("/readyz rate_limits with Redis down: %v", rl)
		}
		rs.Start()
		deadline := time.Now().Add(10 * time.Second)
		for ready(a)["degraded"] != false {
			if time.Now().After(deadline) {
				t.Fatal("the limiter did not go back to Redis within 10 s of its restart")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// TestRateLimitRoundTrips: with Redis, each step of a request takes all of its policies in one round trip (an
// EVALSHA of the rate-limit script): the per-IP policies before the token is verified or the body read, the
// principal's once the token is verified, a login's client and account together, its failure budget right before
// the password check. Counted on the Redis server (INFO commandstats, which also counts the script's own TIME,
// GET and SET); before the script every policy cost two round trips (TIME+GET, then SET or a compare-and-swap).
func TestRateLimitRoundTrips(t *testing.T) {
	rs := testredis.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := t.Context()
	forEachDB(t, func(t *testing.T, base *env) {
		h := time.Hour
		e := withLimits(t, base, Limits{IP: q(1000, h), AuthIP: q(100, h), Client: q(100, h), LoginAccount: q(100, h),
			LoginFailures: q(10, h), Principal: q(100, h)}, rs.URL())
		access, refresh := e.tokens(webClient)
		bearer := []string{"Authorization", "Bearer " + access}
		const peer = "198.51.100.70:7000"
		// ran sends one request and returns the commands Redis ran for it.
		ran := func(method, path string, body any, wantStatus int, header ...string) map[string]int {
			t.Helper()
			must(t, rdb.ConfigResetStat(ctx).Err())
			if r := e.from(peer, method, path, body, header...); r.status != wantStatus {
				t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, wantStatus)
			}
			info, err := rdb.Info(ctx, "commandstats").Result()
			must(t, err)
			calls := map[string]int{}
			for line := range strings.Lines(info) {
				name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
				n, _, _ := strings.Cut(rest, ",")
				if name = strings.TrimPrefix(name, "cmdstat_"); ok && name != "info" && !strings.HasPrefix(name, "config") {
					calls[name], _ = strconv.Atoi(n)
				}
			}
			return calls
		}
		// script is what `steps` runs of the script, looking at budgets budgets and taking from taken of them.
		script := func(steps, budgets, taken int) map[string]int {
			return map[string]int{"evalsha": steps, "time": steps, "get": budgets, "set": taken}
		}
		// A token seen for the first time: ip | principal, once it is verified. (This also loads the script.)
		ran("GET", "/v2/users/"+e.admin.ID, nil, http.StatusOK, bearer...)
		fresh, _ := e.tokens(webClient)
		if got, want := ran("GET", "/v2/users/"+e.admin.ID, nil, http.StatusOK, "Authorization", "Bearer "+fresh), script(2, 2, 2); !maps.Equal(got, want) {
			t.Errorf("a new token: Redis ran %v, want %v", got, want)
		}
		for _, c := range []struct {
			name   string
			method string
			path   string
			body   any
			status int
			header []string
			want   map[string]int
		}{
			// ip, principal: a token this node verified before (by the request above)
			{"authenticated request", "GET", "/v2/users/" + e.admin.ID, nil, http.StatusOK, bearer, script(1, 2, 2)},
			// ip (the token is refused before a principal is known)
			{"bad token", "GET", "/v2/users", nil, http.StatusUnauthorized, []string{"Authorization", "Bearer nope"}, script(1, 1, 1)},
			// ip, auth_ip | client
			{"refresh", "POST", "/v2/auth/refresh", map[string]any{"refresh_token": refresh, "client_id": webClient}, http.StatusOK, nil, script(2, 3, 3)},
			// ip, auth_ip | client, login_account | login_failures; and the success gives login_failures back (DEL)
			{"login", "POST", "/v2/auth/login", map[string]any{"email": adminEmail, "password": adminPassword, "client_id": webClient}, http.StatusOK, nil,
				map[string]int{"evalsha": 3, "time": 3, "get": 5, "set": 5, "del": 1}},
			{"health check", "GET", "/healthz", nil, http.StatusOK, nil, map[string]int{}},
		} {
			if got := ran(c.method, c.path, c.body, c.status, c.header...); !maps.Equal(got, c.want) {
				t.Errorf("%s: Redis ran %v, want %v", c.name, got, c.want)
			}
		}
	})
}

// TestCORS: off by default; when configured, only the configured origins get CORS headers, a preflight is
// answered before authentication and rate limits, and clients may read the headers they need.
func TestCORS(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		preflight := func(e *env, origin string) resp {
			req := httptest.NewRequest(http.MethodOptions, "/v2/users", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "GET")
			req.Header.Set("Access-Control-Request-Headers", "authorization")
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			return resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		}
		if r := preflight(e, "https://app.example.com"); r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("CORS is on by default: %v", r.header)
		}
		access, _ := e.tokens(webClient)
		if r := e.do("GET", "/v2/users", nil, "Authorization", "Bearer "+access, "Origin", "https://app.example.com"); r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("CORS is on by default: %v", r.header)
		}

		c := withLimits(t, e, Limits{IP: q(1, time.Minute)}, "")
		c.cors = []string{"https://app.example.com"}
		c.start()
		must(t, c.svc.EnsureSigningKey(t.Context()))
		for range 3 { // preflights are not rate limited and need no token
			r := preflight(c, "https://app.example.com")
			if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
				!strings.Contains(strings.ToLower(r.header.Get("Access-Control-Allow-Headers")), "authorization") {
				t.Fatalf("preflight from an allowed origin: %d %v", r.status, r.header)
			}
			if r.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("credentials allowed: %v", r.header)
			}
		}
		if r := preflight(c, "https://evil.example.net"); r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("preflight from another origin: %v", r.header)
		}
		r := c.from("198.51.100.70:9000", "GET", "/v2/users", nil, "Authorization", "Bearer "+access, "Origin", "https://app.example.com")
		if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
			t.Fatalf("request from an allowed origin: %d %v", r.status, r.header)
		}
		expose := strings.ToLower(r.header.Get("Access-Control-Expose-Headers"))
		for _, h := range []string{"ratelimit", "ratelimit-policy", "retry-after", "x-request-id", "location"} {
			if !strings.Contains(expose, h) {
				t.Errorf("Access-Control-Expose-Headers %q lacks %s", expose, h)
			}
		}
		// A 429 carries the CORS headers too, so the browser lets the client read Retry-After.
		r = c.from("198.51.100.70:9000", "GET", "/v2/users", nil, "Authorization", "Bearer "+access, "Origin", "https://app.example.com")
		retryAfter(t, r)
		if r.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
			t.Fatalf("429 without CORS headers: %v", r.header)
		}
	})
}

// TestLoginBruteForceOutage: logins answered 503 because the database is unreachable cost the account nothing
// of its failure budget — a client retrying through an outage does not lock its user out afterwards.
//
// The outage is the pool held by the test: a login waits for a connection until its request deadline, short here
// so that the six take 300 ms each, and is answered 503 whatever that deadline is. The logins after the outage go
// to a second instance sharing the database and the limiter (where the failure budget is kept) with the default
// deadline: under the outage's 300 ms, a login's three queries and its password check (tens of milliseconds on an
// idle machine, several hundred on a loaded one) raced the deadline and were now and then answered 503 too.
func TestLoginBruteForceOutage(t *testing.T) {
	const conns = 2
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			base := newEnv(t, openPool(t, d, conns))
			base.requestTimeout = 300 * time.Millisecond
			e := withLimits(t, base, Limits{LoginFailures: q(3, time.Hour)}, "")
			after := *e
			after.requestTimeout = 0
			after.start()
			must(t, after.svc.EnsureSigningKey(t.Context()))
			try := func(e *env, password string) resp {
				return e.from("198.51.100.80:9100", "POST", "/v2/auth/login", map[string]any{"email": adminEmail, "password": password, "client_id": webClient})
			}
			var release []func()
			for range conns {
				r, err := e.db.Hold(t.Context())
				must(t, err)
				release = append(release, r)
			}
			for range 6 {
				r := try(e, "wrong password here")
				expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
				if r.header.Get("Retry-After") == "" {
					t.Fatal("503 without Retry-After")
				}
			}
			for _, r := range release {
				r()
			}
			for range 3 {
				expectProblem(t, try(&after, "wrong password here"), http.StatusUnauthorized, "invalid_credentials")
			}
			retryAfter(t, try(&after, adminPassword))
		})
	}
}
