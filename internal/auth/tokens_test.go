package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// verifier is a service with a signing key, and a principal to issue tokens for.
type verifier struct {
	svc *Service
	key *ecdsa.PrivateKey // the private half of the signing key
	kid string
	p   nexus.Principal
	now time.Time
}

func newVerifier(tb testing.TB) *verifier {
	tb.Helper()
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	svc, err := NewService(Options{Store: newFakeStore(), Secret: make([]byte, 32), Issuer: testIssuer,
		AccessTTL: testAccessTTL, Now: clock.Now})
	if err != nil {
		tb.Fatal(err)
	}
	if err := svc.EnsureSigningKey(ctx); err != nil {
		tb.Fatal(err)
	}
	key, err := svc.keys.signingKey(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var priv ecdsa.PrivateKey
	if err := key.private.Raw(&priv); err != nil {
		tb.Fatal(err)
	}
	p := nexus.Principal{UserID: uuid.NewString(), OrganizationID: uuid.NewString(), Role: nexus.RoleAnalyst,
		SessionID: uuid.NewString(), ClientID: testClient}
	return &verifier{svc: svc, key: &priv, kid: key.ID, p: p, now: clock.Now()}
}

// signRaw returns header and payload, taken as they are, signed with ES256 by key: what jwx would not write
// (duplicate members, a header that is not an object), signed as the server would sign.
func signRaw(tb testing.TB, key *ecdsa.PrivateKey, header, payload string) string {
	tb.Helper()
	input := b64(header) + "." + b64(payload)
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		tb.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestVerifyAccessTokenCanonical signs, with the service's own key, tokens that only the canonical-form check
// refuses, next to a control that differs from them only in that one thing.
func TestVerifyAccessTokenCanonical(t *testing.T) {
	v := newVerifier(t)
	header := fmt.Sprintf(`{"alg":"ES256","kid":%q,"typ":"at+jwt"}`, v.kid)
	claims := func(exp string, extra ...string) string {
		c := fmt.Sprintf(`{"iss":%q,"sub":%q,"aud":[%q],"iat":%d,"nbf":%d,"exp":%s,"jti":%q,"client_id":%q,"sid":%q,"org_id":%q,"role":%q`,
			testIssuer, v.p.UserID, v.p.ClientID, v.now.Unix(), v.now.Unix(), exp, uuid.NewString(), v.p.ClientID,
			v.p.SessionID, v.p.OrganizationID, v.p.Role)
		for _, e := range extra {
			c += "," + e
		}
		return c + "}"
	}
	exp := fmt.Sprint(v.now.Add(testAccessTTL).Unix())
	issued, err := v.svc.signAccessToken(context.Background(), v.p, v.now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(issued, ".")
	// A signature with '-' or '_' in it, which the standard alphabet writes differently; about one signature in
	// 15 has neither.
	withDash := signRaw(t, v.key, header, claims(exp))
	for !strings.ContainsAny(withDash[strings.LastIndexByte(withDash, '.'):], "-_") {
		withDash = signRaw(t, v.key, header, claims(exp))
	}
	tests := []struct {
		name  string
		raw   string
		valid bool
	}{
		{name: "as issued", raw: issued, valid: true},
		{name: "control: signed here", raw: signRaw(t, v.key, header, claims(exp)), valid: true},
		{name: "control: an unknown claim", raw: signRaw(t, v.key, header, claims(exp, `"ext":"x"`)), valid: true},
		{name: "a role and a scope", raw: signRaw(t, v.key, header, claims(exp, `"scope":"users:read"`))},
		{name: "padded signature", raw: replaceSegment(issued, 2, padded(t, parts[2]))},
		{name: "control: a signature with '-' or '_'", raw: withDash, valid: true},
		{name: "signature in the standard alphabet", raw: replaceSegment(withDash, 2, stdAlphabet(t, strings.Split(withDash, ".")[2]))},
		{name: "signature with trailing bits", raw: replaceSegment(issued, 2, trailingBits(t, parts[2]))},
		{name: "exp a string", raw: signRaw(t, v.key, header, claims(`"`+exp+`"`))},
		{name: "crit", raw: signRaw(t, v.key, withMember(header, `"crit":["exp"]`), claims(exp))},
		{name: "an extra header member", raw: signRaw(t, v.key, withMember(header, `"cty":"JWT"`), claims(exp))},
		{name: "duplicate header member", raw: signRaw(t, v.key, withMember(header, `"typ":"at+jwt"`), claims(exp))},
		{name: "header not an object", raw: signRaw(t, v.key, fmt.Sprintf(`["ES256","at+jwt",%q]`, v.kid), claims(exp))},
		{name: "duplicate role", raw: signRaw(t, v.key, header, claims(exp, `"role":"admin"`))},
		{name: "sub a number", raw: signRaw(t, v.key, header, strings.Replace(claims(exp), `"sub":"`+v.p.UserID+`"`, `"sub":7`, 1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.svc.verifyAccessToken(context.Background(), tt.raw)
			switch {
			case tt.valid && err != nil:
				t.Errorf("verifyAccessToken: %v", err)
			case tt.valid && got.UserID != v.p.UserID:
				t.Errorf("principal %+v, want %+v", got, v.p)
			case !tt.valid && !errors.Is(err, nexus.ErrUnauthenticated):
				t.Errorf("verifyAccessToken = %+v, %v; want unauthenticated", got, err)
			}
		})
	}
}

// BenchmarkVerifyAccessToken measures what every authenticated request pays before its session lookup: the
// parsing, the signature verification and the claim checks of one access token.
func BenchmarkVerifyAccessToken(b *testing.B) {
	ctx := context.Background()
	v := newVerifier(b)
	raw, err := v.svc.signAccessToken(ctx, v.p, v.now)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.svc.verifyAccessToken(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}
