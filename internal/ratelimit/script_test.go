package ratelimit

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/goredisstore.v9"

	"github.com/nexus-cloud/nexus-core/internal/testredis"
)

// fixedStore is a throttled store holding one value at a fixed time, which
// records what the library writes.
type fixedStore struct {
	v       int64 // -1: missing
	now     time.Time
	written int64
	ttl     time.Duration
}

func (s *fixedStore) GetWithTime(context.Context, string) (int64, time.Time, error) {
	return s.v, s.now, nil
}

func (s *fixedStore) SetIfNotExistsWithTTL(_ context.Context, _ string, v int64, ttl time.Duration) (bool, error) {
	s.written, s.ttl = v, ttl
	return true, nil
}

func (s *fixedStore) CompareAndSwapWithTTL(_ context.Context, _ string, _, v int64, ttl time.Duration) (bool, error) {
	s.written, s.ttl = v, ttl
	return true, nil
}

// library returns what throttled's own GCRA answers for one request (or a
// peek) against stored value v at time now, and the value it writes (0 for
// none) with its TTL.
func library(t *testing.T, q Quota, v int64, now time.Time, peek bool) (Result, int64, time.Duration) {
	t.Helper()
	st := &fixedStore{v: v, now: now}
	g, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{MaxRate: throttled.PerDuration(q.Limit, q.Window), MaxBurst: q.Limit - 1})
	if err != nil {
		t.Fatal(err)
	}
	quantity := 1
	if peek {
		quantity = 0
	}
	limited, r, err := g.RateLimitCtx(context.Background(), "k", quantity)
	if err != nil {
		t.Fatal(err)
	}
	return toResult(limited, r, peek), st.written, st.ttl
}

// redisNow reads Redis' clock, in Unix nanoseconds (to the microsecond).
func redisNow(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now.UnixNano()
}

