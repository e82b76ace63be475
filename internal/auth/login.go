package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// verifyPassword checks password against hash, with at most one check per core running at once. An argon2id
// check takes tens of milliseconds of CPU and 19 MiB; a burst of logins waits for a slot, until its deadline and
// then unavailable, instead of all running at once past every deadline.
// before, when set, runs once the slot is taken, right before the check.
func (s *Service) verifyPassword(ctx context.Context, hash, password string, before func(context.Context) error) (bool, error) {
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return false, nexus.Unavailable(fmt.Errorf("wait for a password check: %w", ctx.Err()))
	}
	defer func() { <-s.hashSlots }()
	if before != nil {
		if err := before(ctx); err != nil {
			return false, err
		}
	}
	return VerifyPassword(hash, password), nil
}

// Login authenticates a user by email and password for a client and starts a refresh session.
// Errors: invalid (password over MaxPasswordBytes), invalid_client, invalid_credentials, account_inactive,
// unavailable, internal.
func (s *Service) Login(ctx context.Context, in LoginInput) (Tokens, error) {
	if len(in.Password) > MaxPasswordBytes {
		return Tokens{}, nexus.Invalid(nexus.BodyField("/password", fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)))
	}
	now := s.now()
	ev := AuditEvent{OccurredAt: now, Action: "login", ClientID: in.ClientID, ReportedIP: in.ReportedIP,
		SocketIP: in.SocketIP, UserAgent: in.UserAgent}
	fail := func(err error) (Tokens, error) {
		var ne *nexus.Error
		if errors.As(err, &ne) && ne.Kind != nexus.KindUnavailable && ne.Kind != nexus.KindInternal {
			ev.Result = string(ne.Code)
			if aerr := s.store.RecordAuthEvent(ctx, ev); aerr != nil {
				return Tokens{}, fmt.Errorf("record failed login: %w", aerr)
			}
		}
		return Tokens{}, err
	}

	client, err := s.client(ctx, in.ClientID)
	if err != nil {
		return fail(err)
	}
	email := nexus.NormalizeEmail(in.Email)
	cred, err := s.store.UserByEmail(ctx, email)
	switch {
	case errors.Is(err, nexus.ErrNotFound):
		if _, err := s.verifyPassword(ctx, s.dummyHash, in.Password, in.BeforePasswordCheck); err != nil { // same cost as a real check
			return Tokens{}, err
		}
		ev.EmailHash = s.sec.hashEmail(email)
		return fail(nexus.ErrInvalidCredentials)
	case err != nil:
		return Tokens{}, fmt.Errorf("look up user: %w", err)
	}
	ev.UserID, ev.OrganizationID = cred.User.ID, cred.User.OrganizationID
	if ok, err := s.verifyPassword(ctx, cred.PasswordHash, in.Password, in.BeforePasswordCheck); err != nil {
		return Tokens{}, err
	} else if !ok {
		return fail(nexus.ErrInvalidCredentials)
	}
	// Refusals as the user was read; the transaction below checks again what may have changed meanwhile.
	if cred.User.Status != nexus.UserActive {
		return fail(nexus.ErrAccountInactive)
	}
	if client.OrganizationID != "" && client.OrganizationID != cred.User.OrganizationID {
		return fail(nexus.ErrInvalidClient)
	}

	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return Tokens{}, nexus.Internal(err)
	}
	// The password check took tens of milliseconds, and the user read before it may have been deactivated,
	// demoted or given a new password meanwhile, with their sessions revoked. The session's rights come from the
	// user as read again in the transaction that stores the session, which holds the user's row until then, so
	// that a change either comes first and is seen here, or comes after and revokes this session too.
	var user nexus.User
	var sess Session
	err = s.store.StartSession(ctx, cred.User.ID, func(cur Credentials) (Session, error) {
		switch {
		case subtle.ConstantTimeCompare([]byte(cur.PasswordHash), []byte(cred.PasswordHash)) != 1:
			return Session{}, nexus.ErrInvalidCredentials // the password checked is no longer the user's
		case cur.User.Status != nexus.UserActive:
			return Session{}, nexus.ErrAccountInactive
		case client.OrganizationID != "" && client.OrganizationID != cur.User.OrganizationID:
			return Session{}, nexus.ErrInvalidClient
		}
		user = cur.User
		sess = Session{
			ID: uuid.NewString(), UserID: user.ID, OrganizationID: user.OrganizationID, ClientID: client.ClientID,
			Role: user.Role, Salt: salt, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(s.absoluteTTL),
			KeyID: s.sec.id,
		}
		ev.SessionID, ev.Result = sess.ID, "success"
		return sess, nil
	}, &ev) // the success entry commits with the session
	switch {
	case errors.Is(err, nexus.ErrNotFound):
		return fail(nexus.ErrInvalidCredentials) // the user is gone
	case errors.Is(err, nexus.ErrInvalidCredentials), errors.Is(err, nexus.ErrAccountInactive), errors.Is(err, nexus.ErrInvalidClient):
		return fail(err)
	case err != nil:
		return Tokens{}, fmt.Errorf("start session: %w", err)
	}
	return s.issue(ctx, user, sess, now)
}

// client returns the enabled client registered as clientID, or nexus.ErrInvalidClient. A client read from the
// database is used for the cache's TTL (see Options.ClientTTL) by every login and refresh through it.
func (s *Service) client(ctx context.Context, clientID string) (Client, error) {
	c, ok := s.clients.get(clientID)
	if !ok {
		var err error
		c, err = s.store.ClientByClientID(ctx, clientID)
		switch {
		case errors.Is(err, nexus.ErrNotFound):
			return Client{}, nexus.ErrInvalidClient // not cached: unknown ids would fill the cache
		case err != nil:
			return Client{}, fmt.Errorf("look up client: %w", err)
		}
		s.clients.put(clientID, c)
	}
	if c.Disabled || c.Service {
		return Client{}, nexus.ErrInvalidClient // a service client logs no user in
	}
	return c, nil
}

// issue signs an access token for user in session sess and derives the session's current refresh token.
func (s *Service) issue(ctx context.Context, user nexus.User, sess Session, now time.Time) (Tokens, error) {
	p := nexus.Principal{UserID: user.ID, OrganizationID: user.OrganizationID, Role: user.Role,
		SessionID: sess.ID, ClientID: sess.ClientID}
	access, err := s.signAccessToken(ctx, p, now)
	if err != nil {
		return Tokens{}, err
	}
	refreshLeft := min(sess.ExpiresAt.Sub(now), s.idleTTL)
	return Tokens{
		AccessToken: access, ExpiresIn: s.accessTTL,
		RefreshToken: s.sec.mintRefreshToken(sess, sess.Generation), RefreshExpiresIn: refreshLeft,
		User: user,
	}, nil
}
