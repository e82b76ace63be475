// Package clients manages service clients: confidential clients that act for themselves in one organization
// with the OAuth 2.0 client credentials grant, each granted a set of scopes (permissions of the matrix) and
// holding up to two secrets. It also authenticates clients at the OAuth endpoints. Issuing their tokens is the
// auth package's.
package clients

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Limits of the service clients.
const (
	// MaxPerOrganization is how many service clients one organization may hold.
	MaxPerOrganization = 100
	// MaxSecrets is how many secrets that are not revoked a client may hold: the current one and its successor
	// during a rotation.
	MaxSecrets = 2
	// ClientIDPrefix and SecretPrefix begin every generated client_id and secret, so that a leaked secret is
	// recognisable (secret scanners) and a client_id is never a UUID.
	ClientIDPrefix = "nxc_"
	SecretPrefix   = "nxs_"
)

// ErrAuthentication is the answer to every failed client authentication: an unknown client, a wrong, expired
// or revoked secret, a disabled client. It never says which.
var ErrAuthentication = &nexus.Error{Kind: nexus.KindUnauthenticated, Code: nexus.CodeInvalidClient,
	Message: "Client authentication failed."}

// Options configures a Service.
type Options struct {
	Store  Store
	Secret []byte // the server's master secret (NEXUS_SECRET_KEY), at least 32 bytes
	// PreviousSecret is the master secret before a rotation (NEXUS_SECRET_KEY_PREVIOUS), nil when there is none:
	// secrets hashed under it still authenticate, and are hashed again under Secret when they do.
	PreviousSecret []byte
	Now            func() time.Time
	Logger         *slog.Logger // nil: discard
}

// Service is the clients domain service.
type Service struct {
	store   Store
	key     []byte // keys the hash of client secrets
	keyID   string // nexus.SecretKeyID of the master secret key derives from
	prevKey []byte // the previous master secret's key; nil when none is configured
	dummy   [MaxSecrets][]byte
	now     func() time.Time
	log     *slog.Logger
}

// NewService returns a Service.
func NewService(o Options) (*Service, error) {
	if len(o.Secret) < 32 {
		return nil, errors.New("the secret key must be at least 32 bytes")
	}
	key, err := hashKey(o.Secret)
	if err != nil {
		return nil, err
	}
	var prevKey []byte
	if o.PreviousSecret != nil {
		if len(o.PreviousSecret) < 32 || bytes.Equal(o.PreviousSecret, o.Secret) {
			return nil, errors.New("the previous secret key must be at least 32 bytes and differ from the secret key")
		}
		if prevKey, err = hashKey(o.PreviousSecret); err != nil {
			return nil, err
		}
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: o.Store, key: key, keyID: nexus.SecretKeyID(o.Secret), prevKey: prevKey, log: log,
		now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }}
	for i := range s.dummy {
		s.dummy[i] = make([]byte, sha256.Size)
		if _, err := rand.Read(s.dummy[i]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// hashKey derives the key of the client secrets' hashes from a master secret.
func hashKey(master []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, master, nil, "nexus/v1/client-secret-hash", 32)
}

// hash returns the keyed hash of a secret under the current secret key, the only form in which secrets are
// stored.
func (s *Service) hash(secret string) []byte { return keyedHash(s.key, secret) }

func keyedHash(key []byte, secret string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(secret))
	return m.Sum(nil)
}

// newSecret returns a new secret (256 random bits) and its stored form.
func (s *Service) newSecret(now, expires time.Time) (string, Secret, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", Secret{}, nexus.Internal(err)
	}
	plain := SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
	return plain, Secret{ID: uuid.NewString(), Hash: s.hash(plain), KeyID: s.keyID, Hint: plain[len(plain)-4:], CreatedAt: now, ExpiresAt: expires}, nil
}

func newClientID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", nexus.Internal(err)
	}
	return ClientIDPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

// Authenticate authenticates a client at an OAuth endpoint: a service client by one of its secrets that is
// neither revoked nor expired, a login client by its client_id alone (secretGiven false, or an empty secret:
// HTTP Basic with an empty password). It costs the same for an unknown client, a wrong secret and a right one:
// one read, one hash, MaxSecrets constant-time comparisons; with a previous secret key configured, always two
// hashes and twice the comparisons, so that the time does not tell which key a secret is hashed under either.
// A secret that matches its hash under the previous secret key (or whose hash records no key) is hashed again
// under the current one once it has authenticated: one more write, once per secret. It returns the client and
// the id of the secret that matched ("" for a login client).
// Errors: invalid_client (ErrAuthentication), unavailable, internal.
func (s *Service) Authenticate(ctx context.Context, clientID, secret string) (Client, string, error) {
	c, err := s.store.Credentials(ctx, clientID)
	switch {
	case errors.Is(err, nexus.ErrNotFound):
		c = Client{Service: true} // compared against the dummies below, as a client with no secret
	case err != nil:
		return Client{}, "", fmt.Errorf("look up client: %w", err)
	}
	mac := s.hash(secret)
	var prevMAC []byte
	if s.prevKey != nil {
		prevMAC = keyedHash(s.prevKey, secret)
	}
	now := s.now()
	matched, stale := -1, false
	for i := range MaxSecrets {
		want, live := s.dummy[i], false
		if i < len(c.Secrets) {
			sec := c.Secrets[i]
			want = sec.Hash
			live = sec.RevokedAt.IsZero() && (sec.ExpiresAt.IsZero() || now.Before(sec.ExpiresAt))
		}
		cur := hmac.Equal(mac, want)
		prev := prevMAC != nil && hmac.Equal(prevMAC, want)
		if (cur || prev) && live {
			matched, stale = i, !cur || c.Secrets[i].KeyID != s.keyID
		}
	}
	switch {
	case err != nil, c.Disabled:
		return Client{}, "", ErrAuthentication
	case !c.Service:
		if secret != "" {
			return Client{}, "", ErrAuthentication // a login client has no secret to present
		}
		return c, "", nil
	case matched < 0:
		return Client{}, "", ErrAuthentication
	}
	sec := c.Secrets[matched]
	if stale {
		// The secret is good whether or not this succeeds: a failure only leaves it for its next use.
		if _, err := s.store.RehashSecret(ctx, sec.ID, sec.Hash, mac, s.keyID); err != nil {
			s.log.Warn("hash a client secret again under the current secret key", slog.String("client_id", c.ClientID),
				slog.String("secret_id", sec.ID), slog.Any("error", err))
		}
	}
	return c, sec.ID, nil
}