// TestScriptMatchesLibrary: gcra.lua answers and writes what throttled's GCRA
// answers and writes, for budgets untouched, idle, part spent, nearly spent
// and spent, on quotas whose emission interval is and is not a whole number of
// nanoseconds. The script runs at Redis' clock a little after the test read
// it, so durations may be shorter by the time the call took, and a stored
// time that lay in the past may be later by as much; everything else is
// exact.
func TestScriptMatchesLibrary(t *testing.T) {
	srv := testredis.Start(t)
	l := newLimiter(t, Options{RedisURL: srv.URL()})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()

	quotas := []Quota{
		{Limit: 5, Window: time.Hour},
		{Limit: 10, Window: 15 * time.Minute},
		{Limit: 3, Window: 7 * time.Second}, // 2.333…s: truncated to the nanosecond
		{Limit: 1, Window: 2 * time.Second},
		{Limit: 40, Window: 100 * 24 * time.Hour}, // the longest TAT offset gcra.lua keeps exact is 104 days
	}
	for _, q := range quotas {
		T := q.Window / time.Duration(q.Limit)
		dvt := T * time.Duration(q.Limit)
		// Where the stored time lies from now; "missing" stores nothing. Each is
		// half an emission interval away from the nearest boundary, so the time
		// the call takes never moves a count.
		states := []struct {
			name    string
			missing bool
			ahead   time.Duration
		}{
			{"missing", true, 0},
			{"long past", false, -1000 * time.Hour},
			{"just past", false, -T / 2},
			{"half a request", false, T / 2},
			{"two and a half", false, 5 * T / 2},
			{"one and a half left", false, dvt - 3*T/2},
			{"half a request left", false, dvt - T/2},
			{"spent", false, dvt + T/2},
			{"far over", false, 3 * dvt},
		}
		for _, s := range states {
			if s.ahead > 104*24*time.Hour {
				continue // beyond what doubles hold to the nanosecond
			}
			for _, peek := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/%s/peek=%v", q, s.name, peek), func(t *testing.T) {
					key := fmt.Sprintf("%v %s %v", q, s.name, peek)
					stored := l.opts.Prefix + l.policy("ip", q).storeKey(&l.hasher, key)
					began := time.Now()
					base := redisNow(t, rdb)
					v := int64(-1)
					if !s.missing {
						v = base + int64(s.ahead)
						if err := rdb.Set(ctx, stored, v, time.Hour).Err(); err != nil {
							t.Fatal(err)
						}
					}
					var got Result
					if peek {
						got = l.Peek(ctx, "ip", q, key)
					} else {
						got = l.Allow(ctx, "ip", q, key)
					}
					elapsed := time.Since(began) + clockSlack
					if elapsed > T/2 {
						t.Skipf("the call took %v, over half an emission interval (%v): counts may differ", elapsed, T/2)
					}
					want, written, ttl := library(t, q, v, time.Unix(0, base), peek)

					if got.Allowed != want.Allowed || got.Limit != want.Limit || got.Remaining != want.Remaining {
						t.Errorf("script %+v, library %+v", got, want)
					}
					near := func(what string, got, want time.Duration) {
						t.Helper()
						if want == 0 {
							if got != 0 {
								t.Errorf("%s = %v, want 0", what, got)
							}
							return
						}
						if got > want || got < want-elapsed {
							t.Errorf("%s = %v, want %v (less at most %v)", what, got, want, elapsed)
						}
					}
					near("Reset", got.Reset, want.Reset)
					near("RetryAfter", got.RetryAfter, want.RetryAfter)

					raw, err := rdb.Get(ctx, stored).Result()
					if err == redis.Nil {
						raw = "missing"
					} else if err != nil {
						t.Fatal(err)
					}
					pttl := rdb.PTTL(ctx, stored).Val()
					sinceBegan := time.Since(began) + clockSlack
					switch {
					case written == 0 || peek:
						// Nothing written: the stored value is as it was.
						wantRaw := "missing"
						if !s.missing {
							wantRaw = strconv.FormatInt(v, 10)
						}
						if raw != wantRaw {
							t.Errorf("stored %s, want %s (unchanged)", raw, wantRaw)
						}
					default:
						n, err := strconv.ParseInt(raw, 10, 64)
						if err != nil || strconv.FormatInt(n, 10) != raw {
							t.Fatalf("stored %q, want decimal Unix nanoseconds", raw)
						}
						// A time ahead of now moves by exactly one request; one
						// that was past starts from Redis' now.
						if s.ahead > 0 && n != written {
							t.Errorf("stored %d, library %d", n, written)
						}
						if s.ahead <= 0 && (n < written || n > written+int64(elapsed)) {
							t.Errorf("stored %d, library %d (later at most %v)", n, written, elapsed)
						}
						// It lives until the budget is full again, plus ttlPad.
						if pttl > ttl+ttlPad || pttl < ttl+ttlPad-sinceBegan-time.Millisecond {
							t.Errorf("PTTL %v, want %v", pttl, ttl+ttlPad)
						}
					}
				})
			}
		}
	}
}

