package ratelimit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/nexus-cloud/nexus-core/internal/testredis"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// backend opens Limiters on one backend for a test.
type backend struct {
	name string
	// open returns a new Limiter; on the Redis backend every Limiter of
	// one test shares the test's server.
	open func(t *testing.T) *Limiter
}

// backends returns the memory backend and a Redis backend whose server is
// started on first use (once per test).
func backends() []backend {
	return []backend{
		{name: "memory", open: func(t *testing.T) *Limiter {
			return newLimiter(t, Options{})
		}},
		{name: "redis", open: redisOpener()},
	}
}

func redisOpener() func(t *testing.T) *Limiter {
	var srv *testredis.Server
	return func(t *testing.T) *Limiter {
		if srv == nil {
			srv = testredis.Start(t)
		}
		l := newLimiter(t, Options{RedisURL: srv.URL()})
		if st := l.Status(); st.Backend != BackendRedis || st.Degraded {
			t.Fatalf("Status() = %+v, want redis, not degraded", st)
		}
		return l
	}
}

// forEachBackend runs f on the memory and on the Redis backend.
func forEachBackend(t *testing.T, f func(t *testing.T, open func(t *testing.T) *Limiter)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b.open) })
	}
}

func newLimiter(t testing.TB, o Options) *Limiter {
	t.Helper()
	if o.Secret == nil {
		o.Secret = testSecret
	}
	if o.Timeout == 0 {
		// Only the outage tests are about timeouts; elsewhere a loaded
		// machine must not make Redis look failed.
		o.Timeout = 5 * time.Second
	}
	l, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// within fails unless lo < got <= hi.
func within(t *testing.T, what string, got, lo, hi time.Duration) {
	t.Helper()
	if got <= lo || got > hi {
		t.Errorf("%s = %v, want in (%v, %v]", what, got, lo, hi)
	}
}

// clockSlack covers the granularity of the store's clock (Redis TIME has
// microseconds) on top of the time a test measured.
const clockSlack = time.Millisecond

func TestAllowAccounting(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *Limiter) {
		l := open(t)
		ctx := context.Background()
		// An hour per 5 requests: nothing refills while the test runs
		// (the emission interval is 12 minutes), so the counts are exact
		// and the durations exact up to the test's own running time.
		q := Quota{Limit: 5, Window: time.Hour}
		T := q.Window / time.Duration(q.Limit)

		began := time.Now()
		var results []Result
		for range q.Limit + 2 {
			results = append(results, l.Allow(ctx, "ip", q, "203.0.113.7"))
		}
		elapsed := time.Since(began) + clockSlack

		for i, r := range results[:q.Limit] {
			if !r.Allowed || r.Limit != q.Limit || r.Remaining != q.Limit-1-i || r.RetryAfter != 0 {
				t.Errorf("request %d: %+v, want allowed, limit %d, remaining %d, no retry-after", i+1, r, q.Limit, q.Limit-1-i)
			}
			// The budget refills one request per T.
			full := time.Duration(i+1) * T
			within(t, fmt.Sprintf("request %d: Reset", i+1), r.Reset, full-elapsed, full)
		}
		for i, r := range results[q.Limit:] {
			if r.Allowed || r.Limit != q.Limit || r.Remaining != 0 {
				t.Errorf("request %d: %+v, want refused, limit %d, remaining 0", q.Limit+1+i, r, q.Limit)
			}
			within(t, fmt.Sprintf("request %d: RetryAfter", q.Limit+1+i), r.RetryAfter, T-elapsed, T)
			within(t, fmt.Sprintf("request %d: Reset", q.Limit+1+i), r.Reset, q.Window-elapsed, q.Window)
		}
	})
}

