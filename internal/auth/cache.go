package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// What a Service keeps in memory so that an authenticated request costs neither a signature check nor a
// database read: verified tokens, and what it knows of their sessions.
//
// Verified tokens are keyed by the SHA-256 of the token (the token itself is never kept), and hold the claims
// that verification returned. An entry is used only before the token's exp and while the key that signed it is
// still published; it is dropped from memory at exp. Only tokens that passed every check are stored, so a forged
// or altered token (whose hash differs) always goes through the full verification.
//
// Sessions are keyed by id and hold what Authenticate compares with a token: user, organization, client, role,
// absolute expiry, revoked. A live session is believed from memory only while the revocation feed is current
// (RevocationsCurrent within revocationLease); otherwise it is read from the database. A revoked session is
// believed from memory always: revocations are final.
//
// Both caches are bounded by entry count (CacheEntries each) with otter's W-TinyLFU eviction. An entry's memory
// is bounded too: tokens whose claims exceed maxCachedClaimBytes are not cached, so each cache holds at most
// CacheEntries × (CacheEntryOverhead + maxCachedClaimBytes) bytes.
const (
	// CacheEntryOverhead is the measured memory of one entry of either cache, map and eviction bookkeeping
	// included, apart from its strings' bytes (TestCacheEntryMemory measures it).
	CacheEntryOverhead = 300
	// maxCachedClaimBytes bounds the string bytes of one cached entry (a token of ours, whose ids are UUIDs,
	// has about 200).
	maxCachedClaimBytes = 512
	// revocationLease is how long after the revocation feed last proved itself current the session cache is
	// trusted for live sessions: the bound on how long another node's revocation can go unseen here, whatever
	// happens to the feed.
	revocationLease = 800 * time.Millisecond
)

type tokenKey [sha256.Size]byte

// tokenEntry is a verified token's claims.
type tokenEntry struct {
	p   nexus.Principal
	kid string
	exp time.Time
}

// sessionState is what Authenticate compares with a token.
type sessionState struct {
	userID, organizationID, clientID string
	role                             nexus.Role
	scopes                           nexus.PermissionSet // a service session's
	expiresAt                        time.Time
	revoked                          bool
}

func stateOfService(s ServiceSession) sessionState {
	return sessionState{organizationID: s.OrganizationID, clientID: s.ClientID, scopes: s.Scopes,
		expiresAt: s.ExpiresAt, revoked: !s.RevokedAt.IsZero()}
}

func stateOf(s Session) sessionState {
	return sessionState{userID: s.UserID, organizationID: s.OrganizationID, clientID: s.ClientID, role: s.Role,
		expiresAt: s.ExpiresAt, revoked: s.Revoked()}
}

// caches holds a Service's verified tokens and sessions. Its zero value (no otter caches) caches nothing.
type caches struct {
	tokens   *otter.Cache[tokenKey, tokenEntry]
	sessions *otter.Cache[string, sessionState]
	// gen changes whenever revocations are applied: a session read from the database is stored only if gen did
	// not change meanwhile, so that a read that raced a revocation never overwrites it.
	gen atomic.Uint64
	// base and trustedUntil (nanoseconds since base, monotonic): live sessions are believed until then.
	base         time.Time
	trustedUntil atomic.Int64
	sessionTTL   time.Duration
}

