package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// ClientTokenInput is a client credentials grant (RFC 6749 §4.4) by a service client that has authenticated.
type ClientTokenInput struct {
	ClientRef      string // the client's row id
	ClientID       string
	SecretID       string // the secret it authenticated with
	OrganizationID string
	Granted        nexus.PermissionSet // the client's scopes, as authenticated
	Scope          string              // the scope parameter, if given
	ScopeGiven     bool
	Meta
}

// ServiceToken is what a client credentials grant returns: an access token, no refresh token.
type ServiceToken struct {
	AccessToken string
	ExpiresIn   time.Duration
	Scopes      nexus.PermissionSet
}

// Reasons recorded on service sessions that end before they expire.
const (
	revokedByClient = "revoked" // RFC 7009 revocation, or a service token's logout
)

// Errors of the token endpoint.
var (
	errUnknownScope = func(names string) error {
		return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeInvalidScope,
			Message: "The scope parameter names scopes that do not exist: " + names + "."}
	}
	errScopeNotGranted = func(missing nexus.PermissionSet) error {
		return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeInvalidScope,
			Message: "The client was not granted the scope " + missing.String() + "."}
	}
)

// ClientToken issues an access token to a service client for itself: the scopes asked for (all the client's
// when none are), in its organization. The token has a service session of its own, started in a transaction
// that reads the client and the secret again under the client's lock, so that a disable, a scope change or the
// secret's revocation committed meanwhile is never outlived by a token issued from what was read before.
// Errors: invalid_scope, invalid_client, unavailable, internal.
func (s *Service) ClientToken(ctx context.Context, in ClientTokenInput) (ServiceToken, error) {
	now := s.now()
	scopes := in.Granted
	if in.ScopeGiven {
		asked, unknown := nexus.ParsePermissionSet(in.Scope)
		switch {
		case len(unknown) > 0:
			return ServiceToken{}, errUnknownScope(fmt.Sprintf("%q", unknown))
		case !in.Granted.Contains(asked):
			return ServiceToken{}, errScopeNotGranted(asked &^ in.Granted)
		}
		scopes = asked
	}
	sess := ServiceSession{ID: uuid.NewString(), ClientRef: in.ClientRef, ClientID: in.ClientID, SecretID: in.SecretID,
		OrganizationID: in.OrganizationID, Scopes: scopes, CreatedAt: now, ExpiresAt: now.Add(s.accessTTL)}
	ev := AuditEvent{OccurredAt: now, Action: "token", Result: "success", OrganizationID: in.OrganizationID,
		ClientID: in.ClientID, SessionID: sess.ID, SocketIP: in.SocketIP, UserAgent: in.UserAgent,
		Detail: "client_credentials: " + scopes.String()}
	err := s.store.StartServiceSession(ctx, sess, func(c ServiceClientState) error {
		switch {
		case c.Disabled, c.SecretRevoked, !c.SecretExpiresAt.IsZero() && !now.Before(c.SecretExpiresAt):
			return nexus.ErrInvalidClient
		case !c.Scopes.Contains(scopes):
			return errScopeNotGranted(scopes &^ c.Scopes)
		}
		return nil
	}, &ev)
	if err != nil {
		return ServiceToken{}, err
	}
	p := nexus.Principal{Service: true, ClientID: in.ClientID, OrganizationID: in.OrganizationID, SessionID: sess.ID, Scopes: scopes}
	tok, err := s.signAccessToken(ctx, p, now)
	if err != nil {
		return ServiceToken{}, err
	}
	return ServiceToken{AccessToken: tok, ExpiresIn: s.accessTTL, Scopes: scopes}, nil
}

// RevokeToken revokes a token the client clientID was issued (RFC 7009): a refresh token or a user's access
// token ends its whole session, a service token its own. A token that is not valid, already revoked, expired,
// or another client's changes nothing and is no error: the answer says nothing about the token.
// Errors: unavailable, internal.
func (s *Service) RevokeToken(ctx context.Context, clientID, token string, meta Meta) error {
	now := s.now()
	ev := AuditEvent{OccurredAt: now, Action: "revoke", Result: "success", ClientID: clientID,
		SocketIP: meta.SocketIP, UserAgent: meta.UserAgent}
	if rt, ok := parseRefreshToken(token); ok {
		sess, err := s.store.Session(ctx, rt.sessionID)
		switch {
		case errors.Is(err, nexus.ErrNotFound):
			return nil
		case err != nil:
			return fmt.Errorf("look up session: %w", err)
		case !s.sec.validRefreshMAC(rt, sess) || sess.ClientID != clientID:
			return nil
		}
		if err := s.revoke(ctx, sess.ID, revokedByClient); err != nil {
			return err
		}
		ev.UserID, ev.OrganizationID, ev.SessionID = sess.UserID, sess.OrganizationID, sess.ID
		return s.record(ctx, ev)
	}
	p, err := s.verifyAccessToken(ctx, token)
	switch {
	case errors.Is(err, nexus.ErrUnauthenticated):
		return nil
	case err != nil:
		return err
	case p.ClientID != clientID:
		return nil
	}
	if p.Service {
		if err := s.store.RevokeServiceSession(ctx, p.SessionID, revokedByClient, now); err != nil && !errors.Is(err, nexus.ErrNotFound) {
			return fmt.Errorf("revoke service session: %w", err)
		}
	} else if err := s.revoke(ctx, p.SessionID, revokedByClient); err != nil {
		return err
	}
	ev.UserID, ev.OrganizationID, ev.SessionID = p.UserID, p.OrganizationID, p.SessionID
	return s.record(ctx, ev)
}

