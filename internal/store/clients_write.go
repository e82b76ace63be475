package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// UpdateServiceClient implements clients.Store; the Change's Client must be the client fn was given (its ID
// included), changed. The transaction first locks the client's row (on PostgreSQL FOR
// UPDATE, which waits for the token starts that hold it FOR SHARE and makes new ones wait; on SQLite it holds
// the write lock from its start) and then reads the client and its secrets, in a statement of their own so that
// they are read as the change it waited for left them. The tokens it revokes are written to the revocation log
// in the same transaction, and this process's RevocationSinks are told once it commits.
func (c *Clients) UpdateServiceClient(ctx context.Context, orgID, clientID string, fn func(clients.Client) (clients.Change, error)) error {
	org, ok := canonicalUUID(orgID)
	if !ok {
		return nexus.ErrNotFound
	}
	var revoked []string
	err := c.db.transaction(ctx, func(tx *gorm.DB) error {
		conn := tx.Statement.ConnPool
		lock := ""
		if c.db.dialect == Postgres {
			lock = " FOR UPDATE"
		}
		var id string
		var disabled timeValue
		err := conn.QueryRowContext(ctx, c.db.rebind("SELECT id, disabled_at FROM clients WHERE client_id = ? AND organization_id = ? AND scopes IS NOT NULL"+lock),
			clientID, org).Scan(&id, &disabled)
		if errors.Is(err, sql.ErrNoRows) {
			return nexus.ErrNotFound
		}
		if err != nil {
			return err
		}
		cur, err := c.serviceClient(ctx, conn, org, clientID)
		if err != nil {
			return err
		}
		ch, err := fn(cur)
		if err != nil {
			return errFromFn{err}
		}
		revoked, err = c.applyChange(ctx, tx, cur, disabled.t, ch)
		return err
	})
	if err != nil {
		return fromTx(err)
	}
	c.db.revoked(revoked)
	return nil
}

// applyChange writes ch to the client cur (disabled since wasDisabled, zero if it is not), inside the transaction
// that holds its row, and returns the ids of the tokens it revoked.
func (c *Clients) applyChange(ctx context.Context, tx *gorm.DB, cur clients.Client, wasDisabled time.Time, ch clients.Change) ([]string, error) {
	if ch.Client.ID != cur.ID {
		// A Change whose Client is not the one fn was given would overwrite the client's name and scopes with
		// whatever it holds (a zero Client: none).
		return nil, nexus.Internal(errors.New("update service client: the change's client is not the client read"))
	}
	conn := tx.Statement.ConnPool
	at := ch.At.UTC()
	updated := at // the time of the change is the client's updated_at
	if at.IsZero() {
		updated = ch.Client.UpdatedAt
	}
	var disabled *time.Time
	switch {
	case ch.Client.Disabled && !wasDisabled.IsZero():
		disabled = &wasDisabled
	case ch.Client.Disabled:
		disabled = &at
	}
	if _, err := conn.ExecContext(ctx, c.db.rebind("UPDATE clients SET name = ?, scopes = ?, disabled_at = ?, updated_at = ? WHERE id = ?"),
		ch.Client.Name, ch.Client.Scopes.String(), disabled, updated.UTC(), cur.ID); err != nil {
		return nil, err
	}
	if ch.AddSecret != nil {
		if err := c.insertSecret(ctx, conn, cur.ID, *ch.AddSecret); err != nil {
			return nil, err
		}
	}
	var revoked []string
	if ch.RevokeSecret != "" {
		id, ok := canonicalUUID(ch.RevokeSecret)
		if !ok {
			return nil, nexus.ErrNotFound
		}
		res, err := conn.ExecContext(ctx, c.db.rebind("UPDATE client_secrets SET revoked_at = ? WHERE id = ? AND client_ref = ? AND revoked_at IS NULL"),
			at, id, cur.ID)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return nil, errors.Join(err, nexus.ErrNotFound)
		}
		ids, err := revokeServiceSessions(tx, "secret_id = ?", id, clients.RevokedSecret, at)
		if err != nil {
			return nil, err
		}
		revoked = append(revoked, ids...)
	}
	if ch.RevokeTokens != "" {
		ids, err := revokeServiceSessions(tx, "client_ref = ?", cur.ID, ch.RevokeTokens, at)
		if err != nil {
			return nil, err
		}
		revoked = append(revoked, ids...)
	}
	if err := logRevocations(tx, c.db.dialect, revoked, at); err != nil {
		return nil, err
	}
	return revoked, recordClientChange(tx, ch.Audit)
}

// insertSecret stores s, a secret of the client with the given row id.
func (c *Clients) insertSecret(ctx context.Context, conn gorm.ConnPool, clientRef string, s clients.Secret) error {
	id, ok := canonicalUUID(s.ID)
	if !ok {
		return nexus.Internal(errors.New("store client secret: id is not a UUID"))
	}
	_, err := conn.ExecContext(ctx, c.db.rebind("INSERT INTO client_secrets (id, client_ref, hash, key_id, hint, created_at, expires_at, revoked_at) "+
		"VALUES (?, ?, ?, ?, ?, ?, ?, ?)"), id, clientRef, s.Hash, optString(s.KeyID), s.Hint, s.CreatedAt.UTC(), optTime(s.ExpiresAt), optTime(s.RevokedAt))
	return err
}

// revokeServiceSessions revokes the live service sessions (not revoked, not expired at at) that match where (one
// ? for arg) with the given reason, and returns their ids; the caller writes them to the revocation log.
func revokeServiceSessions(tx *gorm.DB, where string, arg any, reason string, at time.Time) ([]string, error) {
	var ids []string
	err := tx.Raw("UPDATE service_sessions SET revoked_at = ?, revoked_reason = ? WHERE "+where+
		" AND revoked_at IS NULL AND expires_at > ? RETURNING id", at.UTC(), reason, arg, at.UTC()).Scan(&ids).Error
	return ids, err
}

// recordClientChange appends a service client's audit entry to the audit log, in the transaction of the change.
func recordClientChange(tx *gorm.DB, a clients.Audit) error {
	r := toAuthEventRow(eventID(), auth.AuditEvent{OccurredAt: a.OccurredAt, Action: a.Action, Result: "success",
		OrganizationID: a.OrganizationID, ClientID: a.ActorClientID, SessionID: a.SessionID, ActorUserID: a.ActorUserID,
		Detail: a.Detail})
	return tx.Create(&r).Error
}
