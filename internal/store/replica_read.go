package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// The reads a replica may serve: the event listing, the summary's rollups, and the user listing (its page and
// its total, one statement). Each is its unexported twin run by readFrom, which reads its connection from the
// context (readSQL, readPgx).

// ListEvents implements analytics.Store, on the read replica when it is healthy (see readFrom).
func (s *Events) ListEvents(ctx context.Context, orgID string, q analytics.ListQuery) ([]analytics.Event, error) {
	return readFrom(ctx, s.db, func(ctx context.Context) ([]analytics.Event, error) { return s.listEvents(ctx, orgID, q) })
}

// DailyCounts implements analytics.Store from the rollups, on the read replica when it is healthy (see
// readFrom).
func (s *Events) DailyCounts(ctx context.Context, orgID string, q analytics.SummaryQuery) ([]analytics.Count, error) {
	return readFrom(ctx, s.db, func(ctx context.Context) ([]analytics.Count, error) { return s.dailyCounts(ctx, orgID, q) })
}

// ListUsers implements users.Store, on the read replica when it is healthy (see readFrom).
func (u *Users) ListUsers(ctx context.Context, orgID string, q users.ListQuery) ([]nexus.User, int, error) {
	var total int
	page, err := readFrom(ctx, u.db, func(ctx context.Context) (page []nexus.User, err error) {
		page, total, err = u.listUsers(ctx, orgID, q)
		return page, err
	})
	return page, total, err
}

// readPoolKey is the context key of the pool readFrom chose.
type readPoolKey struct{}

// readSQL returns the pool a read run by readFrom uses: the replica's when readFrom chose it, else the primary's.
func (db *DB) readSQL(ctx context.Context) *sql.DB {
	if p, ok := ctx.Value(readPoolKey{}).(*sql.DB); ok {
		return p
	}
	return db.sql
}

// readPgx is withPgx on the pool readSQL returns.
func (db *DB) readPgx(ctx context.Context, fn func(*pgx.Conn) error) error {
	return pgxConn(ctx, db.readSQL(ctx), fn)
}

// readFrom runs read on the replica while it is healthy, else on the primary. A read that fails on the replica
// while the request still has time (a dead or stalled replica, a query cancelled by a conflict with recovery)
// is run once more on the primary; a connection error also sends every read to the primary until the next
// check finds the replica healthy. The replica gets at most half of the request's remaining time, so that the
// primary has the other half.
func readFrom[T any](ctx context.Context, db *DB, read func(context.Context) (T, error)) (T, error) {
	r := db.replica.Load()
	if r == nil {
		return read(ctx)
	}
	if !r.healthy.Load() {
		r.primaryRead.Add(1)
		return read(ctx)
	}
	rctx, cancel := replicaDeadline(ctx)
	v, err := read(context.WithValue(rctx, readPoolKey{}, r.pool))
	cancel()
	if err == nil || ctx.Err() != nil {
		r.replicaReads.Add(1)
		return v, err
	}
	if connectionError(err) || rctx.Err() != nil {
		r.down(ReplicaUnreachable, err)
	}
	r.fallbacks.Add(1)
	r.primaryRead.Add(1)
	return read(ctx)
}

// replicaDeadline returns ctx with half its remaining time, when it has a deadline.
func replicaDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Until(d)/2)
}

// connectionError reports whether err says the connection to the server failed or ended (as opposed to a
// statement that failed on a working connection).
func connectionError(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// connection exceptions; admin, crash and immediate shutdowns, and a server not accepting connections yet
		return strings.HasPrefix(pg.Code, "08") || pg.Code == "57P01" || pg.Code == "57P02" || pg.Code == "57P03"
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || pgconn.SafeToRetry(err)
}
