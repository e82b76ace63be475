// Package store holds everything that touches the database through GORM: the connection, the versioned
// migrations, the row structs and their converters, error translation, and the Store implementations that the
// domain packages declare.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the database behind a DB.
type Dialect string

// The supported databases.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Options selects the database: PostgreSQL at URL when it is set, otherwise the embedded SQLite file
// nexus.db under DataDir. MaxConns caps the open connections (0: 25 on PostgreSQL, 8 on SQLite); a caller
// that finds them all busy waits for one until its context ends, and then gets an unavailable error.
// TracerProvider, when set, traces every statement and transaction as a client span (see tracing.go).
type Options struct {
	URL            string
	DataDir        string
	MaxConns       int
	TracerProvider trace.TracerProvider
}

// Default pool sizes.
const (
	defaultPostgresConns = 25
	defaultSQLiteConns   = 8
)

// Timeouts of the health checks.
const (
	// PingTimeout bounds Ping, so that /readyz reports a stalled or vanished database within 2 s.
	PingTimeout = 1500 * time.Millisecond
	// openTimeout bounds the check in Open, where a database still starting up deserves more patience.
	openTimeout = 5 * time.Second
)

// DB is an open database with its schema migrated.
type DB struct {
	gorm    *gorm.DB
	sql     *sql.DB
	dialect Dialect
	url     string // PostgreSQL's, for connections of their own (the revocation listener)
	sinks   sinks  // told of this process's revocations as they commit
	tracer  *tracer
	replica atomic.Pointer[replica] // the read replica, when OpenReplica added one (replica.go)
}

// SQLiteFile is the name of the embedded database file inside the data directory.
const SQLiteFile = "nexus.db"

// Open connects to the database and checks that it answers. It does not migrate; call Migrate.
func Open(ctx context.Context, o Options) (*DB, error) {
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		SkipDefaultTransaction: true,
	}
	var (
		g       *gorm.DB
		err     error
		dialect Dialect
	)
	if o.URL != "" {
		dialect = Postgres
		g, err = gorm.Open(postgres.New(postgres.Config{DSN: withConnectTimeout(o.URL)}), cfg)
	} else {
		dialect = SQLite
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		var pool *sql.DB
		if pool, err = openSQLite(filepath.Join(o.DataDir, SQLiteFile)); err == nil {
			g, err = gorm.Open(&sqlite.Dialector{Conn: pool}, cfg)
			if err != nil {
				_ = pool.Close()
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", dialect, translate(err))
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, err
	}
	conns := o.MaxConns
	if conns <= 0 {
		conns = defaultSQLiteConns
		if dialect == Postgres {
			conns = defaultPostgresConns
		}
	}
	sqlDB.SetMaxOpenConns(conns)
	sqlDB.SetMaxIdleConns(conns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{gorm: g, sql: sqlDB, dialect: dialect, url: o.URL, tracer: newTracer(o.TracerProvider, dialect)}
	if db.tracer != nil {
		if err := db.tracer.register(g); err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("trace statements: %w", err)
		}
	}
	if err := db.ping(ctx, openTimeout); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to %s database: %w", dialect, err)
	}
	return db, nil
}

// openSQLite returns the pool of the embedded database, whose connections wait for the write lock at most
// until the deadline of the statement's context (see busyConnector).
func openSQLite(path string) (*sql.DB, error) {
	// sql.Open connects to nothing; it only finds the registered driver.
	probe, err := sql.Open(sqlite.DriverName, "")
	if err != nil {
		return nil, err
	}
	drv := probe.Driver()
	_ = probe.Close()
	return sql.OpenDB(busyConnector{drv: drv, dsn: sqliteDSN(path)}), nil
}

// sqliteDSN configures the embedded database: write-ahead logging, a busy timeout (lowered to what a
// statement's context has left; see busyConnector), foreign keys, and transactions that take the write lock
// when they begin, so that read-then-write transactions never fail with SQLITE_BUSY half-way.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Not _time_format: glebarez/go-sqlite v1.21 stops reading parameters after it, which silently drops
	// _txlock. The default format of times stored in UTC sorts correctly as text.
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode()
}

// withConnectTimeout adds a 5 s connect timeout to a PostgreSQL URL that sets none, so an unreachable server
// fails fast instead of hanging a request.
func withConnectTimeout(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	if !q.Has("connect_timeout") {
		q.Set("connect_timeout", "5")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Dialect returns the database's dialect.
func (db *DB) Dialect() Dialect { return db.dialect }

// Ping checks that the database answers within PingTimeout (1.5 s), a connection of the pool included: a
// database that is down, stalled, or has no connection to spare within that time is unavailable.
func (db *DB) Ping(ctx context.Context) error { return db.ping(ctx, PingTimeout) }

func (db *DB) ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return translate(db.sql.PingContext(ctx))
}

// Hold takes one connection out of the pool and keeps it from every other caller until release is called.
// Tests use it to exhaust the pool; it waits for a free connection as long as ctx allows.
func (db *DB) Hold(ctx context.Context) (release func(), err error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return nil, translate(err)
	}
	return func() { _ = conn.Close() }, nil
}

// Pool returns the connection pool under GORM, for its statistics (the go_sql_* metrics); callers read it and
// never close it or change its settings.
func (db *DB) Pool() *sql.DB { return db.sql }

// Close closes the connection pool, and the read replica's.
func (db *DB) Close() error {
	db.CloseReplica()
	return db.sql.Close()
}
