package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Auth implements auth.Store.
type Auth struct{ db *DB }

var _ auth.Store = (*Auth)(nil)

// NewAuth returns the auth store over db.
func NewAuth(db *DB) *Auth { return &Auth{db: db} }

// canonicalUUID returns id in the lower-case canonical form that both databases store, or false if id is not a
// UUID, so that a malformed id is "not found" rather than a PostgreSQL type error.
func canonicalUUID(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", false
	}
	return u.String(), true
}

// UserByEmail implements auth.Store.
func (a *Auth) UserByEmail(ctx context.Context, email string) (auth.Credentials, error) {
	var r userRow
	if err := a.db.gorm.WithContext(ctx).Where("email_key = ?", nexus.NormalizeEmail(email)).Take(&r).Error; err != nil {
		return auth.Credentials{}, translate(err)
	}
	return auth.Credentials{User: toUser(r), PasswordHash: r.PasswordHash}, nil
}

// ClientByClientID implements auth.Store.
func (a *Auth) ClientByClientID(ctx context.Context, clientID string) (auth.Client, error) {
	var r clientRow
	if err := a.db.gorm.WithContext(ctx).Where("client_id = ? AND client_id <> ''", clientID).Take(&r).Error; err != nil { // not the decoy
		return auth.Client{}, translate(err)
	}
	return toAuthClient(r), nil
}

// StartSession implements auth.Store. On PostgreSQL the user's row is locked FOR SHARE: logins of one user do
// not wait for each other, and a change to the user (an UPDATE, which takes the row FOR NO KEY UPDATE) waits for
// the transaction, or the transaction for the change, whose revocation of the user's sessions then sees this
// one. On SQLite the transaction holds the database's write lock from its start. The audit entry, if any, is
// written in the same transaction: one commit per login.
func (a *Auth) StartSession(ctx context.Context, userID string, fn func(auth.Credentials) (auth.Session, error), audit *auth.AuditEvent) error {
	id, ok := canonicalUUID(userID)
	if !ok {
		return nexus.ErrNotFound
	}
	err := a.db.transaction(ctx, func(tx *gorm.DB) error {
		var u userRow
		if err := tx.Clauses(clause.Locking{Strength: "SHARE"}).Where("id = ?", id).Take(&u).Error; err != nil {
			return err
		}
		s, err := fn(auth.Credentials{User: toUser(u), PasswordHash: u.PasswordHash})
		if err != nil {
			return errFromFn{err}
		}
		r := toSessionRow(s)
		if err := tx.Create(&r).Error; err != nil {
			return err
		}
		if audit == nil {
			return nil
		}
		return insertAuthEvent(ctx, tx.Statement.ConnPool, a.db, *audit)
	})
	return fromTx(err)
}

// Session implements auth.Store.
func (a *Auth) Session(ctx context.Context, id string) (auth.Session, error) {
	id, ok := canonicalUUID(id)
	if !ok {
		return auth.Session{}, nexus.ErrNotFound
	}
	var r sessionRow
	if err := a.db.gorm.WithContext(ctx).Where("id = ?", id).Take(&r).Error; err != nil {
		return auth.Session{}, translate(err)
	}
	return toAuthSession(r), nil
}

// errFromFn carries an error returned by an UpdateSession callback through the transaction unchanged.
type errFromFn struct{ err error }

func (e errFromFn) Error() string { return e.err.Error() }

// fromTx returns the error of a transaction whose callback may have failed: the callback's error as it was,
// anything else translated.
func fromTx(err error) error {
	var fe errFromFn
	if errors.As(err, &fe) {
		return fe.err
	}
	return translate(err)
}

