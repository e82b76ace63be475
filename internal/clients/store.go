package clients

import (
	"context"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Store is the storage the clients service needs. Lookups of missing rows return an error that matches
// nexus.ErrNotFound; unreachable storage returns a nexus.KindUnavailable error.
type Store interface {
	// ServiceClients returns the organization's service clients, oldest first, each with its secrets that are
	// not revoked (expired ones included), oldest first.
	ServiceClients(ctx context.Context, orgID string) ([]Client, error)
	// ServiceClient returns the service client registered as clientID if it belongs to the organization, with
	// its secrets as ServiceClients does; nexus.ErrNotFound otherwise (another organization's client too).
	ServiceClient(ctx context.Context, orgID, clientID string) (Client, error)
	// CreateServiceClient stores c, a new service client (every field set by the caller), with its secrets
	// (one), and appends audit to the audit log, in one transaction. A client_id already registered is a
	// conflict (nexus.ErrConflict); an organization that holds MaxPerOrganization service clients already is
	// refused with the error limit returns (called inside the transaction with the organization's count).
	CreateServiceClient(ctx context.Context, c Client, limit func(count int) error, audit Audit) error
	// UpdateServiceClient runs fn on the organization's service client registered as clientID, read inside one
	// transaction that holds the client's row (and its secrets) against other changes and against new tokens
	// (auth's StartServiceSession), and applies the Change fn returns: saves the client's name, scopes,
	// disabled state and updated_at; adds AddSecret; revokes RevokeSecret (its revoked_at set to
	// Change.At) and every live token issued with it; revokes every live token of the client when RevokeTokens;
	// appends Change.Audit. Revoked tokens go through the session revocation log, so every node refuses them at
	// once. An error from fn is returned as is and nothing is written; nexus.ErrNotFound as ServiceClient.
	UpdateServiceClient(ctx context.Context, orgID, clientID string, fn func(c Client) (Change, error)) error
	// Credentials returns the client (of either kind) registered as clientID, with the hashes of its secrets
	// that are not revoked, in one query, for client authentication; nexus.ErrNotFound when there is none.
	Credentials(ctx context.Context, clientID string) (Client, error)
	// RehashSecret replaces the hash of the secret id with hash, made under the secret key keyID, if it is still
	// old, and reports whether it did: of several requests re-hashing one secret at once, one replaces it.
	RehashSecret(ctx context.Context, id string, old, hash []byte, keyID string) (bool, error)
}

// Client is a registered client: a login client (Service false: a public application through which users log
// in, registered by operators) or a service client (a confidential client that acts for itself with the
// client credentials grant, bound to one organization and granted Scopes).
type Client struct {
	ID             string // the row's UUID
	ClientID       string // what the client sends as client_id
	Name           string
	OrganizationID string // a service client's organization; "" for a login client usable by every organization
	Service        bool
	Scopes         nexus.PermissionSet // a service client's grant
	Disabled       bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Secrets        []Secret // not revoked, oldest first
}

// Secret is one of a service client's secrets. Only its keyed hash is stored.
type Secret struct {
	ID         string
	Hash       []byte // HMAC-SHA256 of the secret under the server's client-secret key
	KeyID      string // the id (nexus.SecretKeyID) of the secret key Hash is made under; "": not recorded
	Hint       string // the secret's last 4 characters, to tell secrets apart
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	RevokedAt  time.Time // zero: not revoked
	LastUsedAt time.Time // when a token was last issued with it, as far as the retained tokens tell; zero: never
}

// Change is what UpdateServiceClient writes.
type Change struct {
	At           time.Time // the time of the change (the client's updated_at, a revocation's time)
	Client       Client    // the client to save: name, scopes, disabled, updated_at (its secrets are ignored)
	AddSecret    *Secret
	RevokeSecret string // the id of a secret to revoke, with every live token issued with it
	RevokeTokens string // when not "", revoke every live token of the client, with this reason
	Audit        Audit
}

// Audit is an entry of the audit log about a service client, written with the change it records.
type Audit struct {
	OccurredAt     time.Time
	Action         string // client_create, client_update, client_secret_add, client_secret_revoke
	OrganizationID string
	ActorUserID    string // the user who made the change, "" for a service client or an operator
	ActorClientID  string // the client_id of the actor's token (a service client acting for itself included)
	SessionID      string // the actor's session
	Detail         string // what changed, for people: `client nxc_…: scopes users:read events:write`
}
