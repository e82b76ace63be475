package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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

// pageKey names a page of a listing: organization, filter and offset.
type pageKey struct {
	org    string
	status nexus.UserStatus
	role   nexus.Role
	offset int
}

// pageStart is where a page started when it was last read on PostgreSQL: the (created_at, id) of its first
// user, and the version of the listing's membership then (the sum of the changes of the filter's counters,
// which every insert, delete or move of a matching user raises in its own transaction). While the version is
// the same, the listing holds the same users in the same (immutable) order, so the page still starts there,
// and it is read from there through the index instead of skipping offset entries: a deep page costs what the
// first page costs. Each page read also remembers where the next one starts, so paging through a listing in
// order finds every page's start.
type pageStart struct {
	version   int64
	createdAt time.Time
	id        [16]byte
}

// ListUsers implements users.Store with one statement, so that the total and the page come from one snapshot:
// the total is the sum of the organization's counters (user_counts, at most one per role and status, kept by
// triggers in the transaction of every change to users), the page is read in the order of the index
// (organization_id, created_at, id), or of its status or role variant when that filter is set.
func (u *Users) ListUsers(ctx context.Context, orgID string, q users.ListQuery) ([]nexus.User, int, error) {
	org, ok := canonicalUUID(orgID)
	if !ok {
		return []nexus.User{}, 0, nil
	}
	if u.db.dialect == Postgres {
		return u.pgListUsers(ctx, org, q)
	}
	query, args := u.listUsersSQL(org, q, nil)
	rows, err := u.db.sql.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, translate(err)
	}
	defer rows.Close()
	out := make([]nexus.User, 0, q.Limit)
	var total int64
	for rows.Next() {
		var (
			id, orgCol, email, name, role, status sql.NullString
			created, updated                      timeValue
		)
		var version int64
		if err := rows.Scan(&total, &version, &id, &orgCol, &email, &name, &role, &status, &created, &updated); err != nil {
			return nil, 0, translate(err)
		}
		if !id.Valid { // the page is empty: the one row carries only the total
			continue
		}
		out = append(out, nexus.User{ID: id.String, OrganizationID: orgCol.String, Email: email.String, Name: name.String,
			Role: nexus.Role(role.String), Status: nexus.UserStatus(status.String), CreatedAt: created.t, UpdatedAt: updated.t})
	}
	if err := rows.Err(); err != nil {
		return nil, 0, translate(err)
	}
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, int(total), nil
}

// pgListUsers is ListUsers on PostgreSQL: from the page's remembered start when its version still holds (see
// pageStart), otherwise by offset; either way it remembers where this page and the next start.
func (u *Users) pgListUsers(ctx context.Context, org string, q users.ListQuery) ([]nexus.User, int, error) {
	key := pageKey{org: org, status: q.Status, role: q.Role, offset: q.Offset}
	if q.Offset > 0 {
		if st, ok := u.pages.GetIfPresent(key); ok {
			page, total, version, err := u.pgListPage(ctx, org, q, &st)
			if err != nil {
				return nil, 0, err
			}
			if version == st.version {
				return u.remember(key, q, page, version), total, nil
			}
		}
	}
	page, total, version, err := u.pgListPage(ctx, org, q, nil)
	if err != nil {
		return nil, 0, err
	}
	return u.remember(key, q, page, version), total, nil
}

// listed is a user of a page, with its key as stored.
type listed struct {
	user nexus.User
	id   [16]byte
}

// remember records where the page (read with one user more than its limit) and the next one start, and
// returns the page.
func (u *Users) remember(key pageKey, q users.ListQuery, page []listed, version int64) []nexus.User {
	if len(page) > 0 && key.offset > 0 {
		u.pages.Set(key, pageStart{version: version, createdAt: page[0].user.CreatedAt, id: page[0].id})
	}
	if len(page) > q.Limit {
		if next := key.offset + q.Limit; next <= users.MaxOffset {
			n := page[q.Limit]
			u.pages.Set(pageKey{org: key.org, status: key.status, role: key.role, offset: next},
				pageStart{version: version, createdAt: n.user.CreatedAt, id: n.id})
		}
		page = page[:q.Limit]
	}
	out := make([]nexus.User, len(page))
	for i := range page {
		out[i] = page[i].user
	}
	return out
}