// CreateInput is a new service client.
type CreateInput struct {
	Name            string
	Scopes          nexus.PermissionSet
	SecretExpiresAt time.Time // zero: never
}

// Created is a new client with its first secret, shown once.
type Created struct {
	Client Client
	Secret string
}

// List returns the service clients of p's organization.
// Errors: insufficient_permission, unavailable, internal.
func (s *Service) List(ctx context.Context, p nexus.Principal) ([]Client, error) {
	if err := nexus.Authorize(p, nexus.PermClientsRead, ""); err != nil {
		return nil, err
	}
	return s.store.ServiceClients(ctx, p.OrganizationID)
}

// Get returns the service client of p's organization registered as clientID; another organization's is
// not_found, exactly like one that does not exist.
// Errors: insufficient_permission, not_found, unavailable, internal.
func (s *Service) Get(ctx context.Context, p nexus.Principal, clientID string) (Client, error) {
	if err := nexus.Authorize(p, nexus.PermClientsRead, ""); err != nil {
		return Client{}, err
	}
	return s.store.ServiceClient(ctx, p.OrganizationID, clientID)
}

// Create registers a service client in p's organization, with a generated client_id and its first secret.
// Errors: validation_failed, insufficient_permission, conflict (the organization holds MaxPerOrganization
// clients), unavailable, internal.
func (s *Service) Create(ctx context.Context, p nexus.Principal, in CreateInput) (Created, error) {
	if err := nexus.Authorize(p, nexus.PermClientsWrite, ""); err != nil {
		return Created{}, err
	}
	name := strings.TrimSpace(in.Name)
	now := s.now()
	if err := s.check(p, name, in.Scopes, in.SecretExpiresAt, "/secret_expires_at", now); err != nil {
		return Created{}, err
	}
	id, err := newClientID()
	if err != nil {
		return Created{}, err
	}
	plain, sec, err := s.newSecret(now, in.SecretExpiresAt)
	if err != nil {
		return Created{}, err
	}
	c := Client{ID: uuid.NewString(), ClientID: id, Name: name, OrganizationID: p.OrganizationID, Service: true,
		Scopes: in.Scopes, CreatedAt: now, UpdatedAt: now, Secrets: []Secret{sec}}
	limit := func(count int) error {
		if count >= MaxPerOrganization {
			return &nexus.Error{Kind: nexus.KindConflict, Code: nexus.CodeConflict,
				Message: fmt.Sprintf("The organization already has %d service clients; disable or reuse one.", MaxPerOrganization)}
		}
		return nil
	}
	err = s.store.CreateServiceClient(ctx, c, limit, audit(p, now, "client_create",
		fmt.Sprintf("client %s (%s): scopes %q", id, name, in.Scopes.String())))
	if err != nil {
		return Created{}, err
	}
	c.Secrets[0].Hash = nil
	return Created{Client: c, Secret: plain}, nil
}

// check holds a client's name, scopes and a secret's expiry to the rules the schema cannot state: a name that
// is not blank, scopes that p may grant, an expiry in the future.
func (s *Service) check(p nexus.Principal, name string, scopes nexus.PermissionSet, expires time.Time, expiresAt string, now time.Time) error {
	var fields []nexus.FieldError
	switch {
	case name == "":
		fields = append(fields, nexus.BodyField("/name", "must not be blank"))
	case utf8.RuneCountInString(name) > 100:
		fields = append(fields, nexus.BodyField("/name", "must be at most 100 characters"))
	case strings.ContainsFunc(name, unicode.IsControl):
		fields = append(fields, nexus.BodyField("/name", "must not contain control characters"))
	}
	if !expires.IsZero() && !expires.After(now) {
		fields = append(fields, nexus.BodyField(expiresAt, "must be in the future"))
	}
	if len(fields) > 0 {
		return nexus.Invalid(fields...)
	}
	if missing := scopes &^ nexus.Grantable(p); missing != 0 {
		e := *nexus.ErrInsufficientPermission
		e.Message = "You can grant only scopes you hold for the whole organization; not " + missing.String() + "."
		return &e
	}
	return nil
}

func audit(p nexus.Principal, at time.Time, action, detail string) Audit {
	return Audit{OccurredAt: at, Action: action, OrganizationID: p.OrganizationID, ActorUserID: p.UserID,
		ActorClientID: p.ClientID, SessionID: p.SessionID, Detail: detail}
}
