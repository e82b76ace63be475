package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

var noCache = "no-cache"

// Errors of client authentication that are the request's form, not the client's credentials.
var (
	errTwoAuthMethods = &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeValidationFailed,
		Message: "The client authenticated twice: use HTTP Basic or client_secret in the body, not both.",
		Fields:  []nexus.FieldError{nexus.BodyField("/client_secret", "must not be given with an Authorization header")}}
	errClientIDMismatch = &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeValidationFailed,
		Message: "The client_id in the body is not the one in the Authorization header.",
		Fields:  []nexus.FieldError{nexus.BodyField("/client_id", "must be the client_id of the Authorization header")}}
	errNoClient = &nexus.Error{Kind: nexus.KindUnauthenticated, Code: nexus.CodeInvalidClient,
		Message: "Client authentication is required: HTTP Basic, or client_id (and client_secret) in the body."}
	errMalformedBasic = &nexus.Error{Kind: nexus.KindUnauthenticated, Code: nexus.CodeInvalidClient,
		Message: "The Authorization header is not HTTP Basic credentials as RFC 6749 section 2.3.1 spells them."}
)

// authenticateClient authenticates the client of a request to an OAuth endpoint: by HTTP Basic
// (client_secret_basic: client_id and secret each form-urlencoded, then base64), or by client_id and
// client_secret in the body (client_secret_post); a login client by its client_id alone. Never both ways.
func (s *Server) authenticateClient(ctx context.Context, bodyID, bodySecret *string) (clients.Client, string, error) {
	id, secret, err := clientCredentials(ctx, bodyID, bodySecret)
	if err != nil {
		return clients.Client{}, "", err
	}
	return s.clients.Authenticate(ctx, id, secret)
}

func clientCredentials(ctx context.Context, bodyID, bodySecret *string) (string, string, error) {
	header := contract.RequestHeader(ctx).Values(echo.HeaderAuthorization)
	if len(header) == 0 {
		if bodyID == nil {
			return "", "", errNoClient
		}
		secret := ""
		if bodySecret != nil {
			secret = *bodySecret
		}
		return *bodyID, secret, nil
	}
	if len(header) > 1 {
		return "", "", &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeValidationFailed,
			Message: "The request has more than one Authorization header.",
			Fields:  []nexus.FieldError{{In: nexus.InHeader, Name: "Authorization", Detail: "must be given once"}}}
	}
	scheme, cred, ok := strings.Cut(header[0], " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", errMalformedBasic
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", errMalformedBasic
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", errMalformedBasic
	}
	id, err1 := url.QueryUnescape(user)
	secret, err2 := url.QueryUnescape(pass)
	switch {
	case err1 != nil || err2 != nil || id == "":
		return "", "", errMalformedBasic
	case bodySecret != nil:
		return "", "", errTwoAuthMethods
	case bodyID != nil && *bodyID != id:
		return "", "", errClientIDMismatch
	}
	return id, secret, nil
}

// IssueToken implements gen.StrictServerInterface: the OAuth 2.0 token endpoint.
func (s *Server) IssueToken(ctx context.Context, req gen.IssueTokenRequestObject) (gen.IssueTokenResponseObject, error) {
	b := req.Body
	c, secretID, err := s.authenticateClient(ctx, b.ClientId, b.ClientSecret)
	if err != nil {
		return nil, err
	}
	if err := s.contract.Take(ctx, contract.LimitOn{Policy: contract.PolicyClient, Key: c.ClientID}); err != nil {
		return nil, err
	}
	headers := gen.IssueToken200ResponseHeaders{CacheControl: &noStore, Pragma: &noCache}
	switch b.GrantType {
	case "client_credentials":
		if !c.Service {
			return nil, &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeUnauthorizedClient,
				Message: "A login client cannot use the client_credentials grant; it logs users in."}
		}
		in := auth.ClientTokenInput{ClientRef: c.ID, ClientID: c.ClientID, SecretID: secretID, OrganizationID: c.OrganizationID,
			Granted: c.Scopes, Meta: metaFrom(ctx)}
		if b.Scope != nil {
			in.Scope, in.ScopeGiven = *b.Scope, true
		}
		tok, err := s.auth.ClientToken(ctx, in)
		if errors.Is(err, nexus.ErrInvalidClient) {
			// The client was disabled, or its secret revoked or expired, after it authenticated: the answer is
			// any failed client authentication's, so that it does not tell when that happened.
			err = clients.ErrAuthentication
		}
		if err != nil {
			return nil, err
		}
		scope := tok.Scopes.String()
		return gen.IssueToken200JSONResponse{Headers: headers, Body: gen.OAuthTokenResponse{
			AccessToken: tok.AccessToken, TokenType: "Bearer", ExpiresIn: int(tok.ExpiresIn.Seconds()), Scope: &scope}}, nil
	case "refresh_token":
		if c.Service {
			return nil, &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeUnauthorizedClient,
				Message: "A service client has no refresh tokens: ask for a new token with client_credentials."}
		}
		if b.RefreshToken == nil || *b.RefreshToken == "" {
			return nil, nexus.Invalid(nexus.BodyField("/refresh_token", "is required with grant_type refresh_token"))
		}
		tokens, err := s.auth.Refresh(ctx, auth.RefreshInput{RefreshToken: *b.RefreshToken, ClientID: c.ClientID, Meta: metaFrom(ctx)})
		if err != nil {
			return nil, err
		}
		refreshIn := int(tokens.RefreshExpiresIn.Seconds())
		return gen.IssueToken200JSONResponse{Headers: headers, Body: gen.OAuthTokenResponse{
			AccessToken: tokens.AccessToken, TokenType: "Bearer", ExpiresIn: int(tokens.ExpiresIn.Seconds()),
			RefreshToken: &tokens.RefreshToken, RefreshExpiresIn: &refreshIn}}, nil
	}
	return nil, &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeUnsupportedGrantType,
		Message: "The grant_type must be client_credentials or refresh_token."}
}