// UpdateSession implements auth.Store. It takes the locks in the order every writer of users and sessions
// does, user first: on PostgreSQL one statement locks the session's user FOR SHARE (as StartSession) and then
// the session FOR UPDATE (its rows are locked in the order of the locking clauses); on SQLite the transaction
// holds the database's write lock from its start. A save writes only the columns fn changed, and the audit
// entry goes in the same transaction (on PostgreSQL in the same statement): one commit per refresh. The hot
// path is plain SQL on the transaction's connection, without GORM's statement building. A session that fn
// revokes is written to the revocation log in the same transaction, and this process's RevocationSinks are told
// once it commits.
func (a *Auth) UpdateSession(ctx context.Context, id string, fn func(*auth.Session, nexus.User) (bool, error), audit *auth.AuditEvent) error {
	id, ok := canonicalUUID(id)
	if !ok {
		return nexus.ErrNotFound
	}
	if a.db.dialect == Postgres {
		return a.pgUpdateSession(ctx, id, fn, audit)
	}
	var revoked []string
	err := a.db.transaction(ctx, func(tx *gorm.DB) error {
		conn := tx.Statement.ConnPool
		r, u, err := a.lockSession(ctx, conn, id)
		if err != nil {
			return err
		}
		user := toUser(u)
		s := toAuthSession(r)
		save, err := fn(&s, user)
		if err != nil {
			return errFromFn{err}
		}
		var cols []string
		var args []any
		if save {
			s.ID = id
			cols, args = sessionChanges(r, toSessionRow(s))
		}
		if err := a.writeSession(ctx, conn, id, cols, args, audit); err != nil {
			return err
		}
		if save && r.RevokedAt == nil && s.Revoked() {
			revoked = []string{id}
			return logRevocations(tx, a.db.dialect, revoked, s.RevokedAt)
		}
		return nil
	})
	if err == nil {
		a.db.revoked(revoked)
	}
	return fromTx(err)
}

// sessionColumns are the columns of refresh_sessions in the order scanSession reads them.
const sessionColumns = "s.id, s.user_id, s.organization_id, s.client_id, s.role, s.device_id, s.salt, s.generation, " +
	"s.rotated_at, s.created_at, s.last_used_at, s.expires_at, s.revoked_at, s.revoked_reason, s.key_id"

// lockSession reads the session with the given id and its user, the user's row locked FOR SHARE before the
// session's FOR UPDATE on PostgreSQL. (A session without its user cannot exist: deleting a user deletes its
// sessions.) A missing session is gorm.ErrRecordNotFound, translated by fromTx.
func (a *Auth) lockSession(ctx context.Context, conn gorm.ConnPool, id string) (sessionRow, userRow, error) {
	return scanLockedSession(conn.QueryRowContext(ctx, a.db.rebind(lockSessionQuery(a.db.dialect)), id))
}

