package auth

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// countingStore counts the client lookups that reach the store.
type countingStore struct {
	*fakeStore
	clientLookups atomic.Int64
}

func (c *countingStore) ClientByClientID(ctx context.Context, clientID string) (Client, error) {
	c.clientLookups.Add(1)
	return c.fakeStore.ClientByClientID(ctx, clientID)
}

// newClientTTLService returns a service over e's store, with the given client TTL, that counts client lookups.
func newClientTTLService(t *testing.T, e *testEnv, ttl time.Duration) (*Service, *countingStore) {
	t.Helper()
	st := &countingStore{fakeStore: e.store}
	svc, err := NewService(Options{Store: st, Secret: e.secret, Issuer: testIssuer, AccessTTL: testAccessTTL,
		RefreshIdleTTL: testIdleTTL, RefreshAbsoluteTTL: testAbsTTL, RefreshGrace: testGrace, Now: e.clock.Now, ClientTTL: ttl})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	if err := svc.EnsureSigningKey(context.Background()); err != nil {
		t.Fatalf("EnsureSigningKey: %v", err)
	}
	return svc, st
}

// TestClientCache proves that logins and refreshes through one client read it once per TTL, that unknown client
// ids are not cached, and that a client disabled in the store is refused once the TTL has passed.
func TestClientCache(t *testing.T) {
	const ttl = 200 * time.Millisecond
	ctx := context.Background()
	e := newTestEnv(t)
	svc, st := newClientTTLService(t, e, ttl)
	login := LoginInput{Email: testEmail, Password: testPassword, ClientID: testClient}
	tok, err := svc.Login(ctx, login)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if _, err := svc.Refresh(ctx, RefreshInput{RefreshToken: tok.RefreshToken, ClientID: testClient}); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if _, err := svc.Login(ctx, login); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if n := st.clientLookups.Load(); n != 1 {
		t.Errorf("%d client lookups for two logins and a refresh through one client, want 1", n)
	}
	for range 2 {
		if _, err := svc.Login(ctx, LoginInput{Email: testEmail, Password: testPassword, ClientID: "nope"}); !errors.Is(err, nexus.ErrInvalidClient) {
			t.Fatalf("Login through an unknown client = %v, want invalid_client", err)
		}
	}
	if n := st.clientLookups.Load(); n != 3 {
		t.Errorf("%d client lookups after two logins through an unknown client, want 3 (unknown ids are not cached)", n)
	}

	st.mu.Lock()
	c := st.clients[testClient]
	c.Disabled = true
	st.clients[testClient] = c
	st.mu.Unlock()
	time.Sleep(ttl)
	if _, err := svc.Login(ctx, login); !errors.Is(err, nexus.ErrInvalidClient) {
		t.Errorf("Login through a client disabled one TTL ago = %v, want invalid_client", err)
	}

	// A negative TTL reads the client every time.
	svc, st = newClientTTLService(t, e, -1)
	for range 2 {
		if _, err := svc.Login(ctx, LoginInput{Email: testEmail, Password: testPassword, ClientID: otherClient}); err != nil {
			t.Fatalf("Login: %v", err)
		}
	}
	if n := st.clientLookups.Load(); n != 2 {
		t.Errorf("%d client lookups for two logins without a cache, want 2", n)
	}
}