func TestAllowAfterRetryAfter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *Limiter) {
		l := open(t)
		ctx := context.Background()
		// A request every 100ms, 2 at once.
		q := Quota{Limit: 2, Window: 200 * time.Millisecond}
		T := q.Window / time.Duration(q.Limit)

		// Take the burst; on a slow machine a request may have refilled
		// meanwhile, so take until refused.
		var r Result
		for range 10 {
			if r = l.Allow(ctx, "ip", q, "k"); !r.Allowed {
				break
			}
		}
		if r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > T {
			t.Fatalf("after the burst: %+v, want refused with 0 < RetryAfter <= %v", r, T)
		}
		// Waiting RetryAfter is enough (waiting longer only helps).
		time.Sleep(r.RetryAfter + clockSlack)
		if r := l.Allow(ctx, "ip", q, "k"); !r.Allowed {
			t.Fatalf("after waiting RetryAfter: %+v, want allowed", r)
		}
		// Waiting Reset refills the whole burst.
		if p := l.Peek(ctx, "ip", q, "k"); p.Reset > 0 {
			time.Sleep(p.Reset + clockSlack)
		}
		if p := l.Peek(ctx, "ip", q, "k"); !p.Allowed || p.Remaining != q.Limit || p.Reset != 0 {
			t.Fatalf("after waiting Reset: %+v, want a full budget", p)
		}
	})
}

func TestPeekDoesNotConsume(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *Limiter) {
		l := open(t)
		ctx := context.Background()
		q := Quota{Limit: 3, Window: time.Hour}
		T := q.Window / time.Duration(q.Limit)

		for range 10 {
			if p := l.Peek(ctx, "login_failures", q, "alice@example.com"); p != (Result{Allowed: true, Limit: 3, Remaining: 3}) {
				t.Fatalf("Peek of a fresh key = %+v, want allowed with a full budget", p)
			}
		}
		began := time.Now()
		for i := range q.Limit {
			if r := l.Allow(ctx, "login_failures", q, "alice@example.com"); !r.Allowed {
				t.Fatalf("Allow %d after peeks: %+v, want allowed", i+1, r)
			}
			if p := l.Peek(ctx, "login_failures", q, "alice@example.com"); p.Remaining != q.Limit-1-i || p.Allowed != (i < q.Limit-1) {
				t.Fatalf("Peek after %d taken = %+v, want remaining %d", i+1, p, q.Limit-1-i)
			}
		}
		p := l.Peek(ctx, "login_failures", q, "alice@example.com")
		elapsed := time.Since(began) + clockSlack
		if p.Allowed || p.Remaining != 0 {
			t.Fatalf("Peek of an exhausted key = %+v, want refused", p)
		}
		within(t, "Peek RetryAfter", p.RetryAfter, T-elapsed, T)
		within(t, "Peek Reset", p.Reset, q.Window-elapsed, q.Window)
		if r := l.Allow(ctx, "login_failures", q, "alice@example.com"); r.Allowed {
			t.Fatalf("Allow of an exhausted key = %+v, want refused", r)
		}
	})
}

func TestReset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *Limiter) {
		l := open(t)
		ctx := context.Background()
		q := Quota{Limit: 2, Window: time.Hour}
		q2 := Quota{Limit: 4, Window: time.Hour}
		exhaust := func(q Quota, key string) {
			t.Helper()
			for range q.Limit {
				l.Allow(ctx, "login_failures", q, key)
			}
			if r := l.Allow(ctx, "login_failures", q, key); r.Allowed {
				t.Fatalf("%s not exhausted: %+v", key, r)
			}
		}
		exhaust(q, "alice@example.com")
		exhaust(q2, "alice@example.com") // a second quota of the name
		exhaust(q, "bob@example.com")

		l.Reset(ctx, "login_failures", "alice@example.com")
		for _, q := range []Quota{q, q2} {
			if r := l.Allow(ctx, "login_failures", q, "alice@example.com"); !r.Allowed || r.Remaining != q.Limit-1 {
				t.Errorf("alice under %v after Reset: %+v, want allowed with remaining %d", q, r, q.Limit-1)
			}
		}
		if r := l.Allow(ctx, "login_failures", q, "bob@example.com"); r.Allowed {
			t.Errorf("bob after alice's Reset: %+v, want still refused", r)
		}

		// ResetQuota, and Reset of keys that were never seen.
		l.ResetQuota(ctx, "login_failures", q, "bob@example.com")
		if r := l.Allow(ctx, "login_failures", q, "bob@example.com"); !r.Allowed || r.Remaining != q.Limit-1 {
			t.Errorf("bob after ResetQuota: %+v, want allowed with remaining %d", r, q.Limit-1)
		}
		l.Reset(ctx, "login_failures", "nobody@example.com")
		l.Reset(ctx, "never_used", "nobody@example.com")
	})
}

