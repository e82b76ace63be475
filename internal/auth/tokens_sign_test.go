package auth

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// TestSignAccessTokenAsJWX proves that signAccessToken writes the header and the claims byte for byte as jwx
// writes the same token (which is how tokens were signed before, and what every verifier has seen), that the
// signature verifies with jwx against the published key, and that the token verifies here.
func TestSignAccessTokenAsJWX(t *testing.T) {
	ctx := context.Background()
	v := newVerifier(t)
	for _, p := range []nexus.Principal{
		v.p,
		{UserID: uuid.NewString(), OrganizationID: uuid.NewString(), Role: nexus.RoleAdmin, SessionID: uuid.NewString(),
			ClientID: `odd "client" <&> é`},
	} {
		tok, err := v.svc.signAccessToken(ctx, p, v.now)
		if err != nil {
			t.Fatalf("signAccessToken: %v", err)
		}
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("token of %d segments", len(parts))
		}
		claims, err := jwt.ParseInsecure([]byte(tok))
		if err != nil {
			t.Fatalf("jwt.ParseInsecure: %v", err)
		}
		key, err := v.svc.keys.signingKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// What jwx wrote with the same claims, jti included.
		want, err := jwt.NewBuilder().Issuer(testIssuer).Subject(p.UserID).Audience([]string{p.ClientID}).
			IssuedAt(v.now).NotBefore(v.now).Expiration(v.now.Add(testAccessTTL)).JwtID(claims.JwtID()).
			Claim("client_id", p.ClientID).Claim("sid", p.SessionID).Claim("org_id", p.OrganizationID).
			Claim("role", string(p.Role)).Build()
		if err != nil {
			t.Fatal(err)
		}
		hdr := jws.NewHeaders()
		if err := errors.Join(hdr.Set(jws.TypeKey, accessTokenType), hdr.Set(jws.KeyIDKey, key.ID)); err != nil {
			t.Fatal(err)
		}
		signed, err := jwt.Sign(want, jwt.WithKey(jwa.ES256, key.private, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			t.Fatal(err)
		}
		wantParts := strings.Split(string(signed), ".")
		if parts[0] != wantParts[0] {
			t.Errorf("header %s, jwx writes %s", parts[0], wantParts[0])
		}
		if parts[1] != wantParts[1] {
			t.Errorf("claims %s, jwx writes %s", parts[1], wantParts[1])
		}
		if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.ES256, key.public)); err != nil {
			t.Errorf("jws.Verify: %v", err)
		}
		got, err := v.svc.verifyAccessToken(ctx, tok)
		if err != nil {
			t.Fatalf("verifyAccessToken: %v", err)
		}
		if got.UserID != p.UserID || got.ClientID != p.ClientID || got.SessionID != p.SessionID ||
			got.OrganizationID != p.OrganizationID || got.Role != p.Role || got.TokenID != claims.JwtID() {
			t.Errorf("verifyAccessToken = %+v, want %+v", got, p)
		}
	}
}
