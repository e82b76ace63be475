package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// refreshStep is one action of a refresh scenario. Tokens are numbered in the order they were returned: 0 is
// the login's, then one per successful refresh.
type refreshStep struct {
	advance time.Duration                      // the clock moves on by this much first
	present int                                // the token to present
	token   func(e *testEnv, s Session) string // if set, presents this token instead
	client  string                             // defaults to testClient
	device  string
	logout  bool // log out with the newest access token instead of refreshing

	wantErr error // nil: success
	sameAs  int   // on success, the earlier token that must come back; 0: a token never seen before
}

func TestRefresh(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		name   string
		before func(e *testEnv)
		steps  []refreshStep

		wantGeneration int64
		wantRevoked    string // the revocation reason, "" if live
		wantDevice     string
		wantResult     string // of the last audit event
	}{
		{name: "rotate", steps: []refreshStep{{}},
			wantGeneration: 1, wantResult: "success"},
		{name: "chain of rotations", steps: []refreshStep{{present: 0}, {present: 1}, {present: 2}},
			wantGeneration: 3, wantResult: "success"},
		{name: "previous token within grace returns the same successor",
			steps:          []refreshStep{{}, {advance: 5 * time.Second, sameAs: 1}},
			wantGeneration: 1, wantResult: "success_grace"},
		{name: "grace includes its last instant",
			steps:          []refreshStep{{}, {advance: testGrace, sameAs: 1}},
			wantGeneration: 1, wantResult: "success_grace"},
		{name: "successor rotates after a grace replay",
			steps:          []refreshStep{{}, {advance: 5 * time.Second, sameAs: 1}, {present: 1}},
			wantGeneration: 2, wantResult: "success"},
		{name: "previous token beyond grace is reuse",
			steps:          []refreshStep{{}, {advance: testGrace + time.Microsecond, wantErr: nexus.ErrRefreshTokenReused}},
			wantGeneration: 1, wantRevoked: "refresh_token_reused", wantResult: "refresh_token_reused"},
		{name: "reuse kills the successor",
			steps: []refreshStep{{}, {advance: time.Minute, wantErr: nexus.ErrRefreshTokenReused},
				{present: 1, wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 1, wantRevoked: "refresh_token_reused", wantResult: "invalid_grant"},
		{name: "token two generations old is reuse even within grace",
			steps:          []refreshStep{{}, {present: 1}, {present: 0, wantErr: nexus.ErrRefreshTokenReused}},
			wantGeneration: 2, wantRevoked: "refresh_token_reused", wantResult: "refresh_token_reused"},
		{name: "wrong client",
			steps:          []refreshStep{{client: otherClient, wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 0, wantResult: "client_mismatch"},
		{name: "right client after a wrong one",
			steps:          []refreshStep{{client: otherClient, wantErr: nexus.ErrInvalidGrant}, {}},
			wantGeneration: 1, wantResult: "success"},
		{name: "unknown client",
			steps:          []refreshStep{{client: "nope", wantErr: nexus.ErrInvalidClient}},
			wantGeneration: 0, wantResult: "invalid_client"},
		{name: "disabled client",
			steps:          []refreshStep{{client: disabledClient, wantErr: nexus.ErrInvalidClient}},
			wantGeneration: 0, wantResult: "invalid_client"},
		{name: "first refresh binds the device",
			steps:          []refreshStep{{device: "phone"}},
			wantGeneration: 1, wantDevice: "phone", wantResult: "success"},
		{name: "other device after binding",
			steps:          []refreshStep{{device: "phone"}, {present: 1, device: "laptop", wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 1, wantDevice: "phone", wantResult: "device_mismatch"},
		{name: "no device after binding",
			steps:          []refreshStep{{device: "phone"}, {present: 1, wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 1, wantDevice: "phone", wantResult: "device_mismatch"},
		{name: "bound device goes on after a mismatch",
			steps: []refreshStep{{device: "phone"}, {present: 1, device: "laptop", wantErr: nexus.ErrInvalidGrant},
				{present: 1, device: "phone"}},
			wantGeneration: 2, wantDevice: "phone", wantResult: "success"},
		{name: "device bound on a later refresh",
			steps:          []refreshStep{{}, {present: 1, device: "phone"}, {present: 2, device: "laptop", wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 2, wantDevice: "phone", wantResult: "device_mismatch"},
		{name: "just before idle expiry",
			steps:          []refreshStep{{advance: testIdleTTL - time.Microsecond}},
			wantGeneration: 1, wantResult: "success"},
		{name: "idle expiry",
			steps:          []refreshStep{{advance: testIdleTTL, wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 0, wantResult: "invalid_grant"},
		{name: "idle expiry counts from the last refresh",
			steps:          []refreshStep{{advance: 20 * day}, {advance: testIdleTTL, present: 1, wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 1, wantResult: "invalid_grant"},
		{name: "just before absolute expiry",
			steps: []refreshStep{{advance: 25 * day}, {advance: 25 * day, present: 1}, {advance: 25 * day, present: 2},
				{advance: 15*day - time.Microsecond, present: 3}},
			wantGeneration: 4, wantResult: "success"},
		{name: "absolute expiry",
			steps: []refreshStep{{advance: 25 * day}, {advance: 25 * day, present: 1}, {advance: 25 * day, present: 2},
				{advance: 15 * day, present: 3, wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 3, wantResult: "invalid_grant"},
		{name: "revoked by logout",
			steps:          []refreshStep{{logout: true}, {wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 0, wantRevoked: "logout", wantResult: "invalid_grant"},
		{name: "previous token of a revoked session is no reuse",
			steps:          []refreshStep{{}, {logout: true}, {advance: time.Hour, wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 1, wantRevoked: "logout", wantResult: "invalid_grant"},
		{name: "deactivated user",
			before:         func(e *testEnv) { e.store.setUserStatus(e.user.ID, nexus.UserInactive) },
			steps:          []refreshStep{{wantErr: nexus.ErrInvalidGrant}},
			wantGeneration: 0, wantRevoked: "account_inactive", wantResult: "account_inactive"}, // revoked, not rotated
		{name: "minted with another secret",
			steps: []refreshStep{{wantErr: nexus.ErrInvalidGrant, token: func(_ *testEnv, s Session) string {
				other, _ := newSecrets([]byte("another secret of at least 32 bytes"), nil)
				return other.mintRefreshToken(s, s.Generation)
			}}},
			wantGeneration: 0, wantResult: "invalid_grant"},
		{name: "future generation",
			steps: []refreshStep{{wantErr: nexus.ErrInvalidGrant, token: func(e *testEnv, s Session) string {
				return e.svc.sec.mintRefreshToken(s, s.Generation+1)
			}}},
			wantGeneration: 0, wantResult: "invalid_grant"},
		{name: "unknown session",
			steps: []refreshStep{{wantErr: nexus.ErrInvalidGrant, token: func(e *testEnv, s Session) string {
				s.ID = uuid.NewString()
				return e.svc.sec.mintRefreshToken(s, 0)
			}}},
			wantGeneration: 0, wantResult: "invalid_grant"},
		{name: "garbage",
			steps:          []refreshStep{{wantErr: nexus.ErrInvalidGrant, token: func(*testEnv, Session) string { return "nxr_garbage" }}},
			wantGeneration: 0, wantResult: "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			e := newTestEnv(t)
			tokens := []Tokens{e.login(t)}
			sid := sessionID(t, tokens[0].RefreshToken)
			if tt.before != nil {
				tt.before(e)
			}
			for i, st := range tt.steps {
				e.clock.Advance(st.advance)
				if st.logout {
					p, err := e.svc.Authenticate(ctx, tokens[len(tokens)-1].AccessToken)
					if err != nil {
						t.Fatalf("step %d: Authenticate: %v", i, err)
					}
					if err := e.svc.Logout(ctx, p, Meta{}); err != nil {
						t.Fatalf("step %d: Logout: %v", i, err)
					}
					continue
				}
				in := RefreshInput{RefreshToken: tokens[st.present].RefreshToken, ClientID: st.client,
					DeviceID: st.device, Meta: Meta{SocketIP: "192.0.2.1", UserAgent: "test"}}
				if in.ClientID == "" {
					in.ClientID = testClient
				}
				if st.token != nil {
					in.RefreshToken = st.token(e, e.store.session(t, sid))
				}
				got, err := e.svc.Refresh(ctx, in)
				if st.wantErr != nil {
					if !errors.Is(err, st.wantErr) {
						t.Fatalf("step %d: Refresh = %v, want %v", i, err, st.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: Refresh: %v", i, err)
				}
				if st.sameAs > 0 {
					if got.RefreshToken != tokens[st.sameAs].RefreshToken {
						t.Errorf("step %d: got a new refresh token, want token %d again", i, st.sameAs)
					}
				} else {
					for j, prev := range tokens {
						if got.RefreshToken == prev.RefreshToken {
							t.Errorf("step %d: refresh token equals token %d", i, j)
						}
					}
				}
				if p, err := e.svc.Authenticate(ctx, got.AccessToken); err != nil || p.SessionID != sid {
					t.Errorf("step %d: Authenticate(new access token) = %+v, %v; want session %s", i, p, err, sid)
				}
				tokens = append(tokens, got)
			}

			s := e.store.session(t, sid)
			if s.Generation != tt.wantGeneration {
				t.Errorf("Generation = %d, want %d", s.Generation, tt.wantGeneration)
			}
			if s.RevokedReason != tt.wantRevoked || s.Revoked() != (tt.wantRevoked != "") {
				t.Errorf("revoked at %v for %q, want reason %q", s.RevokedAt, s.RevokedReason, tt.wantRevoked)
			}
			if s.DeviceID != tt.wantDevice {
				t.Errorf("DeviceID = %q, want %q", s.DeviceID, tt.wantDevice)
			}
			if ev := e.store.lastEvent(t); ev.Action != "refresh" || ev.Result != tt.wantResult {
				t.Errorf("last audit event %s/%s, want refresh/%s", ev.Action, ev.Result, tt.wantResult)
			}
		})
	}
}

func TestRefreshExpiresIn(t *testing.T) {
	const day = 24 * time.Hour
	e := newTestEnv(t)
	ctx := context.Background()
	tok := e.login(t)
	if tok.ExpiresIn != testAccessTTL || tok.RefreshExpiresIn != testIdleTTL {
		t.Errorf("login: ExpiresIn %v, RefreshExpiresIn %v; want %v, %v", tok.ExpiresIn, tok.RefreshExpiresIn, testAccessTTL, testIdleTTL)
	}
	// Near the absolute expiry the refresh token lives only until then.
	for _, advance := range []time.Duration{29 * day, 29 * day, 29 * day} {
		e.clock.Advance(advance)
		var err error
		if tok, err = e.svc.Refresh(ctx, RefreshInput{RefreshToken: tok.RefreshToken, ClientID: testClient}); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
	}
	if want := testAbsTTL - 87*day; tok.RefreshExpiresIn != want {
		t.Errorf("after 87 days, RefreshExpiresIn = %v, want %v", tok.RefreshExpiresIn, want)
	}
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name     string
		before   func(e *testEnv)
		in       LoginInput
		wantErr  error
		wantKind nexus.Kind // checked when wantErr is nil and the login must fail
		result   string     // of the audit event; "" if none is recorded
	}{
		{name: "success", in: LoginInput{Email: testEmail, Password: testPassword, ClientID: testClient}, result: "success"},
		{name: "email in another case", in: LoginInput{Email: " ada@EXAMPLE.com ", Password: testPassword, ClientID: testClient}, result: "success"},
		{name: "wrong password", in: LoginInput{Email: testEmail, Password: testPassword + "!", ClientID: testClient},
			wantErr: nexus.ErrInvalidCredentials, result: "invalid_credentials"},
		{name: "unknown email", in: LoginInput{Email: "bob@example.com", Password: testPassword, ClientID: testClient},
			wantErr: nexus.ErrInvalidCredentials, result: "invalid_credentials"},
		{name: "unknown client", in: LoginInput{Email: testEmail, Password: testPassword, ClientID: "nope"},
			wantErr: nexus.ErrInvalidClient, result: "invalid_client"},
		{name: "disabled client", in: LoginInput{Email: testEmail, Password: testPassword, ClientID: disabledClient},
			wantErr: nexus.ErrInvalidClient, result: "invalid_client"},
		{name: "client of another organization", in: LoginInput{Email: testEmail, Password: testPassword, ClientID: orgClient},
			wantErr: nexus.ErrInvalidClient, result: "invalid_client"},
		{name: "inactive user", before: func(e *testEnv) { e.store.setUserStatus(e.user.ID, nexus.UserInactive) },
			in:      LoginInput{Email: testEmail, Password: testPassword, ClientID: testClient},
			wantErr: nexus.ErrAccountInactive, result: "account_inactive"},
		{name: "password over 1024 bytes", in: LoginInput{Email: testEmail, Password: strings.Repeat("a", MaxPasswordBytes+1), ClientID: testClient},
			wantKind: nexus.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tt.before != nil {
				tt.before(e)
			}
			tok, err := e.svc.Login(context.Background(), tt.in)
			switch {
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Login = %v, want %v", err, tt.wantErr)
			case tt.wantErr == nil && tt.wantKind != 0:
				if nexus.KindOf(err) != tt.wantKind {
					t.Fatalf("Login = %v, want kind %v", err, tt.wantKind)
				}
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Login: %v", err)
			case err == nil:
				if tok.User.ID != e.user.ID || tok.AccessToken == "" || tok.RefreshToken == "" {
					t.Errorf("Login = %+v", tok)
				}
				s := e.store.session(t, sessionID(t, tok.RefreshToken))
				if s.UserID != e.user.ID || s.ClientID != testClient || s.Generation != 0 || len(s.Salt) != 32 {
					t.Errorf("session %+v", s)
				}
			}
			e.store.mu.Lock()
			events := append([]AuditEvent(nil), e.store.events...)
			e.store.mu.Unlock()
			if tt.result == "" {
				if len(events) != 0 {
					t.Errorf("audit events %+v, want none", events)
				}
				return
			}
			if len(events) != 1 || events[0].Action != "login" || events[0].Result != tt.result {
				t.Fatalf("audit events %+v, want one login/%s", events, tt.result)
			}
			if ev := events[0]; tt.name == "unknown email" && (ev.EmailHash == "" || ev.UserID != "") {
				t.Errorf("unknown email: event %+v, want an email hash and no user", ev)
			}
		})
	}
}

func TestAuthenticateExpiry(t *testing.T) {
	tests := []struct {
		advance time.Duration
		valid   bool
	}{
		{0, true},
		{testAccessTTL, true},
		{testAccessTTL + 29*time.Second, true},
		{testAccessTTL + 31*time.Second, false},
		{time.Hour, false},
		{-29 * time.Second, true},
		{-31 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.advance.String(), func(t *testing.T) {
			e := newTestEnv(t)
			tok := e.login(t)
			e.clock.Advance(tt.advance)
			p, err := e.svc.Authenticate(context.Background(), tok.AccessToken)
			if !tt.valid {
				if !errors.Is(err, nexus.ErrUnauthenticated) {
					t.Errorf("Authenticate = %+v, %v; want unauthenticated", p, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			want := nexus.Principal{UserID: e.user.ID, OrganizationID: e.user.OrganizationID, Role: e.user.Role,
				SessionID: sessionID(t, tok.RefreshToken), ClientID: testClient, TokenID: p.TokenID}
			if diff := cmp.Diff(want, p); diff != "" || p.TokenID == "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuthenticateSession(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	tok := e.login(t)
	p, err := e.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if err := e.svc.Logout(ctx, p, Meta{}); err != nil {
		t.Fatalf("Logout: %v", err)
	}
	if _, err := e.svc.Authenticate(ctx, tok.AccessToken); !errors.Is(err, nexus.ErrUnauthenticated) {
		t.Errorf("Authenticate after Logout = %v, want unauthenticated", err)
	}
	if _, err := e.svc.Authenticate(ctx, e.login(t).AccessToken); err != nil {
		t.Errorf("Authenticate with a new login: %v", err)
	}

	other := newTestEnv(t)
	if _, err := e.svc.Authenticate(ctx, other.login(t).AccessToken); !errors.Is(err, nexus.ErrUnauthenticated) {
		t.Errorf("Authenticate with another issuer's token = %v, want unauthenticated", err)
	}
}

// TestAuthenticateForged signs tokens with the service's own key but with one thing wrong each.
func TestAuthenticateForged(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	tok := e.login(t)
	p, err := e.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	key, err := e.svc.keys.signingKey(ctx)
	if err != nil {
		t.Fatalf("signingKey: %v", err)
	}
	var signer ecdsa.PrivateKey
	if err := key.private.Raw(&signer); err != nil {
		t.Fatalf("raw key: %v", err)
	}
	stranger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()

	sign := func(priv *ecdsa.PrivateKey, headers, claims map[string]any) string {
		t.Helper()
		h := map[string]any{"typ": "at+jwt", "kid": key.ID}
		c := map[string]any{"iss": testIssuer, "sub": p.UserID, "aud": []string{p.ClientID},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(testAccessTTL).Unix(), "jti": uuid.NewString(),
			"client_id": p.ClientID, "sid": p.SessionID, "org_id": p.OrganizationID, "role": string(p.Role)}
		for _, m := range []struct{ dst, src map[string]any }{{h, headers}, {c, claims}} {
			for k, v := range m.src {
				if v == nil {
					delete(m.dst, k)
				} else {
					m.dst[k] = v
				}
			}
		}
		hdr := jws.NewHeaders()
		for k, v := range h {
			if err := hdr.Set(k, v); err != nil {
				t.Fatalf("header %s: %v", k, err)
			}
		}
		payload, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := jws.Sign(payload, jws.WithKey(jwa.ES256, priv, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		return string(signed)
	}

	tests := []struct {
		name            string
		key             *ecdsa.PrivateKey
		headers, claims map[string]any
		valid           bool
	}{
		{name: "as issued", valid: true},
		{name: "typ JWT", headers: map[string]any{"typ": "JWT"}},
		{name: "no typ", headers: map[string]any{"typ": nil}},
		{name: "no kid", headers: map[string]any{"kid": nil}},
		{name: "unknown kid", headers: map[string]any{"kid": "unknown"}},
		{name: "another key under the kid", key: stranger},
		{name: "other issuer", claims: map[string]any{"iss": "https://evil.test"}},
		{name: "audience is another client", claims: map[string]any{"aud": []string{otherClient}}},
		{name: "two audiences", claims: map[string]any{"aud": []string{p.ClientID, otherClient}}},
		{name: "client of another session", claims: map[string]any{"client_id": otherClient, "aud": []string{otherClient}}},
		{name: "unknown session", claims: map[string]any{"sid": uuid.NewString()}},
		{name: "other user", claims: map[string]any{"sub": uuid.NewString()}},
		{name: "invalid role", claims: map[string]any{"role": "root"}},
		{name: "no sid", claims: map[string]any{"sid": nil}},
		{name: "no org_id", claims: map[string]any{"org_id": nil}},
		{name: "no jti", claims: map[string]any{"jti": nil}},
		{name: "no exp", claims: map[string]any{"exp": nil}},
		{name: "no nbf", claims: map[string]any{"nbf": nil}},
		{name: "no iat", claims: map[string]any{"iat": nil}},
		{name: "expired", claims: map[string]any{"exp": now.Add(-time.Minute).Unix()}},
		{name: "not yet valid", claims: map[string]any{"nbf": now.Add(time.Minute).Unix()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			priv := &signer
			if tt.key != nil {
				priv = tt.key
			}
			got, err := e.svc.Authenticate(ctx, sign(priv, tt.headers, tt.claims))
			switch {
			case tt.valid && err != nil:
				t.Errorf("Authenticate: %v", err)
			case !tt.valid && !errors.Is(err, nexus.ErrUnauthenticated):
				t.Errorf("Authenticate = %+v, %v; want unauthenticated", got, err)
			}
		})
	}
}

func TestAuthenticateMalformed(t *testing.T) {
	e := newTestEnv(t)
	good := e.login(t).AccessToken
	for _, raw := range []string{"", "a.b", "a.b.c", good + ".", good[:len(good)-2], "Bearer " + good, strings.Repeat("a", 5000)} {
		if _, err := e.svc.Authenticate(context.Background(), raw); !errors.Is(err, nexus.ErrUnauthenticated) {
			t.Errorf("Authenticate(%.40q) = %v, want unauthenticated", raw, err)
		}
	}
}

func TestEnsureSigningKeyOnce(t *testing.T) {
	e := newTestEnv(t)
	if err := e.svc.EnsureSigningKey(context.Background()); err != nil {
		t.Fatalf("EnsureSigningKey: %v", err)
	}
	keys, _ := e.store.SigningKeys(context.Background())
	if len(keys) != 1 {
		t.Fatalf("%d signing keys after two EnsureSigningKey calls, want 1", len(keys))
	}
	if strings.Contains(string(keys[0].Sealed), "PRIVATE") || len(keys[0].Sealed) == 0 {
		t.Error("the private key is not sealed")
	}
	if _, err := e.svc.keys.open(keys[0]); err != nil {
		t.Errorf("the stored key does not open: %v", err)
	}
	other, err := newSecrets(make([]byte, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	wrong := keyRing{sec: other}
	if _, err := wrong.open(keys[0]); err == nil {
		t.Error("the stored key opens with another secret")
	}
}

// TestLoginWaitsForAPasswordSlot: with every password-check slot busy, a login waits until its deadline and is
// then answered unavailable, records nothing, and succeeds once a slot is free.
func TestLoginWaitsForAPasswordSlot(t *testing.T) {
	e := newTestEnv(t)
	for range cap(e.svc.hashSlots) {
		e.svc.hashSlots <- struct{}{}
	}
	before := len(e.store.events)
	for _, email := range []string{testEmail, "nobody@example.com"} {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := e.svc.Login(ctx, LoginInput{Email: email, Password: testPassword, ClientID: testClient})
		cancel()
		if nexus.KindOf(err) != nexus.KindUnavailable {
			t.Fatalf("%s with every slot busy: %v, want unavailable", email, err)
		}
	}
	if len(e.store.events) != before {
		t.Fatalf("a login that never checked the password recorded %d audit events", len(e.store.events)-before)
	}
	<-e.svc.hashSlots
	if _, err := e.svc.Login(context.Background(), LoginInput{Email: testEmail, Password: testPassword, ClientID: testClient}); err != nil {
		t.Fatalf("with a slot free: %v", err)
	}
}

// TestAuthenticateComparesTheSessionRole: a token's role claim must be the role its session records; a session
// started by a server older than session roles (no role recorded, during a rolling upgrade) takes the token's, and
// its next refresh records the user's role.
func TestAuthenticateComparesTheSessionRole(t *testing.T) {
	ctx := context.Background()
	e := newTestEnv(t)
	tok := e.login(t)
	sid := sessionID(t, tok.RefreshToken)
	setRole := func(r nexus.Role) {
		e.store.mu.Lock()
		s := e.store.sessions[sid]
		s.Role = r
		e.store.sessions[sid] = s
		e.store.mu.Unlock()
	}
	if s := e.store.session(t, sid); s.Role != nexus.RoleAnalyst {
		t.Fatalf("login recorded role %q, want %q", s.Role, nexus.RoleAnalyst)
	}
	if _, err := e.svc.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	setRole(nexus.RoleAdmin)
	if _, err := e.svc.Authenticate(ctx, tok.AccessToken); !errors.Is(err, nexus.ErrUnauthenticated) {
		t.Errorf("Authenticate with a role other than the session's = %v, want unauthenticated", err)
	}
	setRole("")
	if p, err := e.svc.Authenticate(ctx, tok.AccessToken); err != nil || p.Role != nexus.RoleAnalyst {
		t.Errorf("Authenticate on a session without a role = %+v, %v; want the token's role", p, err)
	}
	if _, err := e.svc.Refresh(ctx, RefreshInput{RefreshToken: tok.RefreshToken, ClientID: testClient}); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if s := e.store.session(t, sid); s.Role != nexus.RoleAnalyst {
		t.Errorf("after a refresh the session records role %q, want %q", s.Role, nexus.RoleAnalyst)
	}
}
