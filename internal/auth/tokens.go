package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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

// accessClaims are the claims of an access token, in the order jwx writes them (by name), so that a token has
// the same bytes whichever of the two signed it.
type accessClaims struct {
	Audience       []string `json:"aud"`
	ClientID       string   `json:"client_id"`
	Expiration     int64    `json:"exp"`
	IssuedAt       int64    `json:"iat"`
	Issuer         string   `json:"iss"`
	JwtID          string   `json:"jti"`
	NotBefore      int64    `json:"nbf"`
	OrganizationID string   `json:"org_id"`
	Role           string   `json:"role,omitempty"`  // a user's token
	Scope          *string  `json:"scope,omitempty"` // a service client's token: always present, "" for no scopes
	SessionID      string   `json:"sid"`
	Subject        string   `json:"sub"`
}

// signAccessToken issues an access token for the principal p (a user, or a service client: then its sub is the
// client_id and it carries scope instead of role), valid from now for the access TTL: the compact
// JWS of exactly the header (alg, kid, typ) and claims that parseAccessToken and verifyAccessToken accept,
// signed with ES256. It is written here rather than by jwx, which spends as long building and serializing the
// token as the signature takes (every login and refresh signs one).
func (s *Service) signAccessToken(ctx context.Context, p nexus.Principal, now time.Time) (string, error) {
	key, err := s.keys.signingKey(ctx)
	if err != nil {
		return "", err
	}
	kid, err := json.Marshal(key.ID)
	if err != nil {
		return "", nexus.Internal(err)
	}
	claims := accessClaims{
		Audience: []string{p.ClientID}, ClientID: p.ClientID, Expiration: now.Add(s.accessTTL).Unix(), IssuedAt: now.Unix(),
		Issuer: s.issuer, JwtID: uuid.NewString(), NotBefore: now.Unix(), OrganizationID: p.OrganizationID,
		Role: string(p.Role), SessionID: p.SessionID, Subject: p.UserID,
	}
	if p.Service {
		scope := p.Scopes.String()
		claims.Role, claims.Scope, claims.Subject = "", &scope, p.ClientID
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", nexus.Internal(err)
	}
	header := `{"alg":"ES256","kid":` + string(kid) + `,"typ":"` + accessTokenType + `"}`
	enc := base64.RawURLEncoding
	tok := make([]byte, 0, enc.EncodedLen(len(header))+enc.EncodedLen(len(payload))+enc.EncodedLen(64)+2)
	tok = enc.AppendEncode(tok, []byte(header))
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, payload)
	digest := sha256.Sum256(tok)
	r, sig, err := ecdsa.Sign(rand.Reader, key.signer, digest[:])
	if err != nil {
		return "", nexus.Internal(fmt.Errorf("sign access token: %w", err))
	}
	var rs [64]byte // JWS ES256: R and S, 32 bytes each, big-endian
	r.FillBytes(rs[:32])
	sig.FillBytes(rs[32:])
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, rs[:])
	return string(tok), nil
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
	p, ok := principalOf(tok)
	if !ok {
		return nexus.Principal{}, nexus.ErrUnauthenticated
	}
	s.cache.putToken(key, tokenEntry{p: p, kid: hdr.kid, exp: tok.Expiration()}, now)
	return p, nil
}

// principalOf returns the principal a verified token names: a user's token carries role (and no scope), a
// service client's scope (and no role), with the client_id as its sub.
func principalOf(tok jwt.Token) (nexus.Principal, bool) {
	p := nexus.Principal{UserID: tok.Subject(), TokenID: tok.JwtID()}
	p.ClientID, _ = claim(tok, "client_id")
	p.SessionID, _ = claim(tok, "sid")
	p.OrganizationID, _ = claim(tok, "org_id")
	role, hasRole := claim(tok, "role")
	scope, hasScope := claim(tok, "scope")
	switch {
	case hasRole && !hasScope:
		p.Role = nexus.Role(role)
		if !p.Role.Valid() || p.UserID == "" {
			return nexus.Principal{}, false
		}
	case hasScope && !hasRole:
		var unknown []string
		p.Scopes, unknown = nexus.ParsePermissionSet(scope)
		if len(unknown) > 0 || p.UserID != p.ClientID || p.Scopes.String() != scope {
			return nexus.Principal{}, false // one spelling of the scopes, the one we sign
		}
		p.Service, p.UserID = true, ""
	default:
		return nexus.Principal{}, false
	}
	aud := tok.Audience()
	if p.ClientID == "" || p.SessionID == "" || p.OrganizationID == "" || len(aud) != 1 || aud[0] != p.ClientID {
		return nexus.Principal{}, false
	}
	return p, true
}

func claim(tok jwt.Token, name string) (string, bool) {
	v, ok := tok.Get(name)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}
