package ratelimit

import (
	"fmt"
	"time"

	"github.com/throttled/throttled/v2"
)

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