func newCaches(entries int, accessTTL time.Duration, now func() time.Time) (*caches, error) {
	c := &caches{base: time.Now(), sessionTTL: accessTTL + clockLeeway}
	if entries <= 0 {
		return c, nil
	}
	var err error
	c.tokens, err = otter.New(&otter.Options[tokenKey, tokenEntry]{
		MaximumSize: entries,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[tokenKey, tokenEntry]) time.Duration {
			return e.Value.exp.Sub(now()) // the service's clock, which verification used
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("token cache: %w", err)
	}
	c.sessions, err = otter.New(&otter.Options[string, sessionState]{
		MaximumSize: entries,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, sessionState]) time.Duration {
			return c.sessionTTL
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("session cache: %w", err)
	}
	return c, nil
}

func (c *caches) on() bool { return c.tokens != nil }

func claimBytes(p nexus.Principal, kid string) int {
	return len(p.UserID) + len(p.OrganizationID) + len(p.Role) + len(p.SessionID) + len(p.ClientID) + len(p.TokenID) + len(kid)
}

// token returns the claims of a token verified before, if it has not expired by now.
func (c *caches) token(key tokenKey, now time.Time) (tokenEntry, bool) {
	if !c.on() {
		return tokenEntry{}, false
	}
	e, ok := c.tokens.GetIfPresent(key)
	if !ok || !now.Before(e.exp) {
		return tokenEntry{}, false
	}
	return e, true
}

func (c *caches) putToken(key tokenKey, e tokenEntry, now time.Time) {
	if !c.on() || !now.Before(e.exp) || claimBytes(e.p, e.kid) > maxCachedClaimBytes {
		return
	}
	c.tokens.Set(key, e)
}

// Remembered returns the principal of a token this node has verified before and that has not expired, without
// checking its key or its session: what the rate limits may charge before Authenticate, which still decides.
func (s *Service) Remembered(bearer string) (nexus.Principal, bool) {
	if len(bearer) > maxTokenBytes {
		return nexus.Principal{}, false
	}
	e, ok := s.cache.token(tokenKey(sha256.Sum256([]byte(bearer))), s.now())
	return e.p, ok
}

// trusted reports whether live sessions may be believed from memory now.
func (c *caches) trusted() bool {
	return int64(time.Since(c.base)) < c.trustedUntil.Load()
}

// session returns what is known of a session: a revoked one always, a live one while the feed is current.
func (c *caches) session(id string) (sessionState, bool) {
	if !c.on() {
		return sessionState{}, false
	}
	st, ok := c.sessions.GetIfPresent(id)
	if !ok || (!st.revoked && !c.trusted()) {
		return sessionState{}, false
	}
	return st, true
}

// putSession stores a session read from the database when the read began at generation gen, unless
// revocations were applied since (the read may predate one of them).
func (c *caches) putSession(id string, st sessionState, gen uint64) {
	if !c.on() {
		return
	}
	c.sessions.Compute(id, func(old sessionState, found bool) (sessionState, otter.ComputeOp) {
		// Revocations bump gen before they write, under this key's lock: a revocation either wrote first (gen
		// moved: keep what it wrote) or writes after this.
		if c.gen.Load() != gen || (found && old.revoked) {
			return old, otter.CancelOp
		}
		return st, otter.WriteOp
	})
}

// SessionsRevoked implements store.RevocationSink: the sessions are remembered as revoked.
func (s *Service) SessionsRevoked(ids []string) {
	c := s.cache
	c.gen.Add(1)
	if !c.on() {
		return
	}
	for _, id := range ids {
		c.sessions.Set(id, sessionState{revoked: true})
	}
}

// RevocationsCurrent implements store.RevocationSink: live sessions in memory are believed for revocationLease
// after asOf.
func (s *Service) RevocationsCurrent(asOf time.Time) {
	until := int64(asOf.Sub(s.cache.base) + revocationLease)
	for {
		cur := s.cache.trustedUntil.Load()
		if until <= cur || s.cache.trustedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// ForgetSessions implements store.RevocationSink: every session is read from the database again.
func (s *Service) ForgetSessions() {
	c := s.cache
	c.gen.Add(1)
	if c.on() {
		c.sessions.InvalidateAll()
	}
}

// sessionState returns what Authenticate needs of a session (a service session when service is set): from
// memory when that may be believed, otherwise from the database (and then remembered). Session ids are UUIDs,
// unique across both kinds.
func (s *Service) sessionState(ctx context.Context, id string, service bool) (sessionState, error) {
	if st, ok := s.cache.session(id); ok {
		return st, nil
	}
	gen := s.cache.gen.Load()
	var st sessionState
	if service {
		sess, err := s.store.ServiceSession(ctx, id)
		if err != nil {
			return sessionState{}, err
		}
		st = stateOfService(sess)
	} else {
		sess, err := s.store.Session(ctx, id)
		if err != nil {
			return sessionState{}, err
		}
		st = stateOf(sess)
	}
	if claimBytesOfSession(st) <= maxCachedClaimBytes {
		s.cache.putSession(id, st, gen)
	}
	return st, nil
}

func claimBytesOfSession(st sessionState) int {
	return len(st.userID) + len(st.organizationID) + len(st.clientID) + len(st.role)
}
