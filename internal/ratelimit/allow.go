package ratelimit

import (
	"context"
	"fmt"
	"time"

	"github.com/throttled/throttled/v2"
)

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
