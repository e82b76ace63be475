package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Pruning of service sessions, on the way of StartServiceSession.
const (
	// servicePruneAfter is how long after it expired a service session is kept: its token is refused by exp
	// anyway, and it still tells when its secret was last used.
	servicePruneAfter = time.Hour
	// servicePruneBatch bounds the expired sessions one token start deletes.
	servicePruneBatch = 100
)

// serviceSessionColumns are the columns of service_sessions in the order scanServiceSession reads them.
const serviceSessionColumns = "id, client_ref, client_id, secret_id, organization_id, scopes, created_at, expires_at, revoked_at, revoked_reason"

// StartServiceSession implements auth.Store. On PostgreSQL the client's row is locked FOR SHARE: token starts of
// one client do not wait for each other, and UpdateServiceClient (FOR UPDATE) waits for them, or they for it,
// whose revocation of the client's live tokens then sees this one. On SQLite the transaction holds the database's
// write lock from its start. The client and the secret are read after the lock is held, by a statement of their
// own, so that they are read as a change that the lock waited for left them. Up to servicePruneBatch sessions of
// the client that expired more than servicePruneAfter before sess was created are deleted (on PostgreSQL only
// rows that no other transaction holds, so that concurrent starts neither wait for nor deadlock with each other).
func (a *Auth) StartServiceSession(ctx context.Context, sess auth.ServiceSession, fn func(auth.ServiceClientState) error, audit *auth.AuditEvent) error {
	ref, ok1 := canonicalUUID(sess.ClientRef)
	secret, ok2 := canonicalUUID(sess.SecretID)
	if !ok1 || !ok2 {
		return nexus.ErrInvalidClient
	}
	id, ok1 := canonicalUUID(sess.ID)
	org, ok2 := canonicalUUID(sess.OrganizationID)
	if !ok1 || !ok2 {
		return nexus.Internal(errors.New("start service session: session or organization id is not a UUID"))
	}
	err := a.db.transaction(ctx, func(tx *gorm.DB) error {
		conn := tx.Statement.ConnPool
		lock, skip := "", ""
		if a.db.dialect == Postgres {
			lock, skip = " FOR SHARE", " FOR UPDATE SKIP LOCKED"
		}
		var st auth.ServiceClientState
		var disabled, revoked, expires timeValue
		var scopes sql.NullString
		err := conn.QueryRowContext(ctx, a.db.rebind("SELECT disabled_at, scopes FROM clients WHERE id = ?"+lock), ref).Scan(&disabled, &scopes)
		if errors.Is(err, sql.ErrNoRows) || err == nil && !scopes.Valid {
			return nexus.ErrInvalidClient
		}
		if err != nil {
			return err
		}
		err = conn.QueryRowContext(ctx, a.db.rebind("SELECT revoked_at, expires_at FROM client_secrets WHERE id = ? AND client_ref = ?"),
			secret, ref).Scan(&revoked, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return nexus.ErrInvalidClient
		}
		if err != nil {
			return err
		}
		st.Disabled, st.SecretRevoked, st.SecretExpiresAt = !disabled.t.IsZero(), !revoked.t.IsZero(), expires.t
		st.Scopes, _ = nexus.ParsePermissionSet(scopes.String)
		if err := fn(st); err != nil {
			return errFromFn{err}
		}
		if _, err := conn.ExecContext(ctx, a.db.rebind("DELETE FROM service_sessions WHERE id IN (SELECT id FROM service_sessions "+
			"WHERE client_ref = ? AND expires_at < ? ORDER BY expires_at LIMIT ?"+skip+")"),
			ref, sess.CreatedAt.Add(-servicePruneAfter).UTC(), servicePruneBatch); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, a.db.rebind("INSERT INTO service_sessions ("+serviceSessionColumns+
			") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), id, ref, sess.ClientID, secret, org, sess.Scopes.String(),
			sess.CreatedAt.UTC(), sess.ExpiresAt.UTC(), optTime(sess.RevokedAt), optString(sess.RevokedReason)); err != nil {
			return err
		}
		if audit == nil {
			return nil
		}
		return insertAuthEvent(ctx, conn, a.db, *audit)
	})
	return fromTx(err)
}

// ServiceSession implements auth.Store.
func (a *Auth) ServiceSession(ctx context.Context, id string) (auth.ServiceSession, error) {
	id, ok := canonicalUUID(id)
	if !ok {
		return auth.ServiceSession{}, nexus.ErrNotFound
	}
	s, err := scanServiceSession(a.db.sql.QueryRowContext(ctx, a.db.rebind("SELECT "+serviceSessionColumns+" FROM service_sessions WHERE id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.ServiceSession{}, nexus.ErrNotFound
	}
	return s, translate(err)
}

// scanServiceSession scans a row of serviceSessionColumns.
func scanServiceSession(row rowScanner) (auth.ServiceSession, error) {
	var (
		s                         auth.ServiceSession
		scopes                    string
		created, expires, revoked timeValue
		reason                    sql.NullString
	)
	if err := row.Scan(&s.ID, &s.ClientRef, &s.ClientID, &s.SecretID, &s.OrganizationID, &scopes, &created, &expires, &revoked, &reason); err != nil {
		return auth.ServiceSession{}, err
	}
	s.Scopes, _ = nexus.ParsePermissionSet(scopes)
	s.CreatedAt, s.ExpiresAt, s.RevokedAt, s.RevokedReason = created.t, expires.t, revoked.t, reason.String
	return s, nil
}

// RevokeServiceSession implements auth.Store. The session is written to the revocation log in the transaction
// that revokes it, and this process's RevocationSinks are told once it commits.
func (a *Auth) RevokeServiceSession(ctx context.Context, id, reason string, at time.Time) error {
	id, ok := canonicalUUID(id)
	if !ok {
		return nexus.ErrNotFound
	}
	var revoked []string
	err := a.db.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Raw("UPDATE service_sessions SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
			at.UTC(), reason, id).Scan(&revoked).Error; err != nil {
			return err
		}
		if len(revoked) == 0 {
			var n int64
			if err := tx.Table("service_sessions").Where("id = ?", id).Count(&n).Error; err != nil {
				return err
			}
			if n == 0 {
				return nexus.ErrNotFound
			}
			return nil
		}
		return logRevocations(tx, a.db.dialect, revoked, at)
	})
	if err != nil {
		return translate(err)
	}
	a.db.revoked(revoked)
	return nil
}
