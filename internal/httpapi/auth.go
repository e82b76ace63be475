package httpapi

import (
	"context"
	"fmt"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

var noStore = "no-store"

// Login implements gen.StrictServerInterface.
func (s *Server) Login(ctx context.Context, req gen.LoginRequestObject) (gen.LoginResponseObject, error) {
	b := req.Body
	email := nexus.NormalizeEmail(string(b.Email))
	// The login's per-client and per-account request limits.
	if err := s.contract.Take(ctx, contract.LimitOn{Policy: contract.PolicyClient, Key: b.ClientId},
		contract.LimitOn{Policy: contract.PolicyLoginAccount, Key: email}); err != nil {
		return nil, err
	}
	in := auth.LoginInput{Email: string(b.Email), Password: b.Password, ClientID: b.ClientId, Meta: metaFrom(ctx),
		BeforePasswordCheck: func(ctx context.Context) error { return s.limitPasswordCheck(ctx, email) }}
	if b.IpAddress != nil {
		in.ReportedIP = *b.IpAddress
	}
	tokens, err := s.auth.Login(ctx, in)
	if err != nil {
		return nil, err
	}
	s.contract.GiveBack(ctx, contract.PolicyLoginFailures, email) // a success clears the account's failures
	return gen.Login200JSONResponse{TokenIssuedJSONResponse: toTokenIssued(tokens)}, nil
}

// RefreshToken implements gen.StrictServerInterface.
func (s *Server) RefreshToken(ctx context.Context, req gen.RefreshTokenRequestObject) (gen.RefreshTokenResponseObject, error) {
	b := req.Body
	if err := s.contract.Take(ctx, contract.LimitOn{Policy: contract.PolicyClient, Key: b.ClientId}); err != nil {
		return nil, err
	}
	in := auth.RefreshInput{RefreshToken: b.RefreshToken, ClientID: b.ClientId, Meta: metaFrom(ctx)}
	if b.DeviceId != nil {
		in.DeviceID = *b.DeviceId
	}
	tokens, err := s.auth.Refresh(ctx, in)
	if err != nil {
		return nil, err
	}
	return gen.RefreshToken200JSONResponse{TokenIssuedJSONResponse: toTokenIssued(tokens)}, nil
}

// Logout implements gen.StrictServerInterface.
func (s *Server) Logout(ctx context.Context, _ gen.LogoutRequestObject) (gen.LogoutResponseObject, error) {
	p, ok := nexus.PrincipalFrom(ctx)
	if !ok {
		return nil, nexus.ErrUnauthenticated
	}
	if err := s.auth.Logout(ctx, p, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return gen.Logout204Response{}, nil
}

// GetJwks implements gen.StrictServerInterface.
func (s *Server) GetJwks(ctx context.Context, _ gen.GetJwksRequestObject) (gen.GetJwksResponseObject, error) {
	keys, err := s.auth.PublicKeys(ctx)
	if err != nil {
		return nil, err
	}
	set := gen.JSONWebKeySet{Keys: make([]gen.JSONWebKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = gen.JSONWebKey{Kty: gen.EC, Crv: gen.P256, X: k.X, Y: k.Y, Kid: k.KeyID, Alg: gen.ES256, Use: gen.Sig}
	}
	cache := fmt.Sprintf("public, max-age=%d", int(s.jwksMaxAge.Seconds()))
	return gen.GetJwks200JSONResponse{Body: set, Headers: gen.GetJwks200ResponseHeaders{CacheControl: &cache}}, nil
}

// limitPasswordCheck takes one attempt from the account's failure budget right before its password is checked
// (auth.LoginInput.BeforePasswordCheck), so that parallel guesses cannot outrun the count, while a login that
// fails before that (the database unreachable, an unknown client) costs the account nothing. A successful login
// gives the budget back in full. During a block a correct password gets the same 429 as a wrong one, and unknown
// emails are counted exactly like known ones: the answers reveal nothing about the account.
func (s *Server) limitPasswordCheck(ctx context.Context, email string) error {
	return s.contract.Take(ctx, contract.LimitOn{Policy: contract.PolicyLoginFailures, Key: email})
}

func toTokenIssued(t auth.Tokens) gen.TokenIssuedJSONResponse {
	return gen.TokenIssuedJSONResponse{
		Body: gen.TokenResponse{
			AccessToken:      t.AccessToken,
			TokenType:        gen.Bearer,
			ExpiresIn:        int(t.ExpiresIn.Seconds()),
			RefreshToken:     t.RefreshToken,
			RefreshExpiresIn: int(t.RefreshExpiresIn.Seconds()),
			User:             toGenUser(t.User),
		},
		Headers: gen.TokenIssuedResponseHeaders{CacheControl: &noStore},
	}
}
