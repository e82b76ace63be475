package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

func withCache(entries int) func(*Options) {
	return func(o *Options) { o.CacheEntries = entries }
}

// cachedLogin logs in on a caching service whose revocation feed is current, and authenticates the access token
// once, which caches it and its session.
func cachedLogin(t *testing.T, e *testEnv) (Tokens, nexus.Principal) {
	t.Helper()
	e.svc.RevocationsCurrent(time.Now())
	tok := e.login(t)
	p, err := e.svc.Authenticate(context.Background(), tok.AccessToken)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return tok, p
}

func wantUnauthenticated(t *testing.T, what string, p nexus.Principal, err error) {
	t.Helper()
	if !errors.Is(err, nexus.ErrUnauthenticated) {
		t.Errorf("%s: Authenticate = %+v, %v; want unauthenticated", what, p, err)
	}
}

// TestCachedTokenSkipsVerification proves that a verified token is served from the cache: once cached, it is
// accepted although a full verification would now refuse it (the service's issuer changed under it).
func TestCachedTokenSkipsVerification(t *testing.T) {
	e := newTestEnv(t, withCache(100))
	tok, want := cachedLogin(t, e)
	if n, _, err := e.svc.cachedEntries(); err != nil || n != 1 {
		t.Fatalf("cached tokens = %d, %v; want 1", n, err)
	}
	e.svc.issuer = "https://another.issuer.test"
	got, err := e.svc.Authenticate(context.Background(), tok.AccessToken)
	if err != nil || got != want {
		t.Fatalf("Authenticate from the cache = %+v, %v; want %+v", got, err, want)
	}
	// A service that caches nothing verifies every time.
	off := newTestEnv(t)
	tok = off.login(t)
	off.svc.issuer = "https://another.issuer.test"
	p, err := off.svc.Authenticate(context.Background(), tok.AccessToken)
	wantUnauthenticated(t, "no cache, issuer changed", p, err)
}

// TestCachedTokenExpiresWithToken: a cached token is served from the cache until its exp and never after; from
// then on it is verified in full (which accepts it for the clock leeway, and no longer).
func TestCachedTokenExpiresWithToken(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, withCache(100))
	tok, _ := cachedLogin(t, e)
	issuer := e.svc.issuer
	e.svc.issuer = "https://another.issuer.test" // a full verification now fails: only the cache accepts
	e.clock.Advance(testAccessTTL - time.Second)
	if _, err := e.svc.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Fatalf("one second before exp: %v", err)
	}
	e.clock.Advance(time.Second)
	p, err := e.svc.Authenticate(ctx, tok.AccessToken)
	wantUnauthenticated(t, "at exp, served from the cache", p, err)
	e.svc.issuer = issuer
	if _, err := e.svc.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Fatalf("at exp, within the leeway of a full verification: %v", err)
	}
	e.clock.Advance(clockLeeway)
	p, err = e.svc.Authenticate(ctx, tok.AccessToken)
	wantUnauthenticated(t, "past exp and the leeway", p, err)
}

// TestForgedTokensNeverServedFromCache: variants of a cached token (altered signature, altered claims, the same
// claims signed by another key under the same kid) are verified in full and refused, and a refused token
// leaves nothing in the cache.
func TestForgedTokensNeverServedFromCache(t *testing.T) {
	e := newTestEnv(t, withCache(100))
	tok, p := cachedLogin(t, e)
	parts := strings.Split(tok.AccessToken, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := e.svc.keys.signingKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	header := fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, key.ID)
	claims := fmt.Sprintf(`{"iss":%q,"sub":%q,"aud":[%q],"iat":%d,"nbf":%d,"exp":%d,"jti":%q,"client_id":%q,"sid":%q,"org_id":%q,"role":"admin"}`,
		testIssuer, p.UserID, p.ClientID, now.Unix(), now.Unix(), now.Add(time.Minute).Unix(), uuid.NewString(), p.ClientID, p.SessionID, p.OrganizationID)
	forged := map[string]string{
		"signature altered":      parts[0] + "." + parts[1] + "." + flip(parts[2], 5),
		"claims altered":         parts[0] + "." + flip(parts[1], 7) + "." + parts[2],
		"signed by another key":  signRaw(t, other, header, claims),
		"the token with a space": tok.AccessToken + " ",
	}
	for name, raw := range forged {
		got, err := e.svc.Authenticate(context.Background(), raw)
		wantUnauthenticated(t, name, got, err)
	}
	if n, _, err := e.svc.cachedEntries(); err != nil || n != 1 {
		t.Errorf("cached tokens after the forgeries = %d, %v; want the one genuine token", n, err)
	}
}

// TestTokenCacheBounded floods a small cache with distinct valid tokens: every one is accepted and the cache
// never holds more than its bound.
func TestTokenCacheBounded(t *testing.T) {
	const bound, flood = 64, 2000
	ctx := context.Background()
	e := newTestEnv(t, withCache(bound))
	_, p := cachedLogin(t, e)
	for i := range flood {
		raw, err := e.svc.signAccessToken(ctx, p, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Authenticate(ctx, raw); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
		if i%100 == 99 {
			if n, _, err := e.svc.cachedEntries(); err != nil || n > bound {
				t.Fatalf("after %d tokens the cache holds %d (%v); bound %d", i+1, n, err, bound)
			}
		}
	}
}

// TestCachedTokenOfRetiredKey: a cached token whose signing key is no longer published is refused, as its full
// verification would be.
func TestCachedTokenOfRetiredKey(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, withCache(100))
	tok, _ := cachedLogin(t, e)
	// Rotation: a new key signs, the old key's cached token still works.
	if _, err := e.svc.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if _, err := e.svc.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Fatalf("after a rotation: %v", err)
	}
	// The old key disappears from the database (an operator removed a leaked key); the nodes reload their keys.
	e.store.mu.Lock()
	e.store.keys = e.store.keys[1:]
	e.store.mu.Unlock()
	e.clock.Advance(keyReloadInterval + time.Second)
	p, err := e.svc.Authenticate(ctx, tok.AccessToken)
	wantUnauthenticated(t, "key removed", p, err)
}

