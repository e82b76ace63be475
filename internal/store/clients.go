package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Clients implements clients.Store: service clients are the rows of clients whose scopes are not NULL, their
// secrets the rows of client_secrets, and their tokens the rows of service_sessions.
type Clients struct{ db *DB }

var _ clients.Store = (*Clients)(nil)

// NewClients returns the clients store over db.
func NewClients(db *DB) *Clients { return &Clients{db: db} }

// clientSelect reads clients with their secrets that are not revoked (none for a login client), one row per
// secret (one with NULL secret columns for a client without any), in the order clientRows wants. lastUsed
// adds each secret's last use, the creation of the newest token issued with it (from the secret_created index).
func clientSelect(where string, lastUsed bool) string {
	used := "NULL"
	if lastUsed {
		used = "(SELECT MAX(x.created_at) FROM service_sessions x WHERE x.secret_id = s.id)"
	}
	return "SELECT c.id, c.client_id, c.name, c.organization_id, c.disabled_at, c.scopes, c.created_at, c.updated_at, " +
		"s.id, s.hash, s.key_id, s.hint, s.created_at, s.expires_at, " + used +
		" FROM clients c LEFT JOIN client_secrets s ON s.client_ref = c.id AND s.revoked_at IS NULL WHERE " + where +
		" ORDER BY c.created_at, c.id, s.created_at, s.id"
}

// queryClients runs a clientSelect on conn (the pool, or a transaction's connection) and returns its clients.
func (c *Clients) queryClients(ctx context.Context, conn gorm.ConnPool, where string, lastUsed bool, args ...any) ([]clients.Client, error) {
	rows, err := conn.QueryContext(ctx, c.db.rebind(clientSelect(where, lastUsed)), args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []clients.Client
	for rows.Next() {
		var (
			cl                            clients.Client
			org, scopes                   sql.NullString
			disabled, created, updated    timeValue
			secretID, keyID, hint         sql.NullString
			hash                          []byte
			sCreated, sExpires, sLastUsed timeValue
		)
		if err := rows.Scan(&cl.ID, &cl.ClientID, &cl.Name, &org, &disabled, &scopes, &created, &updated,
			&secretID, &hash, &keyID, &hint, &sCreated, &sExpires, &sLastUsed); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].ID != cl.ID {
			cl.OrganizationID, cl.Disabled, cl.CreatedAt, cl.UpdatedAt = org.String, !disabled.t.IsZero(), created.t, updated.t
			cl.Service = scopes.Valid
			cl.Scopes, _ = nexus.ParsePermissionSet(scopes.String) // a scope this version does not know grants nothing
			out = append(out, cl)
		}
		if secretID.Valid {
			last := &out[len(out)-1]
			last.Secrets = append(last.Secrets, clients.Secret{ID: secretID.String, Hash: hash, KeyID: keyID.String, Hint: hint.String,
				CreatedAt: sCreated.t, ExpiresAt: sExpires.t, LastUsedAt: sLastUsed.t})
		}
	}
	return out, rows.Err()
}

// ServiceClients implements clients.Store. A malformed organization id has no clients.
func (c *Clients) ServiceClients(ctx context.Context, orgID string) ([]clients.Client, error) {
	org, ok := canonicalUUID(orgID)
	if !ok {
		return nil, nil
	}
	out, err := c.queryClients(ctx, c.db.sql, "c.organization_id = ? AND c.scopes IS NOT NULL", true, org)
	return out, translate(err)
}

// ServiceClient implements clients.Store.
func (c *Clients) ServiceClient(ctx context.Context, orgID, clientID string) (clients.Client, error) {
	org, ok := canonicalUUID(orgID)
	if !ok {
		return clients.Client{}, nexus.ErrNotFound
	}
	return c.serviceClient(ctx, c.db.sql, org, clientID)
}

