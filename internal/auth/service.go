// Package auth implements login, password hashing, access-token issue and verification, refresh-token rotation
// with reuse detection, logout, and signing-key management. It declares the Store it needs.
package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Options configures a Service.
type Options struct {
	Store              Store
	Secret             []byte // the server's master secret (NEXUS_SECRET_KEY), at least 32 bytes
	Issuer             string
	AccessTTL          time.Duration
	RefreshIdleTTL     time.Duration
	RefreshAbsoluteTTL time.Duration
	RefreshGrace       time.Duration
	KeyPublishDelay    time.Duration
	// ClientTTL is how long a client as read from the database is used without reading it again (0: 1 s;
	// negative: read on every login and refresh). Clients are disabled (or moved to an organization) only in the
	// database, so a disabled client stops working on every node within ClientTTL.
	ClientTTL time.Duration
	Now       func() time.Time // defaults to time.Now
	Logger    *slog.Logger
	// CacheEntries bounds each of the two caches of Authenticate (verified tokens, sessions); 0 turns them off.
	// Live sessions are believed from the cache only while a revocation feed (store.DB.FollowRevocations)
	// keeps calling RevocationsCurrent.
	CacheEntries int
}

// Service is the auth domain service.
type Service struct {
	store       Store
	sec         *secrets
	keys        *keyRing
	issuer      string
	accessTTL   time.Duration
	idleTTL     time.Duration
	absoluteTTL time.Duration
	grace       time.Duration
	publish     time.Duration
	now         func() time.Time
	log         *slog.Logger
	dummyHash   string
	hashSlots   chan struct{} // one per core: password checks running at once
	clients     clientCache
	cache       *caches
}

// NewService returns a Service. It computes a dummy password hash so that logins of unknown emails cost as much
// as logins of known ones.
func NewService(o Options) (*Service, error) {
	sec, err := newSecrets(o.Secret)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	// Microsecond precision, in UTC: what both databases store, so a value read back compares equal.
	clock := func() time.Time { return now().UTC().Truncate(time.Microsecond) }
	dummy := make([]byte, 32)
	if _, err := rand.Read(dummy); err != nil {
		return nil, err
	}
	dummyHash, err := HashPassword(string(dummy))
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache, err := newCaches(o.CacheEntries, o.AccessTTL, clock)
	if err != nil {
		return nil, err
	}
	s := &Service{
		store: o.Store, sec: sec, issuer: o.Issuer,
		accessTTL: o.AccessTTL, idleTTL: o.RefreshIdleTTL, absoluteTTL: o.RefreshAbsoluteTTL,
		grace: o.RefreshGrace, publish: o.KeyPublishDelay, now: clock, log: log, dummyHash: dummyHash,
		hashSlots: make(chan struct{}, max(runtime.GOMAXPROCS(0), 1)),
		clients:   newClientCache(o.ClientTTL), cache: cache,
	}
	s.keys = &keyRing{store: o.Store, sec: sec, now: clock, publishDelay: o.KeyPublishDelay, accessTTL: o.AccessTTL}
	return s, nil
}

// Meta describes where a request came from, for the audit log.
type Meta struct {
	SocketIP  string
	UserAgent string
}

// LoginInput is a login request.
type LoginInput struct {
	Email      string
	Password   string
	ClientID   string
	ReportedIP string // as reported by the client; recorded, never trusted
	Meta
	// BeforePasswordCheck, when set, runs right before the password is checked, for known and unknown emails
	// alike, once the login is past everything that could fail for another reason (the database, the client):
	// the brute-force limit takes its attempt here, so that an outage costs the account nothing. An error ends
	// the login with that error, the password unchecked.
	BeforePasswordCheck func(ctx context.Context) error
}

// RefreshInput is a refresh request.
type RefreshInput struct {
	RefreshToken string
	ClientID     string
	DeviceID     string
	Meta
}

// Tokens is what a successful login or refresh returns.
type Tokens struct {
	AccessToken      string
	ExpiresIn        time.Duration
	RefreshToken     string
	RefreshExpiresIn time.Duration
	User             nexus.User
}

// EnsureSigningKey creates the first signing key if the database has none, and loads the keys.
func (s *Service) EnsureSigningKey(ctx context.Context) error { return s.keys.ensure(ctx) }

