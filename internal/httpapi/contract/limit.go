package contract

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/ratelimit"
)

// RateLimiter is what the HTTP layer needs from the rate limiter.
type RateLimiter interface {
	AllowAll(ctx context.Context, checks ...ratelimit.Check) []ratelimit.Result
	ResetQuota(ctx context.Context, name string, q ratelimit.Quota, key string)
	Status() ratelimit.Status
}

var _ RateLimiter = (*ratelimit.Limiter)(nil)

// Limits are the quotas of the rate-limit policies; a zero Quota turns its policy off. The policies and their
// defaults are documented in openapi.yaml ("Rate limits").
type Limits struct {
	IP            ratelimit.Quota // every request to an operation, per client IP (IPv6: per /64)
	AuthIP        ratelimit.Quota // logins and refreshes, per client IP
	Client        ratelimit.Quota // logins and refreshes, per client_id
	LoginAccount  ratelimit.Quota // logins, per account (normalized email)
	LoginFailures ratelimit.Quota // logins per account since its last success: the brute-force defence
	Principal     ratelimit.Quota // authenticated requests, per user
}

// The policies' names, as the RateLimit headers, the limiter's keys and x-nexus-rate-limits spell them.
const (
	PolicyIP            = "ip"
	PolicyAuthIP        = "auth_ip"
	PolicyClient        = "client"
	PolicyLoginAccount  = "login_account"
	PolicyLoginFailures = "login_failures"
	PolicyPrincipal     = "principal"
)

// Policies are the names of all the policies.
var Policies = []string{PolicyIP, PolicyAuthIP, PolicyClient, PolicyLoginAccount, PolicyLoginFailures, PolicyPrincipal}

// limitState collects the policies applied to one request, and keeps its RateLimit and RateLimit-Policy headers
// up to date as each is applied, so that every response (429 or not) carries them.
type limitState struct {
	mu     sync.Mutex
	header interface{ Set(key, value string) }
	items  []limitItem
	// principal is the user whose policy the first step took already (a token verified before), or "".
	principal string
}

type limitItem struct {
	name  string
	quota ratelimit.Quota
	res   ratelimit.Result
}

// limitStateFrom returns the rate-limit state of the request of ctx, or nil outside the pipeline.
func limitStateFrom(ctx context.Context) *limitState {
	if x := exchangeFrom(ctx); x != nil {
		return &x.limits
	}
	return nil
}

func (st *limitState) record(items ...limitItem) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, it := range items {
		replaced := false
		for i := range st.items {
			if st.items[i].name == it.name {
				st.items[i] = it
				replaced = true
			}
		}
		if !replaced {
			st.items = append(st.items, it)
		}
	}
	var policy, state strings.Builder
	for i, it := range st.items {
		if i > 0 {
			policy.WriteString(", ")
			state.WriteString(", ")
		}
		policy.WriteString(strconv.Quote(it.name) + ";q=" + strconv.Itoa(it.quota.Limit) + ";w=" + strconv.Itoa(nexus.WholeSeconds(it.quota.Window)))
		state.WriteString(strconv.Quote(it.name) + ";r=" + strconv.Itoa(max(it.res.Remaining, 0)) + ";t=" + strconv.Itoa(nexus.WholeSeconds(it.res.Reset)))
	}
	st.header.Set("RateLimit-Policy", policy.String())
	st.header.Set("RateLimit", state.String())
}

// LimitOn names a policy and the key it limits for one request.
type LimitOn struct{ Policy, Key string }

// Take takes one request from each named policy's quota for its key, in order, records the results for the
// response headers, and returns rate_limited at the first quota that is exhausted; the policies after it are not
// looked at, the ones before it keep the request. The policies cost one round trip to Redis together, so a step
// of the request takes all of its policies in one call. A policy that is off, or a server without a limiter,
// takes nothing.
func (k *Contract) Take(ctx context.Context, on ...LimitOn) error {
	if k.limiter == nil {
		return nil
	}
	checks := make([]ratelimit.Check, 0, len(on))
	for _, o := range on {
		if q := k.quota(o.Policy); q.Limit != 0 {
			checks = append(checks, ratelimit.Check{Name: o.Policy, Quota: q, Key: o.Key})
		}
	}
	if len(checks) == 0 {
		return nil
	}
	results := k.limiter.AllowAll(ctx, checks...)
	if st := limitStateFrom(ctx); st != nil {
		items := make([]limitItem, len(results))
		for i, res := range results {
			items[i] = limitItem{checks[i].Name, checks[i].Quota, res}
		}
		st.record(items...)
	}
	if last := results[len(results)-1]; !last.Allowed {
		if n := k.refused[checks[len(results)-1].Name]; n != nil {
			n.Add(1)
		}
		return nexus.RateLimited(last.RetryAfter)
	}
	return nil
}

