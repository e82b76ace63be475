package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

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

// listUsers is ListUsers (see replica_read.go) on the connection readFrom chose: one statement, so that the
// total and the page come from one snapshot: the total is the sum of the organization's counters (user_counts, at most one per role and status, kept by
// triggers in the transaction of every change to users), the page is read in the order of the index
// (organization_id, created_at, id), or of its status or role variant when that filter is set.
func (u *Users) listUsers(ctx context.Context, orgID string, q users.ListQuery) ([]nexus.User, int, error) {
	org, ok := canonicalUUID(orgID)
	if !ok {
		return []nexus.User{}, 0, nil
	}
	if u.db.dialect == Postgres {
		return u.pgListUsers(ctx, org, q)
	}
	query, args := u.listUsersSQL(org, q, nil)
	rows, err := u.db.readSQL(ctx).QueryContext(ctx, query, args...)
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
	err := u.db.readPgx(ctx, func(conn *pgx.Conn) error {
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
