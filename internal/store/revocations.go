package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// RevocationSink is told about revoked sessions: by this process as soon as its revoking transaction commits,
// and about every node's revocations through the revocation log. The auth service's session cache is one.
type RevocationSink interface {
	// SessionsRevoked says that the sessions with these ids have been revoked.
	SessionsRevoked(ids []string)
	// RevocationsCurrent says that every revocation committed before asOf (a reading of time.Now taken before
	// the log was read) has been passed to SessionsRevoked.
	RevocationsCurrent(asOf time.Time)
	// ForgetSessions says that revocations may have been missed (the log was pruned past them, or the database
	// is not the one it was): nothing known about any session may be trusted any more.
	ForgetSessions()
}

// revocationChannel is the PostgreSQL notification channel on which a revoking transaction announces, as it
// commits, the newest number it took from the log.
const revocationChannel = "nexus_session_revocations"

// Following the log.
const (
	// RevocationPoll is how often a follower reads the log's counter when nothing is announced: on SQLite the
	// only way other processes' revocations arrive, on PostgreSQL the heartbeat that proves the listening
	// connection alive (the auth service trusts its cache for 800 ms after each).
	RevocationPoll = 200 * time.Millisecond
	// revocationReadTimeout bounds one read of the log.
	revocationReadTimeout = time.Second
	// revocationRetention is how long log rows are kept. A node cut off from the database for longer forgets
	// every session it knew when it comes back.
	revocationRetention = 24 * time.Hour
	// revocationPruneEvery is how often a follower deletes log rows older than revocationRetention.
	revocationPruneEvery = time.Hour
	// followBackoffMax caps the wait between attempts to reconnect a lost listener.
	followBackoffMax = 2 * time.Second
)

// sinks are the RevocationSinks of one process, told of its own revocations once they commit.
type sinks struct {
	mu   sync.Mutex
	list []RevocationSink
}

func (s *sinks) add(sink RevocationSink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, sink)
}

func (s *sinks) remove(sink RevocationSink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.list {
		if x == sink {
			s.list = append(s.list[:i:i], s.list[i+1:]...)
			return
		}
	}
}

// revoked tells every sink of this process that the sessions were revoked; called after the commit.
func (db *DB) revoked(ids []string) {
	if len(ids) == 0 {
		return
	}
	db.sinks.mu.Lock()
	list := db.sinks.list
	db.sinks.mu.Unlock()
	for _, s := range list {
		s.SessionsRevoked(ids)
	}
}

// revocationRow is one entry of the revocation log.
type revocationRow struct {
	Seq       int64 `gorm:"primaryKey;autoIncrement:false"`
	SessionID string
	RevokedAt time.Time
}

func (revocationRow) TableName() string { return "session_revocations" }

// logRevocations appends the sessions to the revocation log inside tx, the transaction that revokes them: it
// takes the next len(ids) numbers from the counter (whose row tx then holds until it commits, so that numbers
// are committed in order and without gaps) and, on PostgreSQL, announces the newest one, which the listeners
// receive when tx commits.
func logRevocations(tx *gorm.DB, dialect Dialect, ids []string, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	var last int64
	if err := tx.Raw("UPDATE revocation_counter SET seq = seq + ? WHERE id = 1 RETURNING seq", len(ids)).Scan(&last).Error; err != nil {
		return fmt.Errorf("number revocations: %w", err)
	}
	rows := make([]revocationRow, len(ids))
	first := last - int64(len(ids)) + 1
	for i, id := range ids {
		rows[i] = revocationRow{Seq: first + int64(i), SessionID: id, RevokedAt: at.UTC()}
	}
	if err := tx.Create(&rows).Error; err != nil {
		return fmt.Errorf("log revocations: %w", err)
	}
	if dialect == Postgres {
		if err := tx.Exec("SELECT pg_notify(?, ?)", revocationChannel, strconv.FormatInt(last, 10)).Error; err != nil {
			return fmt.Errorf("announce revocations: %w", err)
		}
	}
	return nil
}

// logReader reads the revocation log over one connection.
type logReader interface {
	counter(ctx context.Context) (int64, error)
	// since returns the log's entries numbered after from and up to to, in order.
	since(ctx context.Context, from, to int64) (seqs []int64, ids []string, err error)
}

// sqlReader reads the log through the pool (SQLite).
type sqlReader struct{ db *DB }

func (r sqlReader) counter(ctx context.Context) (int64, error) {
	var seq int64
	err := r.db.sql.QueryRowContext(ctx, "SELECT seq FROM revocation_counter WHERE id = 1").Scan(&seq)
	return seq, err
}

func (r sqlReader) since(ctx context.Context, from, to int64) ([]int64, []string, error) {
	rows, err := r.db.sql.QueryContext(ctx, r.db.rebind("SELECT seq, session_id FROM session_revocations WHERE seq > ? AND seq <= ? ORDER BY seq"), from, to)
	if err != nil {
		return nil, nil, err
	}
	return scanLog(rows)
}

// pgReader reads the log over the listening connection (PostgreSQL), so that a read that succeeds also proves
// the listener alive.
type pgReader struct{ conn *pgx.Conn }

func (r pgReader) counter(ctx context.Context) (int64, error) {
	var seq int64
	err := r.conn.QueryRow(ctx, "SELECT seq FROM revocation_counter WHERE id = 1").Scan(&seq)
	return seq, err
}