func TestBudgetsAreSeparate(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *Limiter) {
		l := open(t)
		ctx := context.Background()
		q := Quota{Limit: 2, Window: time.Hour}
		for range q.Limit {
			l.Allow(ctx, "ip", q, "203.0.113.7")
		}
		if r := l.Allow(ctx, "ip", q, "203.0.113.7"); r.Allowed {
			t.Fatalf("not exhausted: %+v", r)
		}
		for _, c := range []struct {
			what, name, key string
			q               Quota
		}{
			{"another key", "ip", "203.0.113.8", q},
			{"another name", "auth_ip", "203.0.113.7", q},
			{"another limit", "ip", "203.0.113.7", Quota{Limit: 3, Window: time.Hour}},
			{"another window", "ip", "203.0.113.7", Quota{Limit: 2, Window: 2 * time.Hour}},
		} {
			if r := l.Allow(ctx, c.name, c.q, c.key); !r.Allowed || r.Remaining != c.q.Limit-1 {
				t.Errorf("%s: %+v, want a fresh budget", c.what, r)
			}
		}
	})
}

func TestQuotaOff(t *testing.T) {
	l := newLimiter(t, Options{})
	for _, q := range []Quota{{}, {Limit: 0, Window: time.Minute}, {Limit: 10, Window: 0}, {Limit: 10, Window: 5}} {
		for range 3 {
			if r := l.Allow(context.Background(), "ip", q, "k"); !r.Allowed {
				t.Errorf("Allow with %+v = %+v, want allowed (off)", q, r)
			}
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if _, err := New(Options{Secret: []byte("short")}); err == nil {
		t.Errorf("New with a 5-byte secret succeeded")
	}
	if _, err := New(Options{Secret: testSecret, RedisURL: "http://127.0.0.1:6379"}); err == nil {
		t.Errorf("New with an http:// Redis URL succeeded")
	}
}

// hammer runs goroutines × perGoroutine Allow calls on each Limiter at once
// and returns how many were allowed.
func hammer(limiters []*Limiter, goroutines, perGoroutine int, q Quota, key string) int {
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, l := range limiters {
		for range goroutines {
			wg.Go(func() {
				<-start
				for range perGoroutine {
					if l.Allow(context.Background(), "ip", q, key).Allowed {
						allowed.Add(1)
					}
				}
			})
		}
	}
	close(start)
	wg.Wait()
	return int(allowed.Load())
}

func TestConcurrentRequestsShareOneBudget(t *testing.T) {
	// An hour per 50: nothing refills during the test.
	q := Quota{Limit: 50, Window: time.Hour}

	t.Run("memory", func(t *testing.T) {
		l := newLimiter(t, Options{})
		if got := hammer([]*Limiter{l, l}, 8, 20, q, "203.0.113.7"); got != q.Limit {
			t.Errorf("16 goroutines × 20 requests on one Limiter: %d allowed, want %d", got, q.Limit)
		}
	})
	t.Run("redis/two limiters", func(t *testing.T) {
		srv := testredis.Start(t)
		a := newLimiter(t, Options{RedisURL: srv.URL()})
		b := newLimiter(t, Options{RedisURL: srv.URL()})
		began := time.Now()
		if got := hammer([]*Limiter{a, b}, 8, 20, q, "203.0.113.7"); got != q.Limit {
			t.Errorf("2 Limiters × 8 goroutines × 20 requests: %d allowed, want %d", got, q.Limit)
		}
		// The key lives until its budget is full again, an hour from the
		// burst: no racing request shortened its TTL (throttled's own
		// SETNX+EXPIRE lets a request that lost the race to create the key
		// set the TTL of a single request, 72s here).
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer rdb.Close()
		keys, err := rdb.Keys(context.Background(), "nexus:rl:ip:*").Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("KEYS = %q, %v; want the one key", keys, err)
		}
		ttl, err := rdb.PTTL(context.Background(), keys[0]).Result()
		if err != nil {
			t.Fatalf("PTTL: %v", err)
		}
		within(t, "TTL of the exhausted key", ttl, q.Window-time.Since(began)-clockSlack, q.Window+ttlPad)
		for _, l := range []*Limiter{a, b} {
			if st := l.Status(); st.Degraded {
				t.Errorf("Status() = %+v after the hammering, want healthy", st)
			}
		}
	})
}

func TestRedisKeysAreHashed(t *testing.T) {
	srv := testredis.Start(t)
	l := newLimiter(t, Options{RedisURL: srv.URL()})
	ctx := context.Background()
	q := Quota{Limit: 10, Window: time.Minute}
	raw := []string{"203.0.113.7", "alice@example.com", "nexus-dev"}
	for _, key := range raw {
		l.Allow(ctx, "login_account", q, key)
	}
	l.Peek(ctx, "login_account", q, "peeked@example.com") // writes nothing

	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	keys = slices.DeleteFunc(keys, func(k string) bool { return k == "nexus:rl:probe" })
	if len(keys) != len(raw) {
		t.Fatalf("Redis holds %d keys %q, want %d (Peek must not create one)", len(keys), keys, len(raw))
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "nexus:rl:login_account:10/1m0s:") {
			t.Errorf("key %q lacks the prefix, name and quota", k)
		}
		for _, v := range append(raw, "peeked", "203.0.113", "alice", "example.com") {
			if strings.Contains(k, v) {
				t.Errorf("key %q contains %q", k, v)
			}
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("PTTL: %v", err)
		}
		// The key lives until its budget is full again (6s after one
		// request of 10/min), plus a second of margin, and no longer.
		if ttl <= 0 || ttl > q.Window/10+ttlPad {
			t.Errorf("key %q expires in %v, want in (0, %v]", k, ttl, q.Window/10+ttlPad)
		}
	}
}