func (s *Service) record(ctx context.Context, ev AuditEvent) error {
	if err := s.store.RecordAuthEvent(ctx, ev); err != nil {
		return fmt.Errorf("record %s: %w", ev.Action, err)
	}
	return nil
}

// Introspection is what RFC 7662 says of a token: Active false and nothing else, or its claims.
type Introspection struct {
	Active         bool
	Refresh        bool // a refresh token (else an access token)
	Scopes         nexus.PermissionSet
	Service        bool
	Role           nexus.Role
	ClientID       string
	Subject        string
	OrganizationID string
	Issuer         string
	Audience       string
	SessionID      string
	TokenID        string
	ExpiresAt      time.Time
	IssuedAt       time.Time
	NotBefore      time.Time
}

// Introspect says whether token is active, for a resource server of organization orgID: an access token that
// Authenticate accepts (signature, claims, its session live), or a refresh token that a refresh would accept
// now (its session live, the current generation), of orgID. Anything else, another organization's tokens
// included, is inactive.
// Errors: unavailable, internal.
func (s *Service) Introspect(ctx context.Context, orgID, token string) (Introspection, error) {
	if rt, ok := parseRefreshToken(token); ok {
		return s.introspectRefresh(ctx, orgID, rt)
	}
	p, err := s.Authenticate(ctx, token)
	switch {
	case errors.Is(err, nexus.ErrUnauthenticated):
		return Introspection{}, nil
	case err != nil:
		return Introspection{}, err
	case p.OrganizationID != orgID:
		return Introspection{}, nil
	}
	c, ok := payloadClaims(token)
	// Authenticate allows clockLeeway past exp for other nodes' clocks; this server's own answer about its
	// tokens does not: a token at or past its exp is inactive (RFC 7662 §2.2), never active with exp behind.
	if !ok || !s.now().Before(time.Unix(c.Expiration, 0)) {
		return Introspection{}, nil
	}
	return Introspection{Active: true, Scopes: p.Scopes, Service: p.Service, Role: p.Role, ClientID: p.ClientID,
		Subject: c.Subject, OrganizationID: p.OrganizationID, Issuer: c.Issuer, Audience: p.ClientID,
		SessionID: p.SessionID, TokenID: p.TokenID, ExpiresAt: time.Unix(c.Expiration, 0).UTC(),
		IssuedAt: time.Unix(c.IssuedAt, 0).UTC(), NotBefore: time.Unix(c.NotBefore, 0).UTC()}, nil
}

func (s *Service) introspectRefresh(ctx context.Context, orgID string, rt refreshToken) (Introspection, error) {
	sess, err := s.store.Session(ctx, rt.sessionID)
	switch {
	case errors.Is(err, nexus.ErrNotFound):
		return Introspection{}, nil
	case err != nil:
		return Introspection{}, fmt.Errorf("look up session: %w", err)
	}
	now := s.now()
	idleEnd := sess.LastUsedAt.Add(s.idleTTL)
	if !s.sec.validRefreshMAC(rt, sess) || sess.Revoked() || rt.generation != sess.Generation ||
		!now.Before(sess.ExpiresAt) || !now.Before(idleEnd) || sess.OrganizationID != orgID {
		return Introspection{}, nil
	}
	return Introspection{Active: true, Refresh: true, Role: sess.Role, ClientID: sess.ClientID, Subject: sess.UserID,
		OrganizationID: sess.OrganizationID, Issuer: s.issuer, SessionID: sess.ID,
		ExpiresAt: minTime(sess.ExpiresAt, idleEnd), IssuedAt: sess.CreatedAt}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Issuer returns the iss of the tokens this service signs.
func (s *Service) Issuer() string { return s.issuer }

// payloadClaims decodes the claims of a token that has been verified.
func payloadClaims(token string) (accessClaims, bool) {
	_, rest, _ := strings.Cut(token, ".")
	p64, _, _ := strings.Cut(rest, ".")
	raw, err := strictB64.DecodeString(p64)
	var c accessClaims
	if err != nil || json.Unmarshal(raw, &c) != nil {
		return accessClaims{}, false
	}
	return c, true
}
