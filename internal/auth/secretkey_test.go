package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// TestRefreshAcrossSecretKeyRotation: with the previous secret key configured, a refresh token it minted rotates
// into one the current key mints (the session records which), the grace period and reuse detection work as
// before; without it, such a token is an invalid grant, the session untouched; a token of a third key is one too.
func TestRefreshAcrossSecretKeyRotation(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	keyA, keyB := e.secret, randomKey(t)
	service := func(secret, previous []byte) *Service {
		t.Helper()
		o := Options{Store: e.store, Secret: secret, PreviousSecret: previous, Issuer: testIssuer, AccessTTL: testAccessTTL,
			RefreshIdleTTL: testIdleTTL, RefreshAbsoluteTTL: testAbsTTL, RefreshGrace: testGrace, Now: e.clock.Now}
		svc, err := NewService(o)
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	rotated := func(secret, previous []byte) *Service {
		t.Helper()
		svc := service(secret, previous)
		if err := svc.EnsureSigningKey(ctx); err != nil {
			t.Fatalf("EnsureSigningKey: %v", err)
		}
		return svc
	}
	refresh := func(svc *Service, token string) (Tokens, error) {
		return svc.Refresh(ctx, RefreshInput{RefreshToken: token, ClientID: testClient})
	}
	first, second, third := e.login(t), e.login(t), e.login(t)
	sid := sessionID(t, first.RefreshToken)
	if got := e.store.session(t, sid).KeyID; got != nexus.SecretKeyID(keyA) {
		t.Fatalf("a login's session records key %q, want A's", got)
	}

	both := rotated(keyB, keyA)
	if _, err := both.Authenticate(ctx, first.AccessToken); err != nil {
		t.Errorf("an access token signed before the rotation: %v", err)
	}
	if st, err := both.SecretKeyStatus(ctx); err != nil || st.Sessions != 3 || st.SigningKeys != 0 ||
		!st.SessionsEndBy.Equal(e.clock.Now().Add(testIdleTTL)) {
		t.Errorf("SecretKeyStatus = %+v, %v; want 3 sessions, ending by %v", st, err, e.clock.Now().Add(testIdleTTL))
	}
	next, err := refresh(both, first.RefreshToken)
	if err != nil {
		t.Fatalf("a token minted under A, A previous: %v", err)
	}
	if got := e.store.session(t, sid).KeyID; got != nexus.SecretKeyID(keyB) {
		t.Errorf("the rotated session records key %q, want B's", got)
	}
	e.clock.Advance(testGrace / 2)
	if again, err := refresh(both, first.RefreshToken); err != nil || again.RefreshToken != next.RefreshToken {
		t.Errorf("the token minted under A within the grace period: %v, same successor %v", err, again.RefreshToken == next.RefreshToken)
	}
	e.clock.Advance(testGrace)
	if _, err := refresh(both, first.RefreshToken); !errors.Is(err, nexus.ErrRefreshTokenReused) {
		t.Errorf("the token minted under A after the grace period: %v, want reuse", err)
	}
	if s := e.store.session(t, sid); s.RevokedReason != "refresh_token_reused" {
		t.Errorf("session after the reuse: revoked for %q", s.RevokedReason)
	}

	// Without A: its tokens are invalid grants, and nothing is revoked.
	onlyB := rotated(keyB, nil)
	sid2 := sessionID(t, second.RefreshToken)
	if _, err := refresh(onlyB, second.RefreshToken); !errors.Is(err, nexus.ErrInvalidGrant) {
		t.Errorf("a token minted under A, A gone: %v, want invalid grant", err)
	}
	if s := e.store.session(t, sid2); s.Revoked() || s.Generation != 0 {
		t.Errorf("session of a token minted under A, A gone: %+v", s)
	}
	// Under another pair of keys (C current, B previous), A's tokens are as foreign.
	if _, err := refresh(service(randomKey(t), keyB), third.RefreshToken); !errors.Is(err, nexus.ErrInvalidGrant) {
		t.Errorf("a token minted under A, with C and B: %v, want invalid grant", err)
	}
	if _, err := refresh(both, second.RefreshToken); err != nil {
		t.Errorf("a token minted under A, A back as the previous key: %v", err)
	}
	if st, err := both.SecretKeyStatus(ctx); err != nil || st.Sessions != 1 || st.UnreadableSigningKeys != 0 || st.Clean() {
		t.Errorf("SecretKeyStatus = %+v, %v; want the third session", st, err)
	}
}

// TestSigningKeysSealedAgain: a node with the previous key seals the signing keys under the current key at its
// start, so that the current key alone opens them; without the previous key the node does not start.
func TestSigningKeysSealedAgain(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	keyA, keyB := e.secret, randomKey(t)
	if _, err := e.svc.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	start := func(secret, previous []byte) error {
		svc, err := NewService(Options{Store: e.store, Secret: secret, PreviousSecret: previous, Issuer: testIssuer,
			AccessTTL: testAccessTTL, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return svc.EnsureSigningKey(ctx)
	}
	if err := start(keyB, nil); err == nil || !strings.Contains(err.Error(), "wrong NEXUS_SECRET_KEY") {
		t.Fatalf("a start with another key alone: %v", err)
	}
	if err := start(keyB, keyA); err != nil {
		t.Fatalf("a start with the previous key: %v", err)
	}
	if err := start(keyB, nil); err != nil {
		t.Fatalf("a start with the new key alone, once sealed again: %v", err)
	}
	if err := start(keyA, nil); err == nil {
		t.Fatal("a start with the old key alone, once sealed again: no error")
	}
	if _, err := NewService(Options{Store: e.store, Secret: keyA, PreviousSecret: keyA}); err == nil {
		t.Error("the previous key equal to the current one: accepted")
	}
}
