// Package clients manages service clients: confidential clients that act for themselves in one organization
// with the OAuth 2.0 client credentials grant, each granted a set of scopes (permissions of the matrix) and
// holding up to two secrets. It also authenticates clients at the OAuth endpoints. Issuing their tokens is the
// auth package's.
package clients

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
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
	Now    func() time.Time
}

// Service is the clients domain service.
type Service struct {
	store Store
	key   []byte // keys the hash of client secrets
	dummy [MaxSecrets][]byte
	now   func() time.Time
}

// NewService returns a Service.
func NewService(o Options) (*Service, error) {
	if len(o.Secret) < 32 {
		return nil, errors.New("the secret key must be at least 32 bytes")
	}
	key, err := hkdf.Key(sha256.New, o.Secret, nil, "nexus/v1/client-secret-hash", 32)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s := &Service{store: o.Store, key: key, now: func() time.Time { return now().UTC().Truncate(time.Microsecond) }}
	for i := range s.dummy {
		s.dummy[i] = make([]byte, sha256.Size)
		if _, err := rand.Read(s.dummy[i]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// hash returns the keyed hash of a secret, the only form in which secrets are stored.
func (s *Service) hash(secret string) []byte {
	m := hmac.New(sha256.New, s.key)
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
	return plain, Secret{ID: uuid.NewString(), Hash: s.hash(plain), Hint: plain[len(plain)-4:], CreatedAt: now, ExpiresAt: expires}, nil
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
// one read, one hash, MaxSecrets constant-time comparisons. It returns the client and the id of the secret that
// matched ("" for a login client).
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
	now := s.now()
	matched := ""
	for i := range MaxSecrets {
		want, id, live := s.dummy[i], "", false
		if i < len(c.Secrets) {
			sec := c.Secrets[i]
			want, id = sec.Hash, sec.ID
			live = sec.RevokedAt.IsZero() && (sec.ExpiresAt.IsZero() || now.Before(sec.ExpiresAt))
		}
		if hmac.Equal(mac, want) && live {
			matched = id
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
	case matched == "":
		return Client{}, "", ErrAuthentication
	}
	return c, matched, nil
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