// serviceClient reads the organization's service client clientID (org canonical) through conn.
func (c *Clients) serviceClient(ctx context.Context, conn gorm.ConnPool, org, clientID string) (clients.Client, error) {
	out, err := c.queryClients(ctx, conn, "c.client_id = ? AND c.organization_id = ? AND c.scopes IS NOT NULL", true, clientID, org)
	if err != nil {
		return clients.Client{}, translate(err)
	}
	if len(out) == 0 {
		return clients.Client{}, nexus.ErrNotFound
	}
	return out[0], nil
}

// Credentials implements clients.Store in one query, without the secrets' last use. A client_id that is not
// registered reads the decoy client of migration 10 instead (client_id ""), a disabled service client with two
// secrets, so that it costs what a registered client's read costs: the time of an invalid_client answer does not
// tell whether the client exists.
func (c *Clients) Credentials(ctx context.Context, clientID string) (clients.Client, error) {
	out, err := c.queryClients(ctx, c.db.sql, "c.client_id = COALESCE((SELECT client_id FROM clients WHERE client_id = ?), '')", false, clientID)
	if err != nil {
		return clients.Client{}, translate(err)
	}
	if len(out) == 0 || out[0].ClientID == "" {
		return clients.Client{}, nexus.ErrNotFound
	}
	return out[0], nil
}

// RehashSecret implements clients.Store with one conditional UPDATE: of several requests re-hashing one secret at
// once, the first to commit replaces the hash, and the others' statements match nothing.
func (c *Clients) RehashSecret(ctx context.Context, id string, old, hash []byte, keyID string) (bool, error) {
	id, ok := canonicalUUID(id)
	if !ok {
		return false, nil
	}
	res, err := c.db.sql.ExecContext(ctx, c.db.rebind("UPDATE client_secrets SET hash = ?, key_id = ? WHERE id = ? AND hash = ?"), hash, keyID, id, old)
	if err != nil {
		return false, translate(err)
	}
	n, err := res.RowsAffected()
	return n == 1, translate(err)
}

// CreateServiceClient implements clients.Store. The transaction first locks the organization's row (on
// PostgreSQL FOR NO KEY UPDATE, as UpdateUser; on SQLite it holds the write lock from its start), so that
// creations in one organization take turns and the count limit sees is exact. An organization that does not
// exist, or a malformed organization id, is nexus.ErrNotFound.
func (c *Clients) CreateServiceClient(ctx context.Context, cl clients.Client, limit func(count int) error, audit clients.Audit) error {
	org, ok := canonicalUUID(cl.OrganizationID)
	if !ok {
		return nexus.ErrNotFound
	}
	id, ok := canonicalUUID(cl.ID)
	if !ok {
		return nexus.Internal(fmt.Errorf("create service client: id %q is not a UUID", cl.ID))
	}
	cl.ID, cl.OrganizationID = id, org
	err := c.db.transaction(ctx, func(tx *gorm.DB) error {
		conn := tx.Statement.ConnPool
		lock := ""
		if c.db.dialect == Postgres {
			lock = " FOR NO KEY UPDATE"
		}
		var n int
		if err := conn.QueryRowContext(ctx, c.db.rebind("SELECT 1 FROM organizations WHERE id = ?"+lock), org).Scan(&n); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return nexus.ErrNotFound
			}
			return err
		}
		if err := conn.QueryRowContext(ctx, c.db.rebind("SELECT COUNT(*) FROM clients WHERE organization_id = ? AND scopes IS NOT NULL"), org).Scan(&n); err != nil {
			return err
		}
		if err := limit(n); err != nil {
			return errFromFn{err}
		}
		var disabled *time.Time
		if cl.Disabled {
			disabled = optTime(cl.UpdatedAt)
		}
		if _, err := conn.ExecContext(ctx, c.db.rebind("INSERT INTO clients (id, client_id, name, organization_id, disabled_at, scopes, "+
			"created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"), id, cl.ClientID, cl.Name, org, disabled, cl.Scopes.String(),
			cl.CreatedAt.UTC(), cl.UpdatedAt.UTC()); err != nil {
			return err
		}
		for _, s := range cl.Secrets {
			if err := c.insertSecret(ctx, conn, id, s); err != nil {
				return err
			}
		}
		return recordClientChange(tx, audit)
	})
	return fromTx(err)
}
