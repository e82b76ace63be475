package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// A read replica serves the read-heavy listings (ListEvents, DailyCounts, ListUsers) and nothing else: anything
// auth or permission related (logins, refreshes, sessions, tokens, signing keys, clients, the caller's own user,
// getUser) and every write always go to the primary. A background loop measures how far the replica is behind
// (checkReplica); while it is unreachable, not a standby, or further behind than the bound, reads go to the
// primary, and they return to the replica once it is healthy again. A read that fails on the replica is run once
// more on the primary (see readFrom), so a replica that dies never turns into a 5xx.

// ReplicaOptions configure the read replica of a DB (see DB.OpenReplica).
type ReplicaOptions struct {
	URL      string        // a PostgreSQL streaming replica (hot standby) of the primary
	MaxLag   time.Duration // reads go to the primary while the replica is further behind than this
	MaxConns int           // the replica's pool; 0: half the primary's, at least 2
	Interval time.Duration // how often the lag is measured; 0: every second
	Logger   *slog.Logger  // transitions (healthy, unhealthy) are logged once each; nil: discarded
}

// Why reads left the replica, as ReplicaStatus.Reason says it.
const (
	ReplicaStarting    = "starting"      // not checked yet
	ReplicaUnreachable = "unreachable"   // the replica (or the primary, whose position the lag needs) did not answer
	ReplicaNotStandby  = "not_a_standby" // the replica is not in recovery: promoted, or not a replica at all
	ReplicaLagging     = "lagging"       // further behind than the bound
)

// ReplicaStatus is the state of the read replica, for the metrics and /readyz.
type ReplicaStatus struct {
	Configured bool          // a replica is configured
	Healthy    bool          // reads go to the replica
	Reason     string        // why they do not (one of the Replica* reasons); "" while healthy
	Lag        time.Duration // the last measured lag; -1 when unknown
	Since      time.Time     // when the replica last became healthy or unhealthy; zero before the first check
	// Reads counts the reads of ListEvents, DailyCounts and ListUsers by where they were served; Fallbacks the
	// reads that failed on the replica and were run again on the primary (counted in PrimaryReads too).
	ReplicaReads, PrimaryReads, Fallbacks int64
}

// replica is the read replica of a DB: its pool, its health as every request reads it (atomics), and the loop
// that measures it.
type replica struct {
	pool   *sql.DB
	maxLag time.Duration
	log    *slog.Logger

	healthy                   atomic.Bool
	lag                       atomic.Int64 // nanoseconds; -1 unknown
	replicaReads, primaryRead atomic.Int64
	fallbacks                 atomic.Int64

	mu     sync.Mutex // guards reason and since, and orders the transitions' log lines
	reason string
	since  time.Time

	history []lsnSample // the primary's WAL positions of the last checks (the loop's goroutine only)
	stop    context.CancelFunc
	done    chan struct{}
}

// Default settings of a replica.
const (
	defaultReplicaInterval = time.Second
	// replicaProbeTimeout bounds one check, at least; a longer interval gives it the interval.
	replicaProbeTimeout = time.Second
	// replicaHistory bounds the samples kept; at one a second, over ten minutes of them.
	replicaHistory = 600
)

// OpenReplica adds a read replica to a PostgreSQL database and starts measuring its lag every o.Interval until
// CloseReplica (or Close). Reads go to the primary until the first check has found the replica healthy; an
// unreachable replica is no error here (the primary serves, and the loop keeps trying), a malformed URL is.
func (db *DB) OpenReplica(ctx context.Context, o ReplicaOptions) error {
	if db.dialect != Postgres {
		return errors.New("a read replica needs PostgreSQL (NEXUS_DATABASE_URL)")
	}
	if db.replica.Load() != nil {
		return errors.New("the database has a read replica already")
	}
	cfg, err := pgx.ParseConfig(withConnectTimeout(o.URL))
	if err != nil {
		return errors.New("NEXUS_DATABASE_REPLICA_URL: not a PostgreSQL URL") // pgx's error may quote the URL
	}
	// A read-only session refuses any write, should one ever be routed here by mistake.
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "nexus-replica-reads"
	}
	pool := stdlib.OpenDB(*cfg)
	conns := o.MaxConns
	if conns <= 0 {
		conns = max(2, db.sql.Stats().MaxOpenConnections/2)
	}
	pool.SetMaxOpenConns(conns)
	pool.SetMaxIdleConns(conns)
	pool.SetConnMaxIdleTime(5 * time.Minute)
	interval := o.Interval
	if interval <= 0 {
		interval = defaultReplicaInterval
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r := &replica{pool: pool, maxLag: o.MaxLag, log: log, reason: ReplicaStarting, stop: stop, done: make(chan struct{})}
	r.lag.Store(-1)
	db.replica.Store(r)
	go r.run(loopCtx, db.sql, interval)
	return nil
}

// CloseReplica stops the replica's loop and closes its pool; reads go to the primary from then on. Without a
// replica it does nothing.
func (db *DB) CloseReplica() {
	r := db.replica.Swap(nil)
	if r == nil {
		return
	}
	r.stop()
	<-r.done
	_ = r.pool.Close()
}

// ReplicaPool returns the read replica's pool, for its statistics (the go_sql_* metrics), or nil without a
// replica; callers read it and never close it.
func (db *DB) ReplicaPool() *sql.DB {
	if r := db.replica.Load(); r != nil {
		return r.pool
	}
	return nil
}