// TestSessionCacheTrust: live sessions come from memory only while the revocation feed is current; without it
// every request reads the session, so a revocation the feed never announced is still seen.
func TestSessionCacheTrust(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, withCache(100))
	tok, p := cachedLogin(t, e)
	revokeInStore := func() {
		e.store.mu.Lock()
		s := e.store.sessions[p.SessionID]
		s.RevokedAt = e.clock.Now()
		e.store.sessions[p.SessionID] = s
		e.store.mu.Unlock()
	}
	// Current feed: a revocation that was not announced is not seen (the cache is used)...
	revokeInStore()
	if _, err := e.svc.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Fatalf("cached live session while the feed is current: %v", err)
	}
	// ...and an announced one is, at once.
	e.svc.SessionsRevoked([]string{p.SessionID})
	got, err := e.svc.Authenticate(ctx, tok.AccessToken)
	wantUnauthenticated(t, "announced revocation", got, err)

	// A feed last current more than the lease ago is not believed: the session is read again.
	e2 := newTestEnv(t, withCache(100))
	tok2, p2 := cachedLogin(t, e2)
	e2.svc.cache.trustedUntil.Store(0)
	e2.svc.RevocationsCurrent(time.Now().Add(-revocationLease))
	e2.store.mu.Lock()
	s := e2.store.sessions[p2.SessionID]
	s.RevokedAt = e2.clock.Now()
	e2.store.sessions[p2.SessionID] = s
	e2.store.mu.Unlock()
	got, err = e2.svc.Authenticate(ctx, tok2.AccessToken)
	wantUnauthenticated(t, "stale feed, revoked in the database", got, err)

	// ForgetSessions drops what is known: the next request reads the session.
	e3 := newTestEnv(t, withCache(100))
	tok3, p3 := cachedLogin(t, e3)
	e3.store.mu.Lock()
	s = e3.store.sessions[p3.SessionID]
	s.RevokedAt = e3.clock.Now()
	e3.store.sessions[p3.SessionID] = s
	e3.store.mu.Unlock()
	e3.svc.ForgetSessions()
	got, err = e3.svc.Authenticate(ctx, tok3.AccessToken)
	wantUnauthenticated(t, "after ForgetSessions", got, err)
}

// TestSessionReadRacingRevocation: a session read from the database just before its revocation was applied must
// not be remembered as live afterwards.
func TestSessionReadRacingRevocation(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t, withCache(100))
	e.svc.RevocationsCurrent(time.Now())
	tok := e.login(t)
	sid := sessionID(t, tok.RefreshToken)
	e.store.afterSessionRead = func(id string) {
		// The revocation commits and is announced after this read and before the reader stores what it read.
		e.store.afterSessionRead = nil
		e.store.mu.Lock()
		s := e.store.sessions[id]
		s.RevokedAt = e.clock.Now()
		e.store.sessions[id] = s
		e.store.mu.Unlock()
		e.svc.SessionsRevoked([]string{id})
	}
	// This request started before the revocation: it may pass.
	if _, err := e.svc.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Fatalf("the racing request: %v", err)
	}
	p, err := e.svc.Authenticate(ctx, tok.AccessToken)
	wantUnauthenticated(t, "after the revocation", p, err)
	if _, ok := e.svc.cache.session(sid); !ok {
		t.Error("the revoked session is not remembered as revoked")
	}
}

// TestCacheEntryMemory measures what one cached token and its session cost in memory, which the documented
// figure (CacheEntryOverhead per entry, plus the entry's strings) must cover.
func TestCacheEntryMemory(t *testing.T) {
	const n = 20_000
	e := newTestEnv(t, withCache(n))
	now := e.clock.Now()
	principals := make([]nexus.Principal, n)
	for i := range principals {
		principals[i] = nexus.Principal{UserID: uuid.NewString(), OrganizationID: uuid.NewString(), Role: nexus.RoleAnalyst,
			SessionID: uuid.NewString(), ClientID: testClient, TokenID: uuid.NewString()}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := e.svc.cache
	for i, p := range principals {
		var key tokenKey
		copy(key[:], uuid.New().String())
		key[31] = byte(i)
		c.putToken(key, tokenEntry{p: p, kid: "20300102-abcdefgh", exp: now.Add(time.Hour)}, now)
		c.putSession(p.SessionID, sessionState{userID: p.UserID, organizationID: p.OrganizationID, clientID: p.ClientID,
			role: p.Role, expiresAt: now.Add(time.Hour)}, c.gen.Load())
	}
	c.tokens.CleanUp()
	c.sessions.CleanUp()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(principals)
	tokens, sessions := c.tokens.EstimatedSize(), c.sessions.EstimatedSize()
	if tokens < n*9/10 || sessions < n*9/10 {
		t.Fatalf("cached %d tokens and %d sessions of %d", tokens, sessions, n)
	}
	// The principals' strings were allocated before the first reading: what grew is the caches' own memory.
	perPair := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	t.Logf("one cached token and its session: %.0f bytes, apart from the strings they share with the request", perPair)
	if perPair > 2*CacheEntryOverhead {
		t.Errorf("a token and a session take %.0f bytes; CacheEntryOverhead documents %d each", perPair, CacheEntryOverhead)
	}
}
