package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"strconv"
	"time"
)

// SQLite waits for a lock another connection holds by sleeping in its busy handler, and nothing interrupts
// that wait: not sqlite3_interrupt (which the driver calls when a statement's context ends), and not the
// context of BEGIN IMMEDIATE, which the driver ignores. A write that meets a held write lock would so wait out
// the whole busy timeout, whatever the request's deadline. busyConnector bounds the wait by the deadline:
// before a statement or a BEGIN outside a transaction it lowers the connection's busy_timeout to the time the
// context has left (and raises it back to the default when the context has more time, or none).

const (
	// sqliteBusyTimeout is how long a write waits for the write lock when its context has no earlier deadline.
	sqliteBusyTimeout = 10 * time.Second
	// busyStep is the precision of the busy timeout: it is changed only when it is off by more than this,
	// which spares most statements a PRAGMA.
	busyStep = 100 * time.Millisecond
)

// busyConnector opens SQLite connections that bound their busy wait by the context's deadline.
type busyConnector struct {
	drv driver.Driver
	dsn string
}

// Connect implements driver.Connector.
func (c busyConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(sqliteConn)
	if !ok {
		_ = conn.Close()
		return nil, errors.New("sqlite driver connection lacks context support")
	}
	return &busyConn{sqliteConn: inner, busy: sqliteBusyTimeout}, nil
}

// Driver implements driver.Connector.
func (c busyConnector) Driver() driver.Driver { return c.drv }

// sqliteConn is what the SQLite driver's connections implement; busyConn implements exactly the same, so
// database/sql treats it as it would the driver's own.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
}

// busyConn is a SQLite connection whose busy timeout follows the deadline of the statement's context. It is
// used by one goroutine at a time (database/sql guarantees it), so its fields need no lock.
type busyConn struct {
	sqliteConn
	busy time.Duration // the connection's busy_timeout now
	inTx bool          // a transaction is open: it holds the write lock already (BEGIN IMMEDIATE), or only reads
}

var _ sqliteConn = (*busyConn)(nil)

// bound sets the busy timeout to what ctx has left, at most sqliteBusyTimeout.
func (c *busyConn) bound(ctx context.Context) error {
	want := sqliteBusyTimeout
	if dl, ok := ctx.Deadline(); ok {
		want = min(want, max(time.Until(dl), 0))
	}
	if d := want - c.busy; d > -busyStep && d < busyStep {
		return nil
	}
	want = want.Truncate(time.Millisecond)
	// Not ctx: the PRAGMA itself never waits, and must not be interrupted by a context that already ended.
	if _, err := c.sqliteConn.ExecContext(context.Background(), "PRAGMA busy_timeout = "+strconv.FormatInt(want.Milliseconds(), 10), nil); err != nil {
		return err
	}
	c.busy = want
	return nil
}

// BeginTx implements driver.ConnBeginTx: BEGIN IMMEDIATE waits for the write lock at most until ctx's deadline.
func (c *busyConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.bound(ctx); err != nil {
		return nil, err
	}
	tx, err := c.sqliteConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return busyTx{Tx: tx, c: c}, nil
}

// ExecContext implements driver.ExecerContext.
func (c *busyConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if !c.inTx {
		if err := c.bound(ctx); err != nil {
			return nil, err
		}
	}
	return c.sqliteConn.ExecContext(ctx, query, args)
}

// QueryContext implements driver.QueryerContext (an INSERT … RETURNING is a query, and writes).
func (c *busyConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if !c.inTx {
		if err := c.bound(ctx); err != nil {
			return nil, err
		}
	}
	return c.sqliteConn.QueryContext(ctx, query, args)
}

// busyTx notes the end of the transaction on its connection.
type busyTx struct {
	driver.Tx
	c *busyConn
}

func (t busyTx) Commit() error {
	t.c.inTx = false
	return t.Tx.Commit()
}

func (t busyTx) Rollback() error {
	t.c.inTx = false
	return t.Tx.Rollback()
}