func nullString(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

// sessionChanges returns the columns (with their new values) in which after differs from before.
func sessionChanges(before, after sessionRow) ([]string, []any) {
	var cols []string
	var args []any
	set := func(col string, changed bool, v any) {
		if changed {
			cols, args = append(cols, col), append(args, v)
		}
	}
	set("user_id", before.UserID != after.UserID, after.UserID)
	set("organization_id", before.OrganizationID != after.OrganizationID, after.OrganizationID)
	set("client_id", before.ClientID != after.ClientID, after.ClientID)
	set("role", !equalOptString(before.Role, after.Role), after.Role)
	set("device_id", !equalOptString(before.DeviceID, after.DeviceID), after.DeviceID)
	set("salt", !bytes.Equal(before.Salt, after.Salt), after.Salt)
	set("generation", before.Generation != after.Generation, after.Generation)
	set("rotated_at", !equalOptTime(before.RotatedAt, after.RotatedAt), after.RotatedAt)
	set("created_at", !before.CreatedAt.Equal(after.CreatedAt), after.CreatedAt)
	set("last_used_at", !before.LastUsedAt.Equal(after.LastUsedAt), after.LastUsedAt)
	set("expires_at", !before.ExpiresAt.Equal(after.ExpiresAt), after.ExpiresAt)
	set("revoked_at", !equalOptTime(before.RevokedAt, after.RevokedAt), after.RevokedAt)
	set("revoked_reason", !equalOptString(before.RevokedReason, after.RevokedReason), after.RevokedReason)
	set("key_id", !equalOptString(before.KeyID, after.KeyID), after.KeyID)
	return cols, args
}

func equalOptString(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func equalOptTime(a, b *time.Time) bool { return (a == nil) == (b == nil) && (a == nil || a.Equal(*b)) }

// statement is one SQL statement, with ? placeholders, and its arguments.
type statement struct {
	sql  string
	args []any
}

// sessionWrites returns the statements that update the given columns of the session and record the audit
// entry, whichever there is: on PostgreSQL both in one statement.
func sessionWrites(d Dialect, id string, cols []string, args []any, audit *auth.AuditEvent) []statement {
	var out []statement
	if len(cols) > 0 {
		out = append(out, statement{"UPDATE refresh_sessions SET " + strings.Join(cols, " = ?, ") + " = ? WHERE id = ?", append(args, id)})
	}
	if audit != nil {
		ins, insArgs := authEventInsert(*audit)
		if len(out) == 1 && d == Postgres {
			out[0] = statement{"WITH updated AS (" + out[0].sql + ") " + ins, append(out[0].args, insArgs...)}
		} else {
			out = append(out, statement{ins, insArgs})
		}
	}
	return out
}

// writeSession runs sessionWrites on conn, one statement after the other.
func (a *Auth) writeSession(ctx context.Context, conn gorm.ConnPool, id string, cols []string, args []any, audit *auth.AuditEvent) error {
	for _, st := range sessionWrites(a.db.dialect, id, cols, args, audit) {
		if _, err := conn.ExecContext(ctx, a.db.rebind(st.sql), st.args...); err != nil {
			return err
		}
	}
	return nil
}

// SigningKeys implements auth.Store.
func (a *Auth) SigningKeys(ctx context.Context) ([]auth.SigningKey, error) {
	var rows []signingKeyRow
	if err := a.db.gorm.WithContext(ctx).Order("active_from, created_at, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	keys := make([]auth.SigningKey, len(rows))
	for i, r := range rows {
		keys[i] = toAuthSigningKey(r)
	}
	return keys, nil
}

// AddSigningKey implements auth.Store.
func (a *Auth) AddSigningKey(ctx context.Context, k auth.SigningKey) error {
	r := toSigningKeyRow(k)
	return translate(a.db.gorm.WithContext(ctx).Create(&r).Error)
}

// RecordAuthEvent implements auth.Store.
func (a *Auth) RecordAuthEvent(ctx context.Context, e auth.AuditEvent) error {
	return translate(insertAuthEvent(ctx, a.db.sql, a.db, e))
}

// authEventColumns are the columns of auth_events that authEventInsert writes.
const authEventColumns = "id, occurred_at, action, result, user_id, organization_id, client_id, email_hash, socket_ip, " +
	"reported_ip, device_id, user_agent, session_id, actor_user_id, detail"

// authEventInsert returns the statement (with ? placeholders) that appends e to the audit log, and its arguments.
func authEventInsert(e auth.AuditEvent) (string, []any) {
	r := toAuthEventRow(eventID(), e)
	return "INSERT INTO auth_events (" + authEventColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		[]any{r.ID, r.OccurredAt, r.Action, r.Result, r.UserID, r.OrganizationID, r.ClientID, r.EmailHash, r.SocketIP,
			r.ReportedIP, r.DeviceID, r.UserAgent, r.SessionID, r.ActorUserID, r.Detail}
}

// insertAuthEvent appends e to the audit log through conn (the pool, or a transaction's connection).
func insertAuthEvent(ctx context.Context, conn gorm.ConnPool, db *DB, e auth.AuditEvent) error {
	q, args := authEventInsert(e)
	_, err := conn.ExecContext(ctx, db.rebind(q), args...)
	return err
}

// AuthEvents returns the audit log, oldest first. Tests and later activity reports read it.
func (a *Auth) AuthEvents(ctx context.Context) ([]auth.AuditEvent, error) {
	var rows []authEventRow
	if err := a.db.gorm.WithContext(ctx).Order("occurred_at, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]auth.AuditEvent, len(rows))
	for i, r := range rows {
		out[i] = toAuditEvent(r)
	}
	return out, nil
}

// UserSessions returns every refresh session of a user, oldest first, revoked ones included. Tests and
// operators' tools read it.
func (a *Auth) UserSessions(ctx context.Context, userID string) ([]auth.Session, error) {
	id, ok := canonicalUUID(userID)
	if !ok {
		return nil, nil
	}
	var rows []sessionRow
	if err := a.db.gorm.WithContext(ctx).Where("user_id = ?", id).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]auth.Session, len(rows))
	for i, r := range rows {
		out[i] = toAuthSession(r)
	}
	return out, nil
}