// TestAllowAll: the checks of one call are taken in order, the first refusal
// ends it (what was taken before stays taken, what comes after is not looked
// at), and quotas that are off take nothing, on both backends.
func TestAllowAll(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open func(*testing.T) *Limiter) {
		l := open(t)
		ctx := context.Background()
		ip := Quota{Limit: 10, Window: time.Hour}
		auth := Quota{Limit: 2, Window: time.Hour}
		user := Quota{Limit: 5, Window: time.Hour}
		checks := []Check{
			{"ip", ip, "203.0.113.7"},
			{"off", Quota{}, "203.0.113.7"},
			{"auth_ip", auth, "203.0.113.7"},
			{"principal", user, "user-1"},
		}
		for i := range auth.Limit {
			res := l.AllowAll(ctx, checks...)
			if len(res) != len(checks) {
				t.Fatalf("call %d: %d results %+v, want %d", i+1, len(res), res, len(checks))
			}
			for j, want := range []Result{
				{Allowed: true, Limit: ip.Limit, Remaining: ip.Limit - 1 - i},
				{Allowed: true},
				{Allowed: true, Limit: auth.Limit, Remaining: auth.Limit - 1 - i},
				{Allowed: true, Limit: user.Limit, Remaining: user.Limit - 1 - i},
			} {
				if got := res[j]; got.Allowed != want.Allowed || got.Limit != want.Limit || got.Remaining != want.Remaining || got.RetryAfter != 0 {
					t.Errorf("call %d, check %s: %+v, want %+v", i+1, checks[j].Name, got, want)
				}
			}
		}
		// auth_ip is spent: the call stops there.
		res := l.AllowAll(ctx, checks...)
		if len(res) != 3 || !res[0].Allowed || !res[1].Allowed || res[2].Allowed || res[2].RetryAfter <= 0 {
			t.Fatalf("over auth_ip: %+v, want ip and off allowed, auth_ip refused, principal not looked at", res)
		}
		// ip kept the refused call's request; principal never saw it.
		if p := l.Peek(ctx, "ip", ip, "203.0.113.7"); p.Remaining != ip.Limit-auth.Limit-1 {
			t.Errorf("ip after the refusal: %+v, want remaining %d", p, ip.Limit-auth.Limit-1)
		}
		if p := l.Peek(ctx, "principal", user, "user-1"); p.Remaining != user.Limit-auth.Limit {
			t.Errorf("principal after the refusal: %+v, want remaining %d", p, user.Limit-auth.Limit)
		}
		// A first check that refuses is the only result.
		for range ip.Limit {
			l.Allow(ctx, "ip", ip, "198.51.100.1")
		}
		if res := l.AllowAll(ctx, Check{"ip", ip, "198.51.100.1"}, Check{"principal", user, "user-2"}); len(res) != 1 || res[0].Allowed {
			t.Fatalf("over ip: %+v, want one refusal", res)
		}
		if p := l.Peek(ctx, "principal", user, "user-2"); p.Remaining != user.Limit {
			t.Errorf("principal after a refusal by ip: %+v, want untouched", p)
		}
		// Only quotas that are off: nothing to ask.
		if res := l.AllowAll(ctx, Check{"off", Quota{}, "k"}); len(res) != 1 || !res[0].Allowed {
			t.Errorf("an off quota: %+v, want allowed", res)
		}
		if res := l.AllowAll(ctx); len(res) != 0 {
			t.Errorf("no checks: %+v", res)
		}
	})
}

// roundTrips counts the exchanges of a go-redis client with its server: one
// per command, one per pipeline.
type roundTrips struct{ n atomic.Int64 }

func (*roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// commandCalls returns how often the server ran each command since the last
// CONFIG RESETSTAT (INFO commandstats), leaving out the test's own INFO and
// CONFIG.
func commandCalls(t *testing.T, rdb *redis.Client) map[string]int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		name = strings.TrimPrefix(name, "cmdstat_")
		n, _, _ := strings.Cut(rest, ",")
		if name != "info" && !strings.HasPrefix(name, "config") {
			calls[name], _ = strconv.Atoi(n)
		}
	}
	return calls
}

