package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

const (
	accessTokenType = "at+jwt"
	maxTokenBytes   = 4096
	clockLeeway     = 30 * time.Second
)

// signAccessToken issues an access token for the principal p, valid from now for ttl.
func (s *Service) signAccessToken(ctx context.Context, p nexus.Principal, now time.Time) (string, error) {
	key, err := s.keys.signingKey(ctx)
	if err != nil {
		return "", err
	}
	tok, err := jwt.NewBuilder().
		Issuer(s.issuer).
		Subject(p.UserID).
		Audience([]string{p.ClientID}).
		IssuedAt(now).
		NotBefore(now).
		Expiration(now.Add(s.accessTTL)).
		JwtID(uuid.NewString()).
		Claim("client_id", p.ClientID).
		Claim("sid", p.SessionID).
		Claim("org_id", p.OrganizationID).
		Claim("role", string(p.Role)).
		Build()
	if err != nil {
		return "", nexus.Internal(err)
	}
	hdr := jws.NewHeaders()
	if err := errors.Join(hdr.Set(jws.TypeKey, accessTokenType), hdr.Set(jws.KeyIDKey, key.ID)); err != nil {
		return "", nexus.Internal(err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, key.private, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", nexus.Internal(fmt.Errorf("sign access token: %w", err))
	}
	return string(signed), nil
}

// verifyAccessToken checks an access token's form, header, signature and claims, and returns the principal it
// names. Only the canonical form is accepted (parseAccessToken), so a token has one spelling. Every failure is
// nexus.ErrUnauthenticated; the session is not checked here.
func (s *Service) verifyAccessToken(ctx context.Context, raw string) (nexus.Principal, error) {
	if len(raw) > maxTokenBytes {
		return nexus.Principal{}, nexus.ErrUnauthenticated
	}
	now := s.now()
	key := tokenKey(sha256.Sum256([]byte(raw)))
	if e, ok := s.cache.token(key, now); ok {
		// Verified before and not expired; its key must still verify (a retired key's tokens are refused).
		if verifies, err := s.keys.verifies(ctx, e.kid); err != nil {
			return nexus.Principal{}, err
		} else if verifies {
			return e.p, nil
		}
		return nexus.Principal{}, nexus.ErrUnauthenticated
	}
	hdr, ok := parseAccessToken(raw)
	// Pin the algorithm and the token type before touching any key: this rejects alg "none", HS256 signed with
	// the public key, and refresh or ID tokens presented as access tokens.
	if !ok || hdr.alg != jwa.ES256.String() || hdr.typ != accessTokenType || hdr.kid == "" {
		return nexus.Principal{}, nexus.ErrUnauthenticated
	}
	set, err := s.keys.verificationKeys(ctx, hdr.kid)
	if err != nil {
		return nexus.Principal{}, err
	}
	tok, err := jwt.Parse([]byte(raw),
		jwt.WithKeySet(set, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(false)),
		jwt.WithValidate(true),
		jwt.WithIssuer(s.issuer),
		jwt.WithAcceptableSkew(clockLeeway),
		jwt.WithClock(jwt.ClockFunc(s.now)),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.NotBeforeKey),
		jwt.WithRequiredClaim(jwt.IssuedAtKey),
		jwt.WithRequiredClaim(jwt.JwtIDKey),
	)
	if err != nil {
		return nexus.Principal{}, nexus.ErrUnauthenticated
	}
	p := nexus.Principal{UserID: tok.Subject(), TokenID: tok.JwtID()}
	p.ClientID, _ = claim(tok, "client_id")
	p.SessionID, _ = claim(tok, "sid")
	p.OrganizationID, _ = claim(tok, "org_id")
	role, _ := claim(tok, "role")
	p.Role = nexus.Role(role)
	aud := tok.Audience()
	if p.UserID == "" || p.ClientID == "" || p.SessionID == "" || p.OrganizationID == "" || !p.Role.Valid() ||
		len(aud) != 1 || aud[0] != p.ClientID {
		return nexus.Principal{}, nexus.ErrUnauthenticated
	}
	s.cache.putToken(key, tokenEntry{p: p, kid: hdr.kid, exp: tok.Expiration()}, now)
	return p, nil
}

func claim(tok jwt.Token, name string) (string, bool) {
	v, ok := tok.Get(name)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}
