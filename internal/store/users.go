package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/maypok86/otter/v2"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// Users implements users.Store.
type Users struct {
	db    *DB
	pages *otter.Cache[pageKey, pageStart]
}

var _ users.Store = (*Users)(nil)

// pageCacheEntries bounds the page starts a Users store remembers (about 150 bytes each).
const pageCacheEntries = 10_000

// NewUsers returns the users store over db.
func NewUsers(db *DB) *Users {
	return &Users{db: db, pages: otter.Must(&otter.Options[pageKey, pageStart]{MaximumSize: pageCacheEntries})}
}

// User implements users.Store.
func (u *Users) User(ctx context.Context, orgID, userID string) (nexus.User, error) {
	org, ok1 := canonicalUUID(orgID)
	id, ok2 := canonicalUUID(userID)
	if !ok1 || !ok2 {
		return nexus.User{}, nexus.ErrNotFound
	}
	var (
		r                nexus.User
		role, status     string
		created, updated timeValue
	)
	err := u.db.sql.QueryRowContext(ctx, u.db.rebind("SELECT "+listColumns+" FROM users WHERE id = ? AND organization_id = ?"), id, org).
		Scan(&r.ID, &r.OrganizationID, &r.Email, &r.Name, &role, &status, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nexus.User{}, nexus.ErrNotFound
	}
	if err != nil {
		return nexus.User{}, translate(err)
	}
	r.Role, r.Status, r.CreatedAt, r.UpdatedAt = nexus.Role(role), nexus.UserStatus(status), created.t, updated.t
	return r, nil
}

// LoginActivity implements users.Store from the auth audit log and the refresh sessions.
func (u *Users) LoginActivity(ctx context.Context, orgID, userID string, since, now time.Time, idleTTL time.Duration) (users.Activity, error) {
	org, ok1 := canonicalUUID(orgID)
	id, ok2 := canonicalUUID(userID)
	if !ok1 || !ok2 {
		return users.Activity{}, nexus.ErrNotFound
	}
	db := u.db.gorm.WithContext(ctx)
	var a users.Activity
	var last []authEventRow
	if err := db.Where("user_id = ? AND organization_id = ? AND action = 'login' AND result = 'success'", id, org).
		Order("occurred_at DESC").Limit(1).Find(&last).Error; err != nil {
		return a, translate(err)
	}
	if len(last) == 1 {
		a.LastLoginAt, a.LastLoginIP = last[0].OccurredAt.UTC(), fromOptString(last[0].ReportedIP)
	}
	var counts struct{ Succeeded, Failed int64 }
	if err := db.Model(&authEventRow{}).
		Select("COUNT(CASE WHEN result = 'success' THEN 1 END) AS succeeded, COUNT(CASE WHEN result <> 'success' THEN 1 END) AS failed").
		Where("user_id = ? AND organization_id = ? AND action = 'login' AND occurred_at >= ?", id, org, since.UTC()).
		Scan(&counts).Error; err != nil {
		return a, translate(err)
	}
	a.Logins, a.FailedLogins = int(counts.Succeeded), int(counts.Failed)
	live := db.Model(&sessionRow{}).Where("user_id = ? AND organization_id = ? AND revoked_at IS NULL AND expires_at > ?",
		id, org, now.UTC())
	if idleTTL > 0 {
		live = live.Where("last_used_at > ?", now.Add(-idleTTL).UTC())
	}
	var sessions int64
	if err := live.Count(&sessions).Error; err != nil {
		return a, translate(err)
	}
	a.ActiveSessions = int(sessions)
	ev, err := u.eventActivity(ctx, org, id, since)
	if err != nil {
		return a, err
	}
	a.Events = ev
	return a, nil
}

// eventActivity reads a user's event rollups: totals, and the days after the day of since.
func (u *Users) eventActivity(ctx context.Context, org, id string, since time.Time) (users.EventActivity, error) {
	var ev users.EventActivity
	var last timeValue
	err := u.db.sql.QueryRowContext(ctx, u.db.rebind("SELECT total, last_event_at FROM user_event_stats WHERE organization_id = ? AND user_id = ?"),
		org, id).Scan(&ev.Total, &last)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ev, nil
	case err != nil:
		return ev, translate(err)
	}
	ev.LastEventAt = last.t
	rows, err := u.db.sql.QueryContext(ctx, u.db.rebind("SELECT day, count FROM user_event_days WHERE organization_id = ? AND user_id = ? AND day >= ? ORDER BY day"),
		org, id, since.Add(24*time.Hour).UTC().Format(time.DateOnly)) // the 30 days ending today, as the login window

	if err != nil {
		return ev, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var d users.DayCount
		if err := rows.Scan(&d.Day, &d.Count); err != nil {
			return ev, translate(err)
		}
		ev.Days = append(ev.Days, d)
	}
	return ev, translate(rows.Err())
}

// CreateUser implements users.Store.
func (u *Users) CreateUser(ctx context.Context, user nexus.User, passwordHash string, by users.Actor) (nexus.User, error) {
	var created nexus.User
	err := u.db.transaction(ctx, func(tx *gorm.DB) error {
		var err error
		if created, err = createUser(tx, user, passwordHash); err != nil {
			return err
		}
		return recordUserChange(tx, "user_create", created, by, created.CreatedAt,
			"role="+string(created.Role)+" status="+string(created.Status))
	})
	err = translate(err)
	if err != nil && nexus.KindOf(err) == nexus.KindConflict {
		e := *users.ErrEmailTaken
		e.Err = err
		return nexus.User{}, &e
	}
	return created, err
}

