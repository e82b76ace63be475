package auth

import (
	"context"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Store is the storage the auth service needs. Lookups of missing rows return an error that matches
// nexus.ErrNotFound; unreachable storage returns a nexus.KindUnavailable error.
type Store interface {
	// UserByEmail returns the user whose normalized email is email, with its password hash.
	UserByEmail(ctx context.Context, email string) (Credentials, error)
	// ClientByClientID returns the client registered under clientID.
	ClientByClientID(ctx context.Context, clientID string) (Client, error)

	// StartSession runs fn on the user with the given id, read inside one transaction that holds the user's
	// row against changes (of role, status or password, which revoke the user's sessions in a transaction of
	// their own) until the session fn returns is stored: a session is never started from rights that a change
	// committed meanwhile has taken away. An error from fn is returned as is and nothing is stored; a user that
	// does not exist is nexus.ErrNotFound, fn not called. When audit is not nil and fn succeeds, the entry, as
	// fn left it, is appended to the audit log in the same transaction.
	StartSession(ctx context.Context, userID string, fn func(u Credentials) (Session, error), audit *AuditEvent) error
	// Session returns the refresh session with the given id.
	Session(ctx context.Context, id string) (Session, error)
	// UpdateSession runs fn on the session with the given id and on its user, inside one transaction that holds
	// the user's row as StartSession does and the session locked, and saves the session if fn returns save=true
	// and a nil error. An error from fn is returned as is, and nothing is written. When audit is not nil and fn
	// returns a nil error, the entry, as fn left it, is appended to the audit log in the same transaction (so a
	// refused refresh commits its entry, and a revocation its entry with it).
	UpdateSession(ctx context.Context, id string, fn func(s *Session, u nexus.User) (save bool, err error), audit *AuditEvent) error

	// StartServiceSession stores sess, the session of one access token of a service client (the client
	// credentials grant), in one transaction that holds the client's row (as clients' UpdateServiceClient does:
	// a disable, a scope change or a secret's revocation revokes the client's live tokens in a transaction of its
	// own) and re-reads the client and the secret the token is issued with: fn is called with them as they are
	// now, and an error from it is returned as is, nothing stored. A client or secret that no longer exists is
	// nexus.ErrInvalidClient. When audit is not nil and fn succeeds, the entry is appended in the same
	// transaction. Expired sessions of the client are deleted on the way, so that they do not pile up.
	StartServiceSession(ctx context.Context, sess ServiceSession, fn func(c ServiceClientState) error, audit *AuditEvent) error
	// ServiceSession returns the service session with the given id.
	ServiceSession(ctx context.Context, id string) (ServiceSession, error)
	// RevokeServiceSession revokes the service session with the given id at the given time, through the
	// revocation log; revoking a revoked session changes nothing. nexus.ErrNotFound when there is none.
	RevokeServiceSession(ctx context.Context, id, reason string, at time.Time) error

	// SigningKeys returns every stored signing key, oldest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// AddSigningKey stores a new signing key.
	AddSigningKey(ctx context.Context, k SigningKey) error
	// ResealSigningKey replaces the sealed private key of the signing key id with sealed if it is still old, and
	// reports whether it did: of several nodes re-sealing one key at once, one replaces it and the others find
	// it replaced already.
	ResealSigningKey(ctx context.Context, id string, old, sealed []byte) (bool, error)

	// LabelSecretKeyID records keyID as the secret key of every refresh session and client secret stored
	// without one (made before key ids were recorded).
	LabelSecretKeyID(ctx context.Context, keyID string) error
	// SecretKeyUsage counts what still depends on the secret key keyID: refresh sessions that are live at now
	// (not revoked, before their absolute expiry, used after idleSince) whose newest token keyID minted, and
	// client secrets that are not revoked nor expired at now hashed under it (disabled clients' too: they may be
	// enabled again). With unlabelled, rows without a key id count too.
	SecretKeyUsage(ctx context.Context, keyID string, unlabelled bool, now, idleSince time.Time) (SecretKeyUsage, error)

	// RecordAuthEvent appends an entry to the auth audit log.
	RecordAuthEvent(ctx context.Context, e AuditEvent) error
}

// Credentials is a user together with the password hash that proves it.
type Credentials struct {
	User         nexus.User
	PasswordHash string
}

// Client is an application that may request tokens.
type Client struct {
	ID             string
	ClientID       string
	Name           string
	OrganizationID string // empty: any organization's users may log in through it
	Disabled       bool
	Service        bool // a service client (client credentials grant), through which no user logs in
}

// ServiceSession is what one access token of a service client (client credentials grant) is checked against
// while it lives: it has no refresh token, and expires with its access token.
type ServiceSession struct {
	ID             string
	ClientRef      string // the client's row id
	ClientID       string // its client_id
	SecretID       string // the secret the token was issued with
	OrganizationID string
	Scopes         nexus.PermissionSet // the token's scopes
	CreatedAt      time.Time
	ExpiresAt      time.Time
	RevokedAt      time.Time // zero while not revoked
	RevokedReason  string
}

// ServiceClientState is a service client and one of its secrets as StartServiceSession reads them.
type ServiceClientState struct {
	Disabled        bool
	Scopes          nexus.PermissionSet
	SecretRevoked   bool
	SecretExpiresAt time.Time // zero: never
}

// Session is a refresh session: the chain of refresh tokens that one login started. The refresh token of
// generation g is derived from the session's secret salt and g, so no token is ever stored.
type Session struct {
	ID             string
	UserID         string
	OrganizationID string
	ClientID       string
	Role           nexus.Role // the user's role when the session's newest access token was issued
	DeviceID       string     // empty until the first refresh that carries a device_id
	Salt           []byte
	Generation     int64     // generation of the newest refresh token
	RotatedAt      time.Time // when Generation last moved on; zero before the first refresh
	CreatedAt      time.Time
	LastUsedAt     time.Time
	ExpiresAt      time.Time // absolute expiry
	RevokedAt      time.Time // zero while not revoked
	RevokedReason  string
	// KeyID is the id (nexus.SecretKeyID) of the secret key that minted the token of Generation; "" for a
	// session whose token was minted before key ids were recorded.
	KeyID string
}

// Revoked reports whether the session has been revoked.
func (s Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// SigningKey is an ES256 key that signs access tokens. The private key is sealed with the server's secret.
type SigningKey struct {
	ID         string // the kid
	Algorithm  string
	PublicJWK  []byte
	Sealed     []byte
	CreatedAt  time.Time
	ActiveFrom time.Time // published from CreatedAt, signs from ActiveFrom
}

// AuditEvent is one entry of the auth audit log.
type AuditEvent struct {
	OccurredAt     time.Time
	Action         string // login, refresh, logout; user_create, user_update (written by the users store)
	Result         string // success, or the error code
	UserID         string
	OrganizationID string
	ClientID       string
	EmailHash      string // keyed hash of the normalized email, for failed logins of unknown emails
	SocketIP       string
	ReportedIP     string
	DeviceID       string
	UserAgent      string
	SessionID      string
	ActorUserID    string // who made a user-management change
	Detail         string // what a user-management change changed
}

// SecretKeyUsage is what SecretKeyUsage counts.
type SecretKeyUsage struct {
	Sessions int // live refresh sessions
	// SessionsLastUse and SessionsExpireBy are the latest last use and the latest absolute expiry among those
	// sessions (zero when there are none): the last of them ends by the earlier of SessionsLastUse plus the idle
	// timeout and SessionsExpireBy, unless it is used again.
	SessionsLastUse  time.Time
	SessionsExpireBy time.Time
	ClientSecrets    int // client secrets
}