// pgListPage runs the listing's statement from start (or by offset when nil), scanning with pgx's own types
// (through database/sql every column of 50 rows would first become a driver.Value, a fifth of a listing's CPU),
// and returns up to one user more than the limit, the total and the version.
func (u *Users) pgListPage(ctx context.Context, org string, q users.ListQuery, start *pageStart) ([]listed, int, int64, error) {
	query, args := u.listUsersSQL(org, q, start)
	out := make([]listed, 0, q.Limit+1)
	var total, version int64
	err := u.db.withPgx(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var (
			id, org                   pgtype.UUID
			email, name, role, status pgtype.Text
			created, updated          pgtype.Timestamptz
		)
		for rows.Next() {
			if err := rows.Scan(&total, &version, &id, &org, &email, &name, &role, &status, &created, &updated); err != nil {
				return err
			}
			if !id.Valid { // the page is empty: the one row carries only the total
				continue
			}
			out = append(out, listed{id: id.Bytes, user: nexus.User{ID: uuid.UUID(id.Bytes).String(),
				OrganizationID: uuid.UUID(org.Bytes).String(), Email: email.String, Name: name.String,
				Role: nexus.Role(role.String), Status: nexus.UserStatus(status.String),
				CreatedAt: created.Time.UTC(), UpdatedAt: updated.Time.UTC()}})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, 0, translate(err)
	}
	return out, int(total), version, nil
}

// listUsersSQL returns ListUsers' statement, in the dialect's placeholders, and its arguments: the filter's
// total and version (its counters' count and changes) joined to the page and the user after it (one row with a
// NULL user when the page is empty). The page's ids are found first, in the filter's index alone (it holds
// created_at and id), and only the page's rows are then read: skipping 10,000 users reads 10,000 index entries,
// not 10,000 rows scattered over the table; from a remembered start (PostgreSQL) the index is entered there.
func (u *Users) listUsersSQL(org string, q users.ListQuery, start *pageStart) (string, []any) {
	filter, args := "organization_id = ?", []any{org}
	if q.Status != "" {
		filter += " AND status = ?"
		args = append(args, string(q.Status))
	}
	if q.Role != "" {
		filter += " AND role = ?"
		args = append(args, string(q.Role))
	}
	all := make([]any, 0, 2*len(args)+2)
	all = append(append(all, args...), args...)
	// LIMIT and OFFSET are written into the statement (they are integers): as parameters, PostgreSQL's generic plan
	// cannot know the page is small and scans the whole organization, so every execution is planned anew.
	from, skip := "", " OFFSET "+strconv.Itoa(q.Offset)
	if start != nil {
		from, skip = " AND (created_at, id) >= (?, ?)", ""
		all = append(all, start.createdAt, uuid.UUID(start.id).String())
	}
	// On PostgreSQL the page is a lateral subquery that reads nothing when the offset is past the total (a
	// one-time filter on the counters' sum): a page past the end costs no index scan.
	lateral, past := "", ""
	if u.db.dialect == Postgres {
		lateral, past = "LATERAL ", " AND c.total > "+strconv.Itoa(q.Offset)
	}
	return u.db.rebind("SELECT c.total, c.version, p.id, p.organization_id, p.email, p.name, p.role, p.status, p.created_at, p.updated_at" +
		" FROM (SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) AS total, CAST(COALESCE(SUM(changes), 0) AS BIGINT) AS version FROM user_counts WHERE " + filter + ") c" +
		" LEFT JOIN " + lateral + "(SELECT " + listColumnsOf("u") + " FROM (SELECT id FROM users WHERE " + filter + from + past +
		" ORDER BY created_at, id LIMIT " + strconv.Itoa(q.Limit+1) + skip +
		") k JOIN users u ON u.id = k.id) p ON 1 = 1 ORDER BY p.created_at, p.id"), all
}

// listColumns are the columns of a listed user.
const listColumns = "id, organization_id, email, name, role, status, created_at, updated_at"

// listColumnsOf returns listColumns qualified by the table name or alias t.
func listColumnsOf(t string) string {
	return t + "." + strings.ReplaceAll(listColumns, ", ", ", "+t+".")
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
	err := u.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
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
	err := u.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
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
	err := u.db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
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
