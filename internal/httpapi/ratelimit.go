package httpapi

import (
	"context"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

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

// The policies' names, as the RateLimit headers and the limiter's keys spell them.
const (
	policyIP            = "ip"
	policyAuthIP        = "auth_ip"
	policyClient        = "client"
	policyLoginAccount  = "login_account"
	policyLoginFailures = "login_failures"
	policyPrincipal     = "principal"
)

var policies = []string{policyIP, policyAuthIP, policyClient, policyLoginAccount, policyLoginFailures, policyPrincipal}

// limitState collects the policies applied to one request, and keeps its RateLimit and RateLimit-Policy headers
// up to date as each is applied, so that every response (429 or not) carries them.
type limitState struct {
	mu     sync.Mutex
	header http.Header
	items  []limitItem
	// principal is the user whose policy the first step took already (a token verified before), or "".
	principal string
}

type limitItem struct {
	name  string
	quota ratelimit.Quota
	res   ratelimit.Result
}

type limitKey struct{}

func limitStateFrom(ctx context.Context) *limitState {
	st, _ := ctx.Value(limitKey{}).(*limitState)
	return st
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
		policy.WriteString(strconv.Quote(it.name) + ";q=" + strconv.Itoa(it.quota.Limit) + ";w=" + strconv.Itoa(ceilSeconds(it.quota.Window)))
		state.WriteString(strconv.Quote(it.name) + ";r=" + strconv.Itoa(max(it.res.Remaining, 0)) + ";t=" + strconv.Itoa(ceilSeconds(it.res.Reset)))
	}
	st.header.Set("RateLimit-Policy", policy.String())
	st.header.Set("RateLimit", state.String())
}

// ceilSeconds rounds d up to whole seconds, never below 0.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// rateLimited is the answer to a request over a limit.
func rateLimited(retryAfter time.Duration) error {
	return &transportError{status: http.StatusTooManyRequests, code: "rate_limited",
		detail:     "Too many requests. Retry after the number of seconds in Retry-After.",
		retryAfter: max(ceilSeconds(retryAfter), 1)}
}

// limitOn names a policy and the key it limits for one request.
type limitOn struct{ name, key string }

// take takes one request from each named policy's quota for its key, in order, records the results for the
// response headers, and returns rate_limited at the first quota that is exhausted; the policies after it are not
// looked at, the ones before it keep the request. The policies cost one round trip to Redis together, so a step
// of the request takes all of its policies in one call. A policy that is off, or a server without a limiter,
// takes nothing.
func (s *Server) take(ctx context.Context, on ...limitOn) error {
	if s.limiter == nil {
		return nil
	}
	checks := make([]ratelimit.Check, 0, len(on))
	for _, o := range on {
		if q := s.quota(o.name); q.Limit != 0 {
			checks = append(checks, ratelimit.Check{Name: o.name, Quota: q, Key: o.key})
		}
	}
	if len(checks) == 0 {
		return nil
	}
	results := s.limiter.AllowAll(ctx, checks...)
	if st := limitStateFrom(ctx); st != nil {
		items := make([]limitItem, len(results))
		for i, res := range results {
			items[i] = limitItem{checks[i].Name, checks[i].Quota, res}
		}
		st.record(items...)
	}
	if last := results[len(results)-1]; !last.Allowed {
		if n := s.refused[checks[len(results)-1].Name]; n != nil {
			n.Add(1)
		}
		return rateLimited(last.RetryAfter)
	}
	return nil
}

// giveBack forgets key's state in the named policy (a successful login clears its account's failures), and
// shows the policy's quota as full again in the response headers.
func (s *Server) giveBack(ctx context.Context, name string, key string) {
	q := s.quota(name)
	if s.limiter == nil || q.Limit == 0 {
		return
	}
	s.limiter.ResetQuota(ctx, name, q, key)
	if st := limitStateFrom(ctx); st != nil {
		st.record(limitItem{name, q, ratelimit.Result{Allowed: true, Limit: q.Limit, Remaining: q.Limit}})
	}
}

func (s *Server) quota(name string) ratelimit.Quota {
	switch name {
	case policyIP:
		return s.limits.IP
	case policyAuthIP:
		return s.limits.AuthIP
	case policyClient:
		return s.limits.Client
	case policyLoginAccount:
		return s.limits.LoginAccount
	case policyLoginFailures:
		return s.limits.LoginFailures
	case policyPrincipal:
		return s.limits.Principal
	}
	return ratelimit.Quota{}
}

// rateLimit applies the per-IP policies to every operation of the contract, before authentication and
// validation, so that a flood costs the server as little as possible. The client IP is the socket peer, or what
// a trusted proxy forwarded (Echo's IP extractor, set up from the trusted proxies); IPv6 clients are limited per
// /64, the block one subscriber gets. The per-principal, per-client and per-account policies are applied once
// the request says who it is about (validate, Login, RefreshToken).
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		op, ok := s.ops[c.Request().Method+" "+c.Path()]
		if !ok || s.limiter == nil {
			return next(c)
		}
		req := c.Request()
		ctx := context.WithValue(req.Context(), limitKey{}, &limitState{header: c.Response().Header()})
		c.SetRequest(req.WithContext(ctx))
		ip := ipKey(c.RealIP())
		on := []limitOn{{policyIP, ip}}
		switch op.route.Operation.OperationID {
		case "login", "refreshToken":
			on = append(on, limitOn{policyAuthIP, ip})
		}
		// A token this node verified before names its user already: the user's policy is taken in the same
		// round trip. (A token seen for the first time is verified only after the IP's policy let it through, so
		// a flood of made-up tokens costs no signature check, and charges no user.)
		var st *limitState
		if op.secured {
			if p, ok := s.auth.Remembered(bearerToken(req)); ok {
				on = append(on, limitOn{policyPrincipal, p.UserID})
				st = limitStateFrom(ctx)
			}
		}
		if err := s.take(ctx, on...); err != nil {
			return err
		}
		if st != nil {
			st.mu.Lock()
			st.principal = on[len(on)-1].key
			st.mu.Unlock()
		}
		return next(c)
	}
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

// limitPrincipal applies the per-user policy once the bearer token is verified.
func (s *Server) limitPrincipal(ctx context.Context, p nexus.Principal) error {
	if st := limitStateFrom(ctx); st != nil {
		st.mu.Lock()
		taken := st.principal == p.UserID
		st.mu.Unlock()
		if taken {
			return nil
		}
	}
	return s.take(ctx, limitOn{policyPrincipal, p.UserID})
}

// limitLogin applies the login's per-client and per-account request limits.
func (s *Server) limitLogin(ctx context.Context, clientID, email string) error {
	return s.take(ctx, limitOn{policyClient, clientID}, limitOn{policyLoginAccount, email})
}

// limitPasswordCheck takes one attempt from the account's failure budget right before its password is checked
// (auth.LoginInput.BeforePasswordCheck), so that parallel guesses cannot outrun the count, while a login that
// fails before that (the database unreachable, an unknown client) costs the account nothing. A successful login
// gives the budget back in full (loginSucceeded). During a block a correct password gets the same 429 as a wrong
// one, and unknown emails are counted exactly like known ones: the answers reveal nothing about the account.
func (s *Server) limitPasswordCheck(ctx context.Context, email string) error {
	return s.take(ctx, limitOn{policyLoginFailures, email})
}

func (s *Server) loginSucceeded(ctx context.Context, email string) {
	s.giveBack(ctx, policyLoginFailures, email)
}