func (r pgReader) since(ctx context.Context, from, to int64) ([]int64, []string, error) {
	rows, err := r.conn.Query(ctx, "SELECT seq, session_id::text FROM session_revocations WHERE seq > $1 AND seq <= $2 ORDER BY seq", from, to)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	return readLog(rows)
}

func scanLog(rows *sql.Rows) ([]int64, []string, error) {
	defer func() { _ = rows.Close() }()
	return readLog(rows)
}

// readLog reads the rows of a log query, of database/sql or of pgx.
func readLog(rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}) ([]int64, []string, error) {
	var seqs []int64
	var ids []string
	for rows.Next() {
		var seq int64
		var id string
		if err := rows.Scan(&seq, &id); err != nil {
			return nil, nil, err
		}
		seqs, ids = append(seqs, seq), append(ids, id)
	}
	return seqs, ids, rows.Err()
}

// follower applies the revocation log to one sink.
type follower struct {
	db     *DB
	sink   RevocationSink
	log    *slog.Logger
	poll   time.Duration
	last   int64 // the newest log number applied; -1 before the first read
	pruned time.Time
}

// FollowRevocations passes every session revocation to sink until ctx ends: this process's own as soon as they
// commit, and every node's from the revocation log. On PostgreSQL it listens for the announcements of
// revoking transactions on a connection of its own (to listenURL, or the database's URL when empty, e.g. to
// bypass a transaction-pooling proxy) and reads the log over it when one arrives, and every poll interval
// otherwise (0: RevocationPoll); on SQLite it reads the log every poll interval. After every read that reached
// the newest entry it calls sink.RevocationsCurrent. When the connection is lost it reconnects with backoff and
// catches up from the last number it applied; meanwhile it confirms nothing, so the sink stops trusting what it
// knows. It also prunes log entries older than a day, once an hour.
func (db *DB) FollowRevocations(ctx context.Context, sink RevocationSink, listenURL string, poll time.Duration, log *slog.Logger) {
	if poll <= 0 {
		poll = RevocationPoll
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if listenURL == "" {
		listenURL = db.url
	}
	db.sinks.add(sink)
	defer db.sinks.remove(sink)
	f := &follower{db: db, sink: sink, log: log, poll: poll, last: -1}
	backoff := 50 * time.Millisecond
	lost := false
	for {
		var err error
		if db.dialect == Postgres {
			err = f.listen(ctx, listenURL, func() {
				if lost {
					log.Info("revocation feed restored")
					lost = false
				}
				backoff = 50 * time.Millisecond
			})
		} else {
			err = f.pollLoop(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		if !lost {
			log.Warn("revocation feed lost: sessions are checked in the database until it is back", "error", err)
			lost = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, followBackoffMax)
	}
}

// pollLoop reads the log every poll interval until a read fails or ctx ends.
func (f *follower) pollLoop(ctx context.Context) error {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		if err := f.catchUp(ctx, sqlReader{f.db}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// listen connects, listens for announcements and reads the log after each, or after every poll interval
// without one, until the connection fails or ctx ends. connected runs after the first successful read.
func (f *follower) listen(ctx context.Context, url string, connected func()) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	cfg, err := pgx.ParseConfig(withConnectTimeout(url))
	if err != nil {
		cancel()
		return fmt.Errorf("revocation listener: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "nexus revocation listener"
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("revocation listener: connect: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "LISTEN "+revocationChannel); err != nil {
		return fmt.Errorf("revocation listener: listen: %w", err)
	}
	r := pgReader{conn}
	for first := true; ; first = false {
		// Listening came first, so every revocation is either committed before this read (and read) or
		// announced after it.
		if err := f.catchUp(ctx, r); err != nil {
			return err
		}
		if first {
			connected()
		}
		wctx, cancel := context.WithTimeout(ctx, f.poll)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil, ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)):
			// An announcement, or none within the poll interval: read the log.
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return fmt.Errorf("revocation listener: wait: %w", err)
		}
	}
}

// catchUp reads the log's counter and every entry after the last one applied, passes them to the sink, and
// confirms the sink current as of the moment before the read.
func (f *follower) catchUp(ctx context.Context, r logReader) error {
	asOf := time.Now()
	rctx, cancel := context.WithTimeout(ctx, revocationReadTimeout)
	defer cancel()
	top, err := r.counter(rctx)
	if err != nil {
		return fmt.Errorf("read revocation counter: %w", err)
	}
	switch {
	case f.last < 0 || top < f.last:
		// The first read (a session read before it may have been revoked since, unseen), or a counter that went
		// back (a restored or another database): start afresh.
		f.sink.ForgetSessions()
	case top > f.last:
		seqs, ids, err := r.since(rctx, f.last, top)
		if err != nil {
			return fmt.Errorf("read revocation log: %w", err)
		}
		if int64(len(seqs)) != top-f.last {
			f.log.Warn("revocation log pruned past this node's position: forgetting every cached session", "applied", f.last, "newest", top)
			f.sink.ForgetSessions()
		}
		if len(ids) > 0 {
			f.sink.SessionsRevoked(ids)
		}
	}
	f.last = top
	f.sink.RevocationsCurrent(asOf)
	if time.Since(f.pruned) >= revocationPruneEvery {
		f.pruned = time.Now()
		if err := f.db.gorm.WithContext(rctx).Where("revoked_at < ?", time.Now().UTC().Add(-revocationRetention)).
			Delete(&revocationRow{}).Error; err != nil {
			f.log.Warn("prune revocation log", "error", err)
		}
	}
	return nil
}