// createUser stores a new user with a time-ordered (version 7) id.
func createUser(db *gorm.DB, user nexus.User, passwordHash string) (nexus.User, error) {
	if id, ok := canonicalUUID(user.OrganizationID); ok {
		user.OrganizationID = id
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nexus.User{}, nexus.Internal(err)
	}
	t := now()
	user.ID, user.CreatedAt, user.UpdatedAt = id.String(), t, t
	r := toUserRow(user, passwordHash)
	if err := db.Create(&r).Error; err != nil {
		return nexus.User{}, translate(err)
	}
	return toUser(r), nil
}

// UpdateUser implements users.Store. The transaction first locks the organization's row, so that concurrent
// changes to one organization's users take turns and what fn decides from (the user and the count of active
// admins) cannot be raced; on PostgreSQL the lock is FOR NO KEY UPDATE, which does not block the foreign-key
// checks of inserts that reference the organization (logins, new users); on SQLite the transaction holds the
// database's write lock from its start. One statement then reads the user and counts the active admins.
func (u *Users) UpdateUser(ctx context.Context, orgID, userID string, fn func(users.Locked) (users.Write, bool, error)) (nexus.User, error) {
	org, ok1 := canonicalUUID(orgID)
	id, ok2 := canonicalUUID(userID)
	if !ok1 || !ok2 {
		return nexus.User{}, nexus.ErrNotFound
	}
	var out nexus.User
	var revoked []string
	err := u.db.transaction(ctx, func(tx *gorm.DB) error {
		var o organizationRow
		if err := tx.Clauses(clause.Locking{Strength: "NO KEY UPDATE"}).Where("id = ?", org).Take(&o).Error; err != nil {
			return err
		}
		cur, err := lockedUser(tx, org, id)
		if err != nil {
			return err
		}
		w, save, err := fn(cur)
		if err != nil {
			return errFromFn{err}
		}
		if !save {
			out = cur.User
			return nil
		}
		after := w.User
		after.ID, after.OrganizationID, after.Email, after.CreatedAt = cur.User.ID, cur.User.OrganizationID, cur.User.Email, cur.User.CreatedAt
		after.UpdatedAt = after.UpdatedAt.UTC().Truncate(time.Microsecond)
		if err := tx.Model(&userRow{}).Where("id = ?", id).Updates(map[string]any{
			"name": after.Name, "role": string(after.Role), "status": string(after.Status), "updated_at": after.UpdatedAt,
		}).Error; err != nil {
			return err
		}
		if err := recordUserChange(tx, "user_update", after, w.By, after.UpdatedAt, w.Detail); err != nil {
			return err
		}
		if w.Revoke != "" {
			if revoked, err = revokeUserSessions(tx, u.db.dialect, id, w.Revoke, after.UpdatedAt); err != nil {
				return err
			}
		}
		out = after
		return nil
	})
	if err != nil {
		return nexus.User{}, fromTx(err)
	}
	u.db.revoked(revoked)
	return out, nil
}

// lockedUser reads a user of the organization and counts the organization's active admins, in one statement.
func lockedUser(tx *gorm.DB, org, id string) (users.Locked, error) {
	var (
		l                users.Locked
		role, status     string
		created, updated timeValue
	)
	err := tx.Raw("SELECT "+listColumnsOf("u")+", (SELECT COUNT(*) FROM users a WHERE a.organization_id = u.organization_id"+
		" AND a.status = ? AND a.role = ?) FROM users u WHERE u.id = ? AND u.organization_id = ?",
		string(nexus.UserActive), string(nexus.RoleAdmin), id, org).Row().
		Scan(&l.User.ID, &l.User.OrganizationID, &l.User.Email, &l.User.Name, &role, &status, &created, &updated, &l.ActiveAdmins)
	if errors.Is(err, sql.ErrNoRows) {
		return l, nexus.ErrNotFound
	}
	l.User.Role, l.User.Status, l.User.CreatedAt, l.User.UpdatedAt = nexus.Role(role), nexus.UserStatus(status), created.t, updated.t
	return l, err
}

// CreateOrganization implements users.Store.
func (u *Users) CreateOrganization(ctx context.Context, name string, by users.Actor) (users.Organization, error) {
	var o users.Organization
	err := u.db.transaction(ctx, func(tx *gorm.DB) error {
		var err error
		if o, err = createOrganization(tx, name); err != nil {
			return err
		}
		r := toAuthEventRow(eventID(), auth.AuditEvent{OccurredAt: o.CreatedAt, Action: "organization_create", Result: "success",
			OrganizationID: o.ID, ClientID: by.ClientID, SessionID: by.SessionID, ActorUserID: by.UserID})
		return tx.Create(&r).Error
	})
	return o, translate(err)
}

// recordUserChange appends a user-management entry to the audit log, in the transaction of the change.
func recordUserChange(tx *gorm.DB, action string, subject nexus.User, by users.Actor, at time.Time, detail string) error {
	r := toAuthEventRow(eventID(), auth.AuditEvent{OccurredAt: at, Action: action, Result: "success",
		UserID: subject.ID, OrganizationID: subject.OrganizationID, ClientID: by.ClientID, SessionID: by.SessionID,
		ActorUserID: by.UserID, Detail: detail})
	return tx.Create(&r).Error
}

// revokeUserSessions revokes every session of the user that is not revoked yet, writes them to the revocation
// log, and returns their ids.
func revokeUserSessions(tx *gorm.DB, dialect Dialect, userID, reason string, at time.Time) ([]string, error) {
	var ids []string
	if err := tx.Raw("UPDATE refresh_sessions SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL RETURNING id",
		at.UTC(), reason, userID).Scan(&ids).Error; err != nil {
		return nil, err
	}
	return ids, logRevocations(tx, dialect, ids, at)
}