// logBuffer is a goroutine-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *logBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *logBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func newLogger(w *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline; it reports how long it took. It bounds a wait, it asserts no
// speed.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for !cond() {
		if time.Since(began) > 30*time.Second {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(began)
}

func TestRedisUnreachableAtStart(t *testing.T) {
	srv := testredis.Start(t)
	srv.Stop()
	var logs logBuffer
	o := Options{RedisURL: srv.URL(), RecheckEvery: 50 * time.Millisecond, Logger: newLogger(&logs)}
	a := newLimiter(t, o)
	ctx := context.Background()

	st := a.Status()
	if st.Backend != BackendRedis || !st.Degraded || st.Error != "connection refused" {
		t.Fatalf("Status() with Redis down = %+v, want redis, degraded, connection refused", st)
	}
	// Local limits apply meanwhile.
	q := Quota{Limit: 3, Window: time.Hour}
	for range q.Limit {
		if r := a.Allow(ctx, "ip", q, "k"); !r.Allowed {
			t.Fatalf("degraded Allow: %+v, want allowed", r)
		}
	}
	if r := a.Allow(ctx, "ip", q, "k"); r.Allowed {
		t.Fatalf("degraded Allow beyond the limit: %+v, want refused", r)
	}

	srv.Start()
	took := waitFor(t, "recovery", func() bool { return !a.Status().Degraded })
	t.Logf("recovered %v after Redis came back (RecheckEvery %v)", took, o.RecheckEvery)
	if st := a.Status(); st.Backend != BackendRedis || st.Error != "" {
		t.Errorf("Status() after recovery = %+v", st)
	}

	// Budgets are shared again: two Limiters, one budget.
	b := newLimiter(t, o)
	q = Quota{Limit: 4, Window: time.Hour}
	for i, l := range []*Limiter{a, b, a, b} {
		if r := l.Allow(ctx, "ip", q, "shared"); !r.Allowed || r.Remaining != q.Limit-1-i {
			t.Fatalf("shared request %d: %+v, want allowed with remaining %d", i+1, r, q.Limit-1-i)
		}
	}
	for _, l := range []*Limiter{a, b} {
		if r := l.Allow(ctx, "ip", q, "shared"); r.Allowed {
			t.Errorf("shared budget exhausted, yet %+v", r)
		}
	}

	out := logs.String()
	if n := strings.Count(out, "Redis is failing"); n != 1 {
		t.Errorf("%d warnings about the outage, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "Redis answers again"); n != 1 {
		t.Errorf("%d messages about the recovery, want 1:\n%s", n, out)
	}
	if strings.Contains(out, srv.Addr()) {
		t.Errorf("logs name the Redis address:\n%s", out)
	}
}

func TestRedisOutageMidRun(t *testing.T) {
	for _, outage := range []struct {
		name      string
		stop, fix func(*testredis.Server)
		errs      []string // Status().Error, any of
	}{
		// Killed: connections are refused at once.
		// (A pooled connection may see the close first.)
		{"killed", (*testredis.Server).Stop, (*testredis.Server).Start, []string{"connection refused", "connection lost"}},
		// Frozen: nothing answers; every wait ends at Timeout.
		{"frozen", (*testredis.Server).Pause, (*testredis.Server).Resume, []string{"timeout"}},
	} {
		t.Run(outage.name, func(t *testing.T) {
			srv := testredis.Start(t)
			var logs logBuffer
			o := Options{RedisURL: srv.URL(), Timeout: 500 * time.Millisecond, RecheckEvery: 50 * time.Millisecond, Logger: newLogger(&logs)}
			l := newLimiter(t, o)
			ctx := context.Background()
			q := Quota{Limit: 3, Window: time.Hour}
			if r := l.Allow(ctx, "ip", q, "k"); !r.Allowed || r.Remaining != 2 {
				t.Fatalf("Allow with Redis up: %+v", r)
			}

			outage.stop(srv)
			// Concurrent requests during the failure all get an answer.
			var wg sync.WaitGroup
			var slowest atomic.Int64
			for range 8 {
				wg.Go(func() {
					began := time.Now()
					l.Allow(ctx, "ip", q, "other")
					if d := int64(time.Since(began)); d > slowest.Load() {
						slowest.Store(d)
					}
				})
			}
			wg.Wait()
			t.Logf("slowest Allow during the failure: %v (Timeout %v)", time.Duration(slowest.Load()), o.Timeout)
			// A hang would show as many seconds; the bound is generous for
			// a loaded machine, the log above shows the real figure.
			if d := time.Duration(slowest.Load()); d > o.Timeout+5*time.Second {
				t.Errorf("an Allow took %v with Redis down, want about Timeout (%v) at most", d, o.Timeout)
			}
			st := l.Status()
			if !st.Degraded || st.Backend != BackendRedis || !slices.Contains(outage.errs, st.Error) {
				t.Fatalf("Status() during the outage = %+v, want degraded with one of %q", st, outage.errs)
			}
			// Degraded: answered from memory, which starts empty.
			for i := range q.Limit {
				if r := l.Allow(ctx, "ip", q, "k"); !r.Allowed || r.Remaining != q.Limit-1-i {
					t.Fatalf("degraded Allow %d: %+v", i+1, r)
				}
			}
			if r := l.Allow(ctx, "ip", q, "k"); r.Allowed {
				t.Fatalf("degraded Allow beyond the limit: %+v, want refused", r)
			}
			if p := l.Peek(ctx, "ip", q, "k"); p.Allowed {
				t.Fatalf("degraded Peek: %+v, want refused", p)
			}
			l.Reset(ctx, "ip", "k")
			if r := l.Allow(ctx, "ip", q, "k"); !r.Allowed {
				t.Fatalf("degraded Allow after Reset: %+v, want allowed", r)
			}

			outage.fix(srv)
			took := waitFor(t, "recovery", func() bool { return !l.Status().Degraded })
			t.Logf("recovered %v after Redis came back", took)
			// Back on Redis, with the connections of before the outage
			// gone: requests are answered from Redis, which starts afresh
			// after a kill and kept its state through a freeze.
			if hammer([]*Limiter{l}, 8, 5, Quota{Limit: 1000, Window: time.Hour}, "after") != 40 {
				t.Errorf("requests after the recovery were refused")
			}
			if st := l.Status(); st.Degraded {
				t.Errorf("Status() after requests on the recovered Redis = %+v", st)
			}
			out := logs.String()
			if n := strings.Count(out, "Redis is failing"); n != 1 {
				t.Errorf("%d warnings about the outage, want 1:\n%s", n, out)
			}
			if strings.Contains(out, srv.Addr()) {
				t.Errorf("logs name the Redis address:\n%s", out)
			}
		})
	}
}

func TestMemoryIsBounded(t *testing.T) {
	l := newLimiter(t, Options{MaxLocalKeys: 10})
	ctx := context.Background()
	q := Quota{Limit: 1, Window: time.Hour}
	l.Allow(ctx, "ip", q, "first")
	if r := l.Allow(ctx, "ip", q, "first"); r.Allowed {
		t.Fatalf("not exhausted: %+v", r)
	}
	// Peeks add nothing: "first" survives 100 peeks of other keys.
	for i := range 100 {
		l.Peek(ctx, "ip", q, fmt.Sprint("peek", i))
	}
	if r := l.Peek(ctx, "ip", q, "first"); r.Allowed {
		t.Fatalf("peeks evicted a key: %+v", r)
	}
	// Ten other keys push the least recently used one out.
	for i := range 10 {
		l.Allow(ctx, "ip", q, fmt.Sprint("other", i))
	}
	if r := l.Allow(ctx, "ip", q, "first"); !r.Allowed {
		t.Fatalf("after 10 newer keys in an LRU of 10, the oldest is still there: %+v", r)
	}
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "timeout"},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), "timeout"},
		{redis.ErrPoolTimeout, "connection pool timeout"},
		{redis.ErrClosed, "client closed"},
		{fmt.Errorf("strange failure at redis://:hunter2@10.0.0.1:6379"), "unavailable"},
	} {
		if got := describe(c.err); got != c.want {
			t.Errorf("describe(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestMain(m *testing.M) {
	// go-redis' dial failures during the outage tests go nowhere.
	SetRedisLogger(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

func TestMemoryBackendStatus(t *testing.T) {
	before := time.Now()
	l := newLimiter(t, Options{})
	st := l.Status()
	if st.Backend != BackendMemory || st.Degraded || st.Error != "" || st.Since.Before(before) {
		t.Errorf("Status() without Redis = %+v, want memory, healthy, since New", st)
	}
	if l.opts.Prefix != DefaultPrefix || l.opts.MaxLocalKeys != DefaultMaxLocalKeys || l.opts.RecheckEvery != DefaultRecheckEvery {
		t.Errorf("defaults not applied: %+v", l.opts)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestRedisPassword(t *testing.T) {
	const password = "hunter2-secret"
	srv := testredis.Start(t, "--requirepass", password)
	ctx := context.Background()
	q := Quota{Limit: 2, Window: time.Hour}

	var logs logBuffer
	wrong := newLimiter(t, Options{RedisURL: "redis://:wrong-" + password + "@" + srv.Addr() + "/0", Logger: newLogger(&logs)})
	if st := wrong.Status(); !st.Degraded || st.Error != "redis error WRONGPASS" {
		t.Errorf("Status() with a wrong password = %+v, want degraded with WRONGPASS", st)
	}
	if r := wrong.Allow(ctx, "ip", q, "k"); !r.Allowed {
		t.Errorf("Allow with a wrong password: %+v, want allowed from memory", r)
	}
	if out := logs.String(); strings.Contains(out, password) || strings.Contains(out, srv.Addr()) {
		t.Errorf("logs hold the password or the address:\n%s", out)
	}

	right := newLimiter(t, Options{RedisURL: "redis://:" + password + "@" + srv.Addr() + "/0"})
	if st := right.Status(); st.Degraded {
		t.Fatalf("Status() with the password = %+v, want healthy", st)
	}
	for i := range q.Limit {
		if r := right.Allow(ctx, "ip", q, "k"); !r.Allowed || r.Remaining != q.Limit-1-i {
			t.Fatalf("Allow %d with the password: %+v", i+1, r)
		}
	}
	if r := right.Allow(ctx, "ip", q, "k"); r.Allowed {
		t.Fatalf("Allow beyond the limit with the password: %+v", r)
	}
}