// TestOneRoundTripPerCall: Allow, AllowAll (of any number of checks, taken or
// refused) and Peek cost one exchange with Redis each, an EVALSHA; when Redis
// has lost the script (a restart, SCRIPT FLUSH) the call sends it once more
// with EVAL, without degrading. Counted on the client (a go-redis hook) and on
// the server (INFO commandstats).
func TestOneRoundTripPerCall(t *testing.T) {
	srv := testredis.Start(t)
	l := newLimiter(t, Options{RedisURL: srv.URL()})
	var rt roundTrips
	l.rdb.AddHook(&rt)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	ctx := context.Background()
	q := Quota{Limit: 2, Window: time.Hour}
	l.Allow(ctx, "warm", q, "up") // loads the script

	four := func(key string) []Check {
		return []Check{{"ip", q, key}, {"auth_ip", q, key}, {"client", q, key}, {"login_account", q, key}}
	}
	// What Redis runs: the client's one EVALSHA, and within it the script's
	// TIME, then a GET per budget looked at and a SET per budget taken from.
	script := func(gets, sets int) map[string]int {
		m := map[string]int{"evalsha": 1, "time": 1, "get": gets, "set": sets}
		if sets == 0 {
			delete(m, "set")
		}
		return m
	}
	for _, c := range []struct {
		name string
		call func()
		want map[string]int
	}{
		{"Allow of a new key", func() { l.Allow(ctx, "ip", q, "a") }, script(1, 1)},
		{"Allow of a known key", func() { l.Allow(ctx, "ip", q, "a") }, script(1, 1)},
		{"AllowAll of four new keys", func() { l.AllowAll(ctx, four("b")...) }, script(4, 4)},
		{"AllowAll of four known keys", func() { l.AllowAll(ctx, four("b")...) }, script(4, 4)},
		{"AllowAll refused by its last", func() {
			l.AllowAll(ctx, Check{"ip", q, "c"}, Check{"ip", q, "a"})
		}, script(2, 1)},
		{"AllowAll refused by its first", func() {
			l.AllowAll(ctx, Check{"ip", q, "a"}, Check{"ip", q, "e"})
		}, script(1, 0)},
		{"Peek", func() { l.Peek(ctx, "ip", q, "b") }, script(1, 0)},
	} {
		if err := admin.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		before := rt.n.Load()
		c.call()
		if n := rt.n.Load() - before; n != 1 {
			t.Errorf("%s: %d round trips to Redis, want 1", c.name, n)
		}
		if calls := commandCalls(t, admin); !maps.Equal(calls, c.want) {
			t.Errorf("%s: Redis ran %v, want %v", c.name, calls, c.want)
		}
	}

	// Redis lost its scripts: the next call sends it again, then one round
	// trip as before.
	if err := admin.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	before := rt.n.Load()
	if r := l.Allow(ctx, "ip", q, "d"); !r.Allowed || r.Remaining != q.Limit-1 {
		t.Fatalf("Allow after SCRIPT FLUSH: %+v", r)
	}
	if n := rt.n.Load() - before; n != 2 {
		t.Errorf("after SCRIPT FLUSH: %d round trips, want 2 (EVALSHA refused with NOSCRIPT, then EVAL)", n)
	}
	before = rt.n.Load()
	if r := l.Allow(ctx, "ip", q, "d"); !r.Allowed || r.Remaining != q.Limit-2 {
		t.Fatalf("second Allow after SCRIPT FLUSH: %+v", r)
	}
	if n := rt.n.Load() - before; n != 1 {
		t.Errorf("once the script is back: %d round trips, want 1", n)
	}
	if st := l.Status(); st.Degraded {
		t.Errorf("Status() = %+v, want healthy", st)
	}
}

// TestSharesBudgetsWithOlderServers: servers of older versions ran throttled's
// own Redis store (goredisstore); during a rolling upgrade they and this
// Limiter take turns on the same keys and must draw on one budget.
func TestSharesBudgetsWithOlderServers(t *testing.T) {
	srv := testredis.Start(t)
	l := newLimiter(t, Options{RedisURL: srv.URL()})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	st, err := goredisstore.NewCtx(rdb, l.opts.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	q := Quota{Limit: 6, Window: time.Hour}
	older, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{MaxRate: throttled.PerDuration(q.Limit, q.Window), MaxBurst: q.Limit - 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const ip = "203.0.113.7"
	key := l.policy("ip", q).storeKey(&l.hasher, ip)
	for i := range q.Limit + 2 {
		var got Result
		by := "this Limiter"
		if i%2 == 0 {
			got = l.Allow(ctx, "ip", q, ip)
		} else {
			by = "an older server"
			limited, r, err := older.RateLimitCtx(ctx, key, 1)
			if err != nil {
				t.Fatal(err)
			}
			got = toResult(limited, r, false)
		}
		if wantAllowed := i < q.Limit; got.Allowed != wantAllowed || got.Remaining != max(q.Limit-1-i, 0) {
			t.Errorf("request %d, by %s: %+v, want allowed %v with remaining %d", i+1, by, got, wantAllowed, max(q.Limit-1-i, 0))
		}
	}
}