// ReplicaStatus returns the state of the read replica (Configured false without one).
func (db *DB) ReplicaStatus() ReplicaStatus {
	r := db.replica.Load()
	if r == nil {
		return ReplicaStatus{Lag: -1}
	}
	r.mu.Lock()
	reason, since := r.reason, r.since
	r.mu.Unlock()
	return ReplicaStatus{Configured: true, Healthy: r.healthy.Load(), Reason: reason, Lag: time.Duration(r.lag.Load()), Since: since,
		ReplicaReads: r.replicaReads.Load(), PrimaryReads: r.primaryRead.Load(), Fallbacks: r.fallbacks.Load()}
}

// run checks the replica every interval until ctx ends.
func (r *replica) run(ctx context.Context, primary *sql.DB, interval time.Duration) {
	defer close(r.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	timeout := max(interval, replicaProbeTimeout)
	for {
		lag, reason, err := r.check(ctx, primary, timeout)
		if ctx.Err() != nil {
			return
		}
		r.lag.Store(int64(lag))
		if reason == "" {
			r.up(lag)
		} else {
			r.down(reason, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// up makes the replica serve reads again, and logs it when it did not.
func (r *replica) up(lag time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.healthy.Load() {
		return
	}
	r.healthy.Store(true)
	r.reason, r.since = "", time.Now()
	r.log.Info("read replica healthy: the listings and the summary read it", slog.Duration("lag", lag), slog.Duration("max_lag", r.maxLag))
}

// down sends reads to the primary, and logs it when they went to the replica (or on the first check).
func (r *replica) down(reason string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.healthy.Load()
	if !was && r.reason == reason {
		return
	}
	r.healthy.Store(false)
	first := r.reason == ReplicaStarting
	r.reason, r.since = reason, time.Now()
	if !was && !first {
		return // unhealthy already: a change of reason alone is not a transition
	}
	attrs := []any{slog.String("reason", reason), slog.Duration("max_lag", r.maxLag)}
	if lag := r.lag.Load(); lag >= 0 {
		attrs = append(attrs, slog.Duration("lag", time.Duration(lag)))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	r.log.Warn("read replica unhealthy: the listings and the summary read the primary", attrs...)
}

// lsnSample is the primary's WAL position at a time.
type lsnSample struct {
	at  time.Time
	lsn uint64
}

// check measures the replica's lag: the primary's current WAL position is read first, then the position the
// replica has replayed. A replica that has replayed what the primary had written at a check is at most as stale
// as that check is old, so the lag is the age of the newest sample the replica has passed (zero when it has
// passed the one just taken). When it has not passed the newest, the age of its last replayed transaction
// (pg_last_xact_replay_timestamp) is a closer bound while the primary is busy, and is used when smaller; alone
// it would be wrong, since an idle primary commits nothing and the age grows while the replica is current. The
// reason is "" when the replica may serve reads.
func (r *replica) check(ctx context.Context, primary *sql.DB, timeout time.Duration) (time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var plsn string
	if err := primary.QueryRowContext(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&plsn); err != nil {
		return -1, ReplicaUnreachable, fmt.Errorf("primary: %w", err)
	}
	p, err := parseLSN(plsn)
	if err != nil {
		return -1, ReplicaUnreachable, err
	}
	now := time.Now()
	var (
		standby bool
		replay  sql.NullString
		age     sql.NullFloat64
	)
	err = r.pool.QueryRowContext(ctx, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "+
		"EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8").Scan(&standby, &replay, &age)
	if err != nil {
		return -1, ReplicaUnreachable, err
	}
	if !standby || !replay.Valid {
		return -1, ReplicaNotStandby, nil
	}
	rl, err := parseLSN(replay.String)
	if err != nil {
		return -1, ReplicaUnreachable, err
	}
	lag := r.lagOf(now, p, rl)
	if age.Valid && lag > 0 {
		lag = min(lag, max(0, time.Duration(age.Float64*float64(time.Second))))
	}
	if lag > r.maxLag {
		return lag, ReplicaLagging, nil
	}
	return lag, "", nil
}

// lagOf records the primary's position p at now and returns the age of the newest sample the replica's replayed
// position has reached (the age of the oldest kept when it has reached none: a lower bound, and past any
// sensible bound by then).
func (r *replica) lagOf(now time.Time, p, replayed uint64) time.Duration {
	r.history = append(r.history, lsnSample{at: now, lsn: p})
	reached := -1
	for i := len(r.history) - 1; i >= 0; i-- {
		if r.history[i].lsn <= replayed {
			reached = i
			break
		}
	}
	var lag time.Duration
	switch {
	case reached == len(r.history)-1:
		lag = 0
	case reached >= 0:
		lag = now.Sub(r.history[reached].at)
	default:
		lag = now.Sub(r.history[0].at)
	}
	// Samples older than the newest reached one will never be needed again.
	if reached > 0 {
		r.history = append(r.history[:0], r.history[reached:]...)
	}
	if len(r.history) > replicaHistory {
		r.history = append(r.history[:0], r.history[len(r.history)-replicaHistory:]...)
	}
	return lag
}

// parseLSN parses a PostgreSQL WAL position ("16/B374D848").
func parseLSN(s string) (uint64, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("WAL position %q: %w", s, err)
	}
	return uint64(hi)<<32 | uint64(lo), nil
}