// RevokeToken implements gen.StrictServerInterface: RFC 7009 revocation.
func (s *Server) RevokeToken(ctx context.Context, req gen.RevokeTokenRequestObject) (gen.RevokeTokenResponseObject, error) {
	b := req.Body
	c, _, err := s.authenticateClient(ctx, b.ClientId, b.ClientSecret)
	if err != nil {
		return nil, err
	}
	if err := s.auth.RevokeToken(ctx, c.ClientID, b.Token, metaFrom(ctx)); err != nil {
		return nil, err
	}
	return gen.RevokeToken200Response{Headers: gen.RevokeToken200ResponseHeaders{CacheControl: &noStore}}, nil
}

// IntrospectToken implements gen.StrictServerInterface: RFC 7662 introspection, for clients holding
// tokens:introspect.
func (s *Server) IntrospectToken(ctx context.Context, req gen.IntrospectTokenRequestObject) (gen.IntrospectTokenResponseObject, error) {
	b := req.Body
	c, _, err := s.authenticateClient(ctx, b.ClientId, b.ClientSecret)
	if err != nil {
		return nil, err
	}
	if !c.Service || !c.Scopes.Has(nexus.PermTokensIntrospect) {
		return nil, &nexus.Error{Kind: nexus.KindPermissionDenied, Code: nexus.CodeInsufficientPermission,
			Message: "This request needs the tokens:introspect scope, which the client was not granted."}
	}
	in, err := s.auth.Introspect(ctx, c.OrganizationID, b.Token)
	if err != nil {
		return nil, err
	}
	return gen.IntrospectToken200JSONResponse{Body: toIntrospection(in),
		Headers: gen.IntrospectToken200ResponseHeaders{CacheControl: &noStore}}, nil
}

func toIntrospection(in auth.Introspection) gen.TokenIntrospection {
	if !in.Active {
		return gen.TokenIntrospection{}
	}
	out := gen.TokenIntrospection{Active: true, ClientId: &in.ClientID, Sub: &in.Subject, Iss: &in.Issuer, Sid: &in.SessionID}
	if org, err := uuid.Parse(in.OrganizationID); err == nil {
		out.OrgId = &org
	}
	exp, iat := int(in.ExpiresAt.Unix()), int(in.IssuedAt.Unix())
	out.Exp, out.Iat = &exp, &iat
	typ := "Bearer"
	if in.Refresh {
		typ = "refresh_token"
	} else {
		nbf := int(in.NotBefore.Unix())
		out.Nbf, out.Aud, out.Jti = &nbf, &in.Audience, &in.TokenID
	}
	out.TokenType = &typ
	if in.Service {
		scope := in.Scopes.String()
		out.Scope = &scope
	} else {
		role := gen.Role(in.Role)
		out.Role = &role
	}
	return out
}

// GetAuthorizationServerMetadata implements gen.StrictServerInterface: RFC 8414 metadata.
func (s *Server) GetAuthorizationServerMetadata(context.Context, gen.GetAuthorizationServerMetadataRequestObject) (gen.GetAuthorizationServerMetadataResponseObject, error) {
	cache := "public, max-age=3600"
	return gen.GetAuthorizationServerMetadata200JSONResponse{Body: s.metadata(),
		Headers: gen.GetAuthorizationServerMetadata200ResponseHeaders{CacheControl: &cache}}, nil
}

// metadata is the RFC 8414 document: the endpoints under the issuer, which is the server's public URL.
func (s *Server) metadata() gen.AuthorizationServerMetadata {
	iss := s.auth.Issuer()
	base := strings.TrimSuffix(iss, "/") + BasePath
	token, revoke, introspect, docs := base+"/auth/token", base+"/auth/revoke", base+"/auth/introspect", strings.TrimSuffix(iss, "/")+"/docs"
	withSecret := []string{"client_secret_basic", "client_secret_post"}
	withPublic := append(withSecret[:2:2], "none")
	scopes := make([]gen.Scope, 0, len(nexus.Permissions()))
	for _, p := range nexus.Permissions() {
		scopes = append(scopes, gen.Scope(p))
	}
	return gen.AuthorizationServerMetadata{
		Issuer: iss, TokenEndpoint: token, RevocationEndpoint: &revoke, IntrospectionEndpoint: &introspect,
		JwksUri: base + "/.well-known/jwks.json", GrantTypesSupported: []string{"client_credentials", "refresh_token"},
		ResponseTypesSupported: []string{}, TokenEndpointAuthMethodsSupported: withPublic,
		RevocationEndpointAuthMethodsSupported: &withPublic, IntrospectionEndpointAuthMethodsSupported: &withSecret,
		ScopesSupported: scopes, ServiceDocumentation: &docs,
	}
}

// rootMetadata serves the metadata where RFC 8414 §3 puts it for an issuer without a path (outside the
// contract, like /healthz): libraries that discover the server from its issuer look there.
func (s *Server) rootMetadata(c echo.Context) error {
	c.Response().Header().Set(echo.HeaderCacheControl, "public, max-age=3600")
	return c.JSON(http.StatusOK, s.metadata())
}