// GiveBack forgets key's state in the named policy (a successful login clears its account's failures), and
// shows the policy's quota as full again in the response headers.
func (k *Contract) GiveBack(ctx context.Context, name string, key string) {
	q := k.quota(name)
	if k.limiter == nil || q.Limit == 0 {
		return
	}
	k.limiter.ResetQuota(ctx, name, q, key)
	if st := limitStateFrom(ctx); st != nil {
		st.record(limitItem{name, q, ratelimit.Result{Allowed: true, Limit: q.Limit, Remaining: q.Limit}})
	}
}

func (k *Contract) quota(name string) ratelimit.Quota {
	switch name {
	case PolicyIP:
		return k.limits.IP
	case PolicyAuthIP:
		return k.limits.AuthIP
	case PolicyClient:
		return k.limits.Client
	case PolicyLoginAccount:
		return k.limits.LoginAccount
	case PolicyLoginFailures:
		return k.limits.LoginFailures
	case PolicyPrincipal:
		return k.limits.Principal
	}
	return ratelimit.Quota{}
}

// limitClient applies the per-IP policies to every operation of the contract, before anything else, so that a
// flood costs the server as little as possible: the "ip" policy, and those the operation names in
// x-nexus-rate-limits. The client IP is the socket peer, or what a trusted proxy forwarded (Echo's IP extractor,
// set up from the trusted proxies); IPv6 clients are limited per /64, the block one subscriber gets. The
// per-user policy follows authentication (limitUser); the per-client and per-account ones are the handlers'.
func (k *Contract) limitClient(x *exchange) error {
	if k.limiter == nil {
		return nil
	}
	req := x.c.Request()
	ip := ipKey(x.c.RealIP())
	on := make([]LimitOn, 0, 2+len(x.op.IPPolicies))
	on = append(on, LimitOn{PolicyIP, ip})
	for _, name := range x.op.IPPolicies {
		on = append(on, LimitOn{name, ip})
	}
	// A token this node verified before names its user already: the user's policy is taken in the same round
	// trip. (A token seen for the first time is verified only after the IP's policy let it through, so a flood
	// of made-up tokens costs no signature check, and charges no user.)
	remembered := false
	if x.op.Secured {
		if p, ok := k.auth.Remembered(bearerToken(req)); ok {
			on = append(on, LimitOn{PolicyPrincipal, p.Subject()})
			remembered = true
		}
	}
	if err := k.Take(req.Context(), on...); err != nil {
		return err
	}
	if remembered {
		x.limits.mu.Lock()
		x.limits.principal = on[len(on)-1].Key
		x.limits.mu.Unlock()
	}
	return nil
}

// ipKey is the key of a client IP: the address itself for IPv4, its /64 for IPv6.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// limitUser applies the per-user policy once the bearer token is verified, unless limitClient took it already.
func (k *Contract) limitUser(x *exchange) error {
	if !x.op.Secured {
		return nil
	}
	x.limits.mu.Lock()
	taken := x.limits.principal == x.p.Subject()
	x.limits.mu.Unlock()
	if taken {
		return nil
	}
	return k.Take(x.c.Request().Context(), LimitOn{PolicyPrincipal, x.p.Subject()})
}

// Refused returns the number of requests the named policy refused (429), for /metrics.
func (k *Contract) Refused(policy string) int64 {
	if n := k.refused[policy]; n != nil {
		return n.Load()
	}
	return 0
}

// Limiter returns the rate limiter, nil when there are no rate limits.
func (k *Contract) Limiter() RateLimiter { return k.limiter }
