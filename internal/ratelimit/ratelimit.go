// Package ratelimit limits the rate of requests per key with the generic cell
// rate algorithm (GCRA) of github.com/throttled/throttled.
//
// The state lives in this process by default (an LRU-bounded in-memory
// store) and in Redis when Options.RedisURL is set, so that every instance
// sharing the Redis enforces one budget. Both backends run the same
// algorithm, so a limit means the same with or without Redis: in this process
// the library's own code, in Redis a Lua script (gcra.lua) that repeats its
// arithmetic on the state the library's Redis store kept (the theoretical
// arrival time in Unix nanoseconds, under the same keys), so that servers of
// older versions, which ran the library against Redis, share the budgets
// during a rolling upgrade. One call to AllowAll, however many budgets it
// checks, is one round trip to Redis: an EVALSHA (and, when Redis has lost
// the script, after a restart, an EVAL that sends it again).
//
// Redis Cluster is not supported: the Limiter talks to one Redis server (or a
// proxy in front of one), and the keys of one AllowAll (a client IP's, a
// user's) lie in unrelated hash slots. A Cluster node would refuse the script
// (CROSSSLOT, MOVED) and the Limiter would run degraded.
//
// Redis is an optimisation of accuracy, never a dependency: when it fails or
// is slower than Options.Timeout, the Limiter marks itself degraded, answers
// from the in-process store (each instance then enforces the full quota on
// its own, starting from whatever it last held for a key, usually nothing),
// stops sending requests to Redis, and probes it in the background every
// Options.RecheckEvery until it takes writes again. Allow, AllowAll, Peek
// and Reset never fail and never wait for Redis longer than Options.Timeout.
//
// Keys are never stored as given: a stored key is the policy name, the quota
// and an HMAC-SHA-256 (keyed by Options.Secret) of the name and the key, so
// neither Redis nor the memory of the process holds client IPs or email
// addresses.
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	_ "embed"

	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	"github.com/throttled/throttled/v2/store/memstore"
)

// gcraLua is the script that checks and takes from a request's budgets in
// Redis.
//
//go:embed gcra.lua
var gcraLua string

// Quota is a GCRA limit: Limit requests may be made at once (burst = Limit),
// and the budget refills steadily at Limit per Window, one request every
// Window/Limit. A client that keeps sending is thus held to Limit requests
// per Window; a client that was idle for a Window may send Limit at once. (So
// an arbitrary interval of one Window may see up to 2×Limit−1 requests: a
// full burst, then the refill.)
//
// A Quota with Limit < 1 is off: everything is allowed. So is a Quota whose
// Window is shorter than Limit nanoseconds, which cannot be represented.
type Quota struct {
	Limit  int
	Window time.Duration
}

// off reports whether q limits nothing.
func (q Quota) off() bool {
	return q.Limit < 1 || q.Window/time.Duration(q.Limit) <= 0
}

// String returns "limit/window", as in stored keys.
func (q Quota) String() string {
	return strconv.Itoa(q.Limit) + "/" + q.Window.String()
}

// Result is the state of one key's budget as of one Allow or Peek.
type Result struct {
	// Allowed: the request was taken (Allow), or one more would be allowed
	// now (Peek).
	Allowed bool
	// Limit is Quota.Limit.
	Limit int
	// Remaining is the number of requests that could be made now (after
	// this one, if it was taken).
	Remaining int
	// Reset is the time until the budget is full again (0 when it is full).
	Reset time.Duration
	// RetryAfter, when !Allowed, is the time until the next request would
	// be allowed (> 0); 0 when Allowed.
	RetryAfter time.Duration
}

// Options configure a Limiter. Only Secret is required.
type Options struct {
	// RedisURL (redis:// or rediss://) shares the state across instances;
	// empty: in-process only.
	RedisURL string
	// Secret keys the HMAC-SHA-256 applied to every key before it is
	// stored; at least 16 bytes, and the same on every instance sharing a
	// Redis (derive it from the server's secret key).
	Secret []byte
	// Prefix of every Redis key; default "nexus:rl:".
	Prefix string
	// MaxLocalKeys bounds the in-process store (least recently used keys
	// are evicted first); default 100000.
	MaxLocalKeys int
	// Timeout bounds every call to Redis, dial, read and write included;
	// default 100ms.
	Timeout time.Duration
	// RecheckEvery is how often a failing Redis is probed (a SET of the key
	// Prefix+"probe") to find out whether it is back; default 1s.
	RecheckEvery time.Duration
	// Logger receives one warning when Redis starts failing and one
	// message when it is back; default: discard.
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultPrefix       = "nexus:rl:"
	DefaultMaxLocalKeys = 100_000
	DefaultTimeout      = 100 * time.Millisecond
	DefaultRecheckEvery = time.Second
)

