package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// pgLogRevocation appends one session ($1, revoked at $2) to the revocation log and announces it, in one
// statement: what logRevocations does for one session.
const pgLogRevocation = `WITH n AS (UPDATE revocation_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq),
l AS (INSERT INTO session_revocations (seq, session_id, revoked_at) SELECT seq, $1, $2 FROM n RETURNING seq)
SELECT pg_notify('` + revocationChannel + `', seq::text) FROM l`

// pgUpdateSession is UpdateSession on PostgreSQL in two round trips: the transaction's BEGIN goes with the read
// that locks the user and the session, and its writes (the session's changed columns with the audit entry, and a
// revocation's log entry) go with its COMMIT, each pair as one pipelined pgx batch on a connection of the pool.
// The locks, the statements and the transaction are those of the generic path.
func (a *Auth) pgUpdateSession(ctx context.Context, id string, fn func(*auth.Session, nexus.User) (bool, error), audit *auth.AuditEvent) error {
	var revoked bool
	err := a.db.withPgx(ctx, func(conn *pgx.Conn) error {
		var err error
		revoked, err = a.pgSessionTx(ctx, conn, id, fn, audit)
		return err
	})
	if err != nil {
		return fromTx(err)
	}
	if revoked {
		a.db.revoked([]string{id})
	}
	return nil
}

// pgSessionTx runs UpdateSession's transaction on conn and reports whether it revoked the session. Whatever
// fails, the transaction is rolled back; a connection that cannot roll back is reported bad, so that the pool
// drops it.
func (a *Auth) pgSessionTx(ctx context.Context, conn *pgx.Conn, id string, fn func(*auth.Session, nexus.User) (bool, error), audit *auth.AuditEvent) (revoked bool, err error) {
	open := false
	defer func() {
		if err != nil && open {
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				err = errors.Join(err, driver.ErrBadConn)
			}
		}
	}()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(lockSessionQuery(Postgres), id)
	br := conn.SendBatch(ctx, b)
	_, err = br.Exec()
	open = err == nil
	var r sessionRow
	var u userRow
	if err == nil {
		r, u, err = scanLockedSession(br.QueryRow())
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	s := toAuthSession(r)
	save, err := fn(&s, toUser(u))
	if err != nil {
		return false, errFromFn{err}
	}
	b = &pgx.Batch{}
	var cols []string
	var args []any
	if save {
		s.ID = id
		cols, args = sessionChanges(r, toSessionRow(s))
		revoked = r.RevokedAt == nil && s.Revoked()
	}
	for _, st := range sessionWrites(Postgres, id, cols, args, audit) {
		b.Queue(a.db.rebind(st.sql), st.args...)
	}
	if revoked {
		b.Queue(pgLogRevocation, id, s.RevokedAt.UTC())
	}
	b.Queue("COMMIT")
	br = conn.SendBatch(ctx, b)
	for range b.Len() {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	open = false
	return revoked, nil
}

// lockSessionQuery is the statement of lockSession.
func lockSessionQuery(d Dialect) string {
	q := "SELECT u.id, u.organization_id, u.email, u.name, u.role, u.status, u.created_at, u.updated_at, " + sessionColumns +
		" FROM users u JOIN refresh_sessions s ON s.user_id = u.id WHERE s.id = ?"
	if d == Postgres {
		q += " FOR SHARE OF u FOR UPDATE OF s"
		return strings.Replace(q, "?", "$1", 1)
	}
	return q
}

// rowScanner is a row of database/sql or of pgx.
type rowScanner interface{ Scan(dest ...any) error }

// scanLockedSession scans a row of lockSessionQuery. A missing session is gorm.ErrRecordNotFound.
func scanLockedSession(row rowScanner) (sessionRow, userRow, error) {
	var (
		r                            sessionRow
		u                            userRow
		uCreated, uUpdated           timeValue
		rotated, created, used, exps timeValue
		revoked                      timeValue
		role, device, reason, keyID  sql.NullString
	)
	err := row.Scan(
		&u.ID, &u.OrganizationID, &u.Email, &u.Name, &u.Role, &u.Status, &uCreated, &uUpdated,
		&r.ID, &r.UserID, &r.OrganizationID, &r.ClientID, &role, &device, &r.Salt, &r.Generation,
		&rotated, &created, &used, &exps, &revoked, &reason, &keyID)
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		return sessionRow{}, userRow{}, gorm.ErrRecordNotFound
	}
	if err != nil {
		return sessionRow{}, userRow{}, err
	}
	u.CreatedAt, u.UpdatedAt = uCreated.t, uUpdated.t
	r.Role, r.DeviceID, r.RevokedReason, r.KeyID = nullString(role), nullString(device), nullString(reason), nullString(keyID)
	r.RotatedAt, r.RevokedAt = optTime(rotated.t), optTime(revoked.t)
	r.CreatedAt, r.LastUsedAt, r.ExpiresAt = created.t, used.t, exps.t
	return r, u, nil
}

// withPgx runs fn on a PostgreSQL connection of the pool as pgx's own connection, for what database/sql cannot
// do (pipelining) or does slowly (scanning through driver.Value). An error of fn that wraps driver.ErrBadConn
// makes the pool drop the connection.
func (db *DB) withPgx(ctx context.Context, fn func(*pgx.Conn) error) error {
	return pgxConn(ctx, db.sql, fn)
}

// pgxConn runs fn on a connection of pool as pgx's own connection.
func pgxConn(ctx context.Context, pool *sql.DB, fn func(*pgx.Conn) error) error {
	c, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres connection of type %T", dc)
		}
		return fn(sc.Conn())
	})
}