// RotateSigningKey adds a signing key that is published at once and signs after the configured publish delay.
// Tokens signed with older keys stay valid until they expire.
func (s *Service) RotateSigningKey(ctx context.Context) (SigningKey, error) {
	k, err := s.keys.add(ctx, s.publish)
	if err != nil {
		return SigningKey{}, err
	}
	return k, s.keys.load(ctx)
}

// ImportSigningKey stores an existing ECDSA P-256 private key as a signing key that is published now and signs
// from activeFrom, for moving keys from another issuer. The caller must keep no other copy.
func (s *Service) ImportSigningKey(ctx context.Context, key *ecdsa.PrivateKey, activeFrom time.Time) (SigningKey, error) {
	k, err := s.keys.storeKey(ctx, key, activeFrom.UTC().Truncate(time.Microsecond))
	if err != nil {
		return SigningKey{}, err
	}
	return k, s.keys.load(ctx)
}

// PublicKeys returns the published verification keys.
func (s *Service) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	keys, err := s.keys.published(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PublicKey, 0, len(keys))
	for _, k := range keys {
		pk, err := toPublicKey(k)
		if err != nil {
			return nil, nexus.Internal(err)
		}
		out = append(out, pk)
	}
	return out, nil
}

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
	if c.Disabled {
		return Client{}, nexus.ErrInvalidClient
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

// Outcomes of a refresh decision, for the audit log.
const (
	outcomeRotated        = "success"
	outcomeGrace          = "success_grace"
	outcomeReused         = string(nexus.CodeRefreshTokenReused)
	outcomeClientMismatch = "client_mismatch"
	outcomeDeviceMismatch = "device_mismatch"
	outcomeInactive       = string(nexus.CodeAccountInactive)
)

// Refresh exchanges a refresh token for new tokens, rotating the refresh token. Re-presenting the immediately
// previous token within the grace period returns the same successor; any older token revokes the session.
// Errors: invalid_client, invalid_grant, refresh_token_reused, unavailable, internal.
func (s *Service) Refresh(ctx context.Context, in RefreshInput) (Tokens, error) {
	now := s.now()
	ev := AuditEvent{OccurredAt: now, Action: "refresh", ClientID: in.ClientID, DeviceID: in.DeviceID,
		SocketIP: in.SocketIP, UserAgent: in.UserAgent}
	record := func(result string, err error) (Tokens, error) {
		ev.Result = result
		if aerr := s.store.RecordAuthEvent(ctx, ev); aerr != nil {
			return Tokens{}, fmt.Errorf("record refresh: %w", aerr)
		}
		return Tokens{}, err
	}
	if _, err := s.client(ctx, in.ClientID); err != nil {
		if errors.Is(err, nexus.ErrInvalidClient) {
			return record(string(nexus.ErrInvalidClient.Code), err)
		}
		return Tokens{}, err
	}
	tok, ok := parseRefreshToken(in.RefreshToken)
	if !ok {
		return record(string(nexus.ErrInvalidGrant.Code), nexus.ErrInvalidGrant)
	}
	ev.SessionID = tok.sessionID

	var outcome string
	var sess Session
	var user nexus.User
	// The user is read in the rotation's transaction, which holds the user's row as a login does: the successor
	// carries the user's role as it is now, and a deactivated user's session ends here. Every decision, a refusal
	// included, commits its audit entry in that transaction: fn never fails, so that one commit records it.
	decide := func(result string, save bool) (bool, error) {
		outcome, ev.Result = result, result
		return save, nil
	}
	err := s.store.UpdateSession(ctx, tok.sessionID, func(cur *Session, u nexus.User) (bool, error) {
		ev.UserID, ev.OrganizationID = cur.UserID, cur.OrganizationID
		switch {
		case !s.sec.validRefreshMAC(tok, *cur), cur.Revoked(), tok.generation > cur.Generation:
			return decide(string(nexus.ErrInvalidGrant.Code), false)
		case !now.Before(cur.ExpiresAt), !now.Before(cur.LastUsedAt.Add(s.idleTTL)):
			return decide(string(nexus.ErrInvalidGrant.Code), false)
		case tok.generation < cur.Generation-1 || (tok.generation == cur.Generation-1 && now.After(cur.RotatedAt.Add(s.grace))):
			// An older token came back: someone holds a copy. Revoke the whole session, whichever client or device
			// presents it; the revocation is committed even though this request fails.
			cur.RevokedAt, cur.RevokedReason = now, outcomeReused
			return decide(outcomeReused, true)
		case cur.ClientID != in.ClientID:
			return decide(outcomeClientMismatch, false)
		case cur.DeviceID != "" && cur.DeviceID != in.DeviceID:
			return decide(outcomeDeviceMismatch, false)
		case u.Status != nexus.UserActive:
			// Deactivated, or gone: the session ends, committed although this request fails.
			cur.RevokedAt, cur.RevokedReason = now, outcomeInactive
			return decide(outcomeInactive, true)
		}
		user = u
		save := cur.Role != u.Role
		cur.Role = u.Role
		if tok.generation == cur.Generation-1 {
			// The immediately previous token within the grace period: the same successor.
			sess = *cur
			return decide(outcomeGrace, save)
		}
		cur.Generation++
		cur.RotatedAt, cur.LastUsedAt = now, now
		if cur.DeviceID == "" {
			cur.DeviceID = in.DeviceID
		}
		sess = *cur
		return decide(outcomeRotated, true)
	}, &ev)
	switch {
	case errors.Is(err, nexus.ErrNotFound):
		return record(string(nexus.ErrInvalidGrant.Code), nexus.ErrInvalidGrant)
	case err != nil:
		return Tokens{}, fmt.Errorf("rotate refresh token: %w", err)
	case outcome == outcomeReused:
		return Tokens{}, nexus.ErrRefreshTokenReused
	case outcome != outcomeRotated && outcome != outcomeGrace:
		return Tokens{}, nexus.ErrInvalidGrant
	}
	return s.issue(ctx, user, sess, now)
}

func (s *Service) revoke(ctx context.Context, sessionID, reason string) error {
	now := s.now()
	err := s.store.UpdateSession(ctx, sessionID, func(cur *Session, _ nexus.User) (bool, error) {
		if cur.Revoked() {
			return false, nil
		}
		cur.RevokedAt, cur.RevokedReason = now, reason
		return true, nil
	}, nil)
	if err != nil && !errors.Is(err, nexus.ErrNotFound) {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// Logout revokes the session of the principal's access token.
// Errors: unavailable, internal.
func (s *Service) Logout(ctx context.Context, p nexus.Principal, meta Meta) error {
	if err := s.revoke(ctx, p.SessionID, "logout"); err != nil {
		return err
	}
	ev := AuditEvent{OccurredAt: s.now(), Action: "logout", Result: "success", UserID: p.UserID,
		OrganizationID: p.OrganizationID, ClientID: p.ClientID, SessionID: p.SessionID,
		SocketIP: meta.SocketIP, UserAgent: meta.UserAgent}
	if err := s.store.RecordAuthEvent(ctx, ev); err != nil {
		return fmt.Errorf("record logout: %w", err)
	}
	return nil
}

// Authenticate verifies a bearer access token and checks that its session is still live, so that a logout or a
// revocation takes effect on every node at once (see caches for what is remembered between requests).
// Errors: unauthenticated, unavailable, internal.
func (s *Service) Authenticate(ctx context.Context, bearer string) (nexus.Principal, error) {
	p, err := s.verifyAccessToken(ctx, bearer)
	if err != nil {
		return nexus.Principal{}, err
	}
	sess, err := s.sessionState(ctx, p.SessionID)
	switch {
	case errors.Is(err, nexus.ErrNotFound):
		return nexus.Principal{}, nexus.ErrUnauthenticated
	case err != nil:
		return nexus.Principal{}, fmt.Errorf("look up session: %w", err)
	case sess.revoked, !s.now().Before(sess.expiresAt):
		return nexus.Principal{}, nexus.ErrUnauthenticated
	case sess.userID != p.UserID, sess.organizationID != p.OrganizationID, sess.clientID != p.ClientID,
		sess.role != "" && sess.role != p.Role:
		// The claims the session records must be the session's: a token is never believed over its session. (A
		// session without a role was started by a server older than the session roles, during a rolling upgrade;
		// its next refresh records the role.)
		return nexus.Principal{}, nexus.ErrUnauthenticated
	}
	return p, nil
}
