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