// Backends named in Status.Backend.
const (
	BackendMemory = "memory"
	BackendRedis  = "redis"
)

// Status describes the backend in use.
type Status struct {
	// Backend is "memory" (no Redis configured) or "redis".
	Backend string
	// Degraded: Redis is configured but failing, so the limits are kept in
	// this process until it answers again.
	Degraded bool
	// Since is when the current state (healthy or degraded) began.
	Since time.Time
	// Error is a short description of the last Redis failure while
	// degraded, such as "connection refused" or "timeout"; it never holds
	// the URL, an address or a password.
	Error string
}

// casAttempts bounds the compare-and-swap retries of one request when other
// requests for the same key race it in the in-process store (the library's
// default is 10). Every failed attempt means another request for the key
// succeeded meanwhile; one that still fails after this many is refused. (In
// Redis the script runs atomically: nothing races it.)
const casAttempts = 100

// ttlPad is added to the lifetime of every key in Redis (gcra.lua adds it), so
// that no key expires before the time its state stops mattering.
const ttlPad = time.Second

// Limiter enforces quotas per (policy name, key). It is safe for concurrent
// use. Create it with New and release it with Close.
type Limiter struct {
	opts   Options
	log    *slog.Logger
	hasher hasher

	mem      *memstore.MemStore
	memStore throttled.GCRAStoreCtx

	rdb    *redis.Client // nil without Redis
	script *redis.Script // gcra.lua

	polMu    sync.Mutex                            // serialises policy creation
	policies atomic.Pointer[map[policyKey]*policy] // copied on write

	degraded atomic.Bool
	wake     chan struct{} // degraded: start probing
	stMu     sync.Mutex
	status   Status

	stop      context.CancelFunc
	done      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New returns a Limiter. An invalid Redis URL or Secret is an error; an
// unreachable Redis is not: the Limiter starts degraded, logs it, and
// switches to Redis once it answers.
func New(o Options) (*Limiter, error) {
	if len(o.Secret) < 16 {
		return nil, errors.New("ratelimit: Secret must be at least 16 bytes")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.MaxLocalKeys <= 0 {
		o.MaxLocalKeys = DefaultMaxLocalKeys
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.RecheckEvery <= 0 {
		o.RecheckEvery = DefaultRecheckEvery
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mem, err := memstore.New(o.MaxLocalKeys)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: in-process store: %w", err)
	}
	l := &Limiter{
		opts:     o,
		log:      log,
		hasher:   newHasher(o.Secret),
		mem:      mem,
		memStore: throttled.WrapStoreWithContext(mem),
		wake:     make(chan struct{}, 1),
		status:   Status{Backend: BackendMemory, Since: time.Now()},
	}
	l.policies.Store(&map[policyKey]*policy{})
	if o.RedisURL == "" {
		return l, nil
	}

	ropt, err := redis.ParseURL(o.RedisURL)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			// url.Parse's message quotes the URL, password included.
			err = errors.New(urlErr.Err.Error())
		}
		return nil, fmt.Errorf("ratelimit: Redis URL: %w", err)
	}
	// Fail fast and once: no retries, no dial retries with backoff, every
	// wait bounded by Timeout, and the deadline of the context honoured.
	ropt.DialTimeout = o.Timeout
	ropt.ReadTimeout = o.Timeout
	ropt.WriteTimeout = o.Timeout
	ropt.PoolTimeout = o.Timeout
	ropt.MaxRetries = -1
	ropt.DialerRetries = 1
	// go-redis waits DialerRetryTimeout after every failed dial, the last
	// one included (default 100ms): a refused connection would cost that
	// much per request.
	ropt.DialerRetryTimeout = time.Microsecond
	ropt.ContextTimeoutEnabled = true
	ropt.DisableIdentity = true // no CLIENT SETINFO round trip per connection
	l.rdb = redis.NewClient(ropt)
	l.script = redis.NewScript(gcraLua)
	l.status.Backend = BackendRedis

	ctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	l.done.Add(1)
	go l.watch(ctx)

	if err := l.probe(ctx); err != nil {
		l.markDegraded(err)
	}
	return l, nil
}

// Close stops the background probes and closes the Redis connections. The
// Limiter must not be used afterwards.
func (l *Limiter) Close() error {
	l.closeOnce.Do(func() {
		if l.rdb == nil {
			return
		}
		l.stop()
		l.done.Wait()
		l.closeErr = l.rdb.Close()
	})
	return l.closeErr
}

// Check is one budget a request draws on: the policy name, its quota and the
// key it limits (a client IP, an email, a user ID).
type Check struct {
	Name  string
	Quota Quota
	Key   string
}

// Allow takes one request from the budget of key under policy name with
// quota q, if the budget allows it. It never fails: when Redis is configured
// but failing, it answers from the in-process store.
func (l *Limiter) Allow(ctx context.Context, name string, q Quota, key string) Result {
	checks, out := [1]Check{{name, q, key}}, [1]Result{}
	l.rateLimit(ctx, checks[:], out[:], false)
	return out[0]
}

// AllowAll takes one request from each budget of checks in turn, as Allow
// would one after the other, and stops at the first that refuses: the budgets
// before it keep the request they gave, the ones after it are not looked at.
// It returns a Result for every check looked at: one per check when all
// allowed the request, else up to and including the refusal, the last. A
// check whose quota is off is allowed and takes nothing.
//
// With Redis, the checks cost one round trip however many there are, and
// they are one atomic step: no other request is counted between them. Like
// Allow, AllowAll never fails.
func (l *Limiter) AllowAll(ctx context.Context, checks ...Check) []Result {
	out := make([]Result, len(checks))
	return out[:l.rateLimit(ctx, checks, out, false)]
}

// Peek reports whether one more request of key would be allowed now, without
// taking it and without writing anything. Result.Remaining, Reset and
// RetryAfter are as Allow would report them before taking a request.
//
// throttled's RateLimitCtx with quantity 0 computes exactly this, but still
// writes the (unchanged) state back: it creates the key when it is missing
// (an entry in the LRU for every key ever peeked). So in this process Peek
// runs the library's limiter over a read-only view of the same store, whose
// writes succeed without writing: the library's own arithmetic, one store
// read. In Redis the script computes the same and writes nothing.
func (l *Limiter) Peek(ctx context.Context, name string, q Quota, key string) Result {
	checks, out := [1]Check{{name, q, key}}, [1]Result{}
	l.rateLimit(ctx, checks[:], out[:], true)
	return out[0]
}

// Reset forgets key under policy name: its next request starts with a full
// budget. It applies to every quota this Limiter has used with name (the
// stored key includes the quota), in this process and, unless degraded, in
// Redis. Use ResetQuota for a quota this Limiter may not have used yet.
func (l *Limiter) Reset(ctx context.Context, name string, key string) {
	var quotas []Quota
	for pk := range *l.policies.Load() {
		if pk.name == name {
			quotas = append(quotas, pk.q)
		}
	}
	l.reset(ctx, name, quotas, key)
}

// ResetQuota forgets key under policy name and quota q, like Reset.
func (l *Limiter) ResetQuota(ctx context.Context, name string, q Quota, key string) {
	if q.off() {
		return
	}
	l.reset(ctx, name, []Quota{q}, key)
}

func (l *Limiter) reset(ctx context.Context, name string, quotas []Quota, key string) {
	if len(quotas) == 0 {
		return
	}
	keys := make([]string, 0, len(quotas))
	for _, q := range quotas {
		k := l.policy(name, q).storeKey(&l.hasher, key)
		keys = append(keys, k)
		l.resetMemory(k)
	}
	if l.rdb == nil || l.degraded.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
	defer cancel()
	for i := range keys {
		keys[i] = l.opts.Prefix + keys[i]
	}
	if err := l.rdb.Del(ctx, keys...).Err(); err != nil {
		l.markDegraded(err)
	}
}

// resetMemory makes key's in-process budget full. The memory store cannot
// delete, so the stored theoretical arrival time is swapped for one in the
// distant past (1970), which GCRA reads as a full budget.
func (l *Limiter) resetMemory(key string) {
	for range casAttempts {
		v, _, _ := l.mem.GetWithTime(key)
		if v == -1 || v == 0 {
			return
		}
		if ok, _ := l.mem.CompareAndSwapWithTTL(key, v, 0, 0); ok {
			return
		}
	}
}

// Status reports the backend in use and whether it is degraded.
func (l *Limiter) Status() Status {
	l.stMu.Lock()
	defer l.stMu.Unlock()
	return l.status
}

// rateLimit is AllowAll (peek false) and Peek (peek true; it never stops
// early): it fills out (as long as checks) and returns how many checks it
// looked at.
func (l *Limiter) rateLimit(ctx context.Context, checks []Check, out []Result, peek bool) int {
	if l.rdb != nil && !l.degraded.Load() {
		n, err := l.rateLimitRedis(ctx, checks, out, peek)
		if err == nil {
			return n
		}
		l.markDegraded(err)
	}

	quantity := 1
	if peek {
		quantity = 0
	}
	for i, c := range checks {
		if c.Quota.off() {
			out[i] = Result{Allowed: true, Limit: c.Quota.Limit}
			continue
		}
		p := l.policy(c.Name, c.Quota)
		g := p.mem
		if peek {
			g = p.memPeek
		}
		limited, r, err := g.RateLimitCtx(ctx, p.storeKey(&l.hasher, c.Key), quantity)
		res := toResult(limited, r, peek)
		if err != nil {
			// The memory store never fails; the key lost casAttempts races.
			res = p.refused()
		}
		out[i] = res
		if !peek && !res.Allowed {
			return i + 1
		}
	}
	return len(checks)
}

// rateLimitRedis runs gcra.lua over the checks whose quota is on, in one
// round trip, fills out and returns how many checks were looked at. Any error
// is Redis failing.
func (l *Limiter) rateLimitRedis(ctx context.Context, checks []Check, out []Result, peek bool) (int, error) {
	keys := make([]string, 0, len(checks))
	args := make([]any, 1, 1+2*len(checks))
	args[0] = "take"
	if peek {
		args[0] = "peek"
	}
	pols := make([]*policy, len(checks))
	for i, c := range checks {
		if c.Quota.off() {
			continue
		}
		p := l.policy(c.Name, c.Quota)
		pols[i] = p
		keys = append(keys, l.opts.Prefix+p.storeKey(&l.hasher, c.Key))
		args = append(args, p.emission, p.tolerance)
	}
	var reply []int64
	if len(keys) > 0 {
		// The caller's cancellation does not cut a Redis exchange short
		// (that would look like a Redis failure); Timeout bounds it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.opts.Timeout)
		var err error
		reply, err = l.script.Run(rctx, l.rdb, keys, args...).Int64Slice()
		cancel()
		if err != nil {
			return 0, err
		}
	}
	for i, c := range checks {
		p := pols[i]
		if p == nil {
			out[i] = Result{Allowed: true, Limit: c.Quota.Limit}
			continue
		}
		if len(reply) < 4 {
			return 0, fmt.Errorf("rate-limit script: %d budgets answered, fewer than asked", i)
		}
		out[i] = p.scriptResult(reply[:4], peek)
		reply = reply[4:]
		if !peek && !out[i].Allowed {
			return i + 1, nil
		}
	}
	return len(checks), nil
}

// scriptResult converts the four integers gcra.lua returns for one budget:
// allowed, remaining, reset and retry-after (nanoseconds).
func (p *policy) scriptResult(r []int64, peek bool) Result {
	res := Result{
		Allowed:   r[0] == 1,
		Limit:     p.q.Limit,
		Remaining: max(int(r[1]), 0),
		Reset:     max(time.Duration(r[2]), 0),
	}
	if !res.Allowed {
		res.RetryAfter = max(time.Duration(r[3]), time.Nanosecond)
	}
	return res
}

// toResult converts the library's result.
func toResult(limited bool, r throttled.RateLimitResult, peek bool) Result {
	res := Result{
		Limit:     r.Limit,
		Remaining: max(r.Remaining, 0),
		Reset:     max(r.ResetAfter, 0),
	}
	if peek {
		// With quantity 0 the library never reports limited; it sets
		// RetryAfter (> 0) when a request of 1 would be refused.
		res.Allowed = r.RetryAfter <= 0
	} else {
		res.Allowed = !limited
	}
	if !res.Allowed {
		res.RetryAfter = max(r.RetryAfter, time.Nanosecond)
	}
	return res
}

// policyKey identifies a policy: a name and a quota.
type policyKey struct {
	name string
	q    Quota
}

// policy holds the library's limiters of one (name, quota), and the
// arguments of gcra.lua for it.
type policy struct {
	name   string
	q      Quota
	prefix string // name:limit/window:

	mem, memPeek *throttled.GCRARateLimiterCtx

	// emission is the library's emission interval (Window/Limit, one
	// request's share), tolerance its delay variation tolerance (Limit
	// emission intervals: the burst), both in nanoseconds.
	emission, tolerance int64
}

// policy returns the policy of (name, q), creating it on first use. Lookups
// take no lock and allocate nothing.
func (l *Limiter) policy(name string, q Quota) *policy {
	pk := policyKey{name, q}
	if p, ok := (*l.policies.Load())[pk]; ok {
		return p
	}
	l.polMu.Lock()
	defer l.polMu.Unlock()
	old := *l.policies.Load()
	if p, ok := old[pk]; ok {
		return p
	}
	p := &policy{name: name, q: q, prefix: name + ":" + q.String() + ":"}
	// Limit requests at once, refilled at Limit per Window. q is not off,
	// so the period is positive and the library accepts the quota.
	quota := throttled.RateQuota{MaxRate: throttled.PerDuration(q.Limit, q.Window), MaxBurst: q.Limit - 1}
	p.mem = newGCRA(l.memStore, quota)
	p.memPeek = newGCRA(readOnly{l.memStore}, quota)
	// As throttled.PerDuration and NewGCRARateLimiterCtx derive them.
	period := q.Window / time.Duration(q.Limit)
	p.emission = int64(period)
	p.tolerance = int64(period * time.Duration(q.Limit))
	next := make(map[policyKey]*policy, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[pk] = p
	l.policies.Store(&next)
	return p
}

func newGCRA(st throttled.GCRAStoreCtx, quota throttled.RateQuota) *throttled.GCRARateLimiterCtx {
	g, err := throttled.NewGCRARateLimiterCtx(st, quota)
	if err != nil {
		// Unreachable: callers pass a quota with a positive period and
		// burst.
		panic(fmt.Sprintf("ratelimit: %v", err))
	}
	g.SetMaxCASAttemptsLimit(casAttempts)
	return g
}

// refused is the answer when a request lost every compare-and-swap race for
// its key: many requests for the key are being made at this very moment.
func (p *policy) refused() Result {
	return Result{Limit: p.q.Limit, RetryAfter: p.q.Window / time.Duration(p.q.Limit)}
}

// markDegraded switches to the in-process store after a Redis failure,
// logging the transition once.
func (l *Limiter) markDegraded(err error) {
	desc := describe(err)
	if !l.degraded.CompareAndSwap(false, true) {
		return
	}
	l.stMu.Lock()
	l.status.Degraded, l.status.Since, l.status.Error = true, time.Now(), desc
	l.stMu.Unlock()
	l.log.Warn("rate limiter: Redis is failing; limits are kept in this process until it answers again (each instance enforces them on its own)",
		slog.String("error", desc))
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// markHealthy switches back to Redis.
func (l *Limiter) markHealthy() {
	if !l.degraded.Load() {
		return
	}
	l.stMu.Lock()
	down := time.Since(l.status.Since)
	l.status.Degraded, l.status.Since, l.status.Error = false, time.Now(), ""
	l.stMu.Unlock()
	l.degraded.Store(false)
	l.log.Info("rate limiter: Redis answers again; limits are shared across instances again",
		slog.Duration("degraded_for", down.Round(time.Millisecond)))
}

// watch probes Redis every RecheckEvery while degraded, until ctx is done.
func (l *Limiter) watch(ctx context.Context) {
	defer l.done.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		}
		t := time.NewTicker(l.opts.RecheckEvery)
		for l.degraded.Load() {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if err := l.probe(ctx); err != nil {
				desc := describe(err)
				l.stMu.Lock()
				l.status.Error = desc
				l.stMu.Unlock()
				continue
			}
			l.markHealthy()
		}
		t.Stop()
	}
}

// probe checks that Redis takes writes, bounded by Timeout. A PING is not
// enough: a Redis out of memory (OOM) or a read-only replica (READONLY, after
// a failover) answers PING but refuses every rate-limit update, and
// recovering on PING would flap between Redis and memory every RecheckEvery.
func (l *Limiter) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	return l.rdb.Set(ctx, l.opts.Prefix+"probe", 1, time.Minute).Err()
}
