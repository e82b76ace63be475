package store

import (
	"context"
	"errors"

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
	if err := a.db.gorm.WithContext(ctx).Where("client_id = ?", clientID).Take(&r).Error; err != nil {
		return auth.Client{}, translate(err)
	}
	return toAuthClient(r), nil
}

// StartSession implements auth.Store. On PostgreSQL the user's row is locked FOR SHARE: logins of one user do
// not wait for each other, and a change to the user (an UPDATE, which takes the row FOR NO KEY UPDATE) waits for
// the transaction, or the transaction for the change, whose revocation of the user's sessions then sees this
// one. On SQLite the transaction holds the database's write lock from its start.
func (a *Auth) StartSession(ctx context.Context, userID string, fn func(auth.Credentials) (auth.Session, error)) error {
	id, ok := canonicalUUID(userID)
	if !ok {
		return nexus.ErrNotFound
	}
	err := a.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var u userRow
		if err := tx.Clauses(clause.Locking{Strength: "SHARE"}).Where("id = ?", id).Take(&u).Error; err != nil {
			return err
		}
		s, err := fn(auth.Credentials{User: toUser(u), PasswordHash: u.PasswordHash})
		if err != nil {
			return errFromFn{err}
		}
		r := toSessionRow(s)
		return tx.Create(&r).Error
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
// does, user first: on PostgreSQL the session's user FOR SHARE (as StartSession), then the session FOR UPDATE;
// on SQLite the transaction holds the database's write lock from its start. A session that fn revokes is
// written to the revocation log in the same transaction, and this process's RevocationSinks are told once it
// commits.
func (a *Auth) UpdateSession(ctx context.Context, id string, fn func(*auth.Session, nexus.User) (bool, error)) error {
	id, ok := canonicalUUID(id)
	if !ok {
		return nexus.ErrNotFound
	}
	var revoked []string
	err := a.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var users []userRow
		if err := tx.Table("users").Select("users.*").
			Joins("JOIN refresh_sessions ON refresh_sessions.user_id = users.id").
			Where("refresh_sessions.id = ?", id).
			Clauses(clause.Locking{Strength: "SHARE", Table: clause.Table{Name: "users"}}).
			Find(&users).Error; err != nil {
			return err
		}
		var r sessionRow
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&r).Error; err != nil {
			return err
		}
		var user nexus.User
		if len(users) == 1 {
			user = toUser(users[0])
		}
		s := toAuthSession(r)
		save, err := fn(&s, user)
		if err != nil {
			return errFromFn{err}
		}
		if !save {
			return nil
		}
		s.ID = id
		updated := toSessionRow(s)
		if err := tx.Save(&updated).Error; err != nil {
			return err
		}
		if r.RevokedAt == nil && s.Revoked() {
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
	r := toAuthEventRow(eventID(), e)
	return translate(a.db.gorm.WithContext(ctx).Create(&r).Error)
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
