package testdb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
)

// Replica is a streaming replica (a hot standby) of a Dedicated server,
// made the way an operator makes one: pg_basebackup -R copies the primary
// and configures the standby, which then replays the primary's WAL as it
// streams in. Like its primary it listens only on a Unix socket of its own
// temporary directory, and it is stopped and removed when the test ends.
//
// It is a Dedicated server itself: Stop, Kill, Start, Pause and Resume act
// on the replica alone (a restarted replica reconnects to its primary and
// catches up), and URL names its copy of the primary's database, which only
// reads.
type Replica struct {
	*Dedicated
	primary *Dedicated
}

// NewReplica makes a streaming replica of the running server d, starts it,
// and returns once it has replayed everything d had written. The primary
// needs nothing beyond PostgreSQL's defaults: wal_level=replica, a few
// max_wal_senders and initdb's "local replication" trust entry in
// pg_hba.conf. If pg_basebackup cannot be found or the replica cannot be
// made, the test is skipped, or fails when the environment variable CI is
// "true".
func (d *Dedicated) NewReplica() *Replica {
	d.tb.Helper()
	start := time.Now()
	s, err := d.makeReplica()
	if err != nil {
		if os.Getenv("CI") == "true" {
			d.tb.Fatalf("testdb: a streaming replica is required in CI (CI=true) but could not be made: %v", err)
		}
		d.tb.Skipf("SKIPPING test that needs a streaming PostgreSQL replica: %v", err)
	}
	r := &Replica{Dedicated: &Dedicated{tb: d.tb, srv: s, running: true}, primary: d}
	d.tb.Cleanup(r.remove)
	r.CatchUp()
	d.tb.Logf("testdb: streaming replica made and started in %v (%s)", time.Since(start).Round(time.Millisecond), s.tempDir)
	return r
}

// makeReplica runs pg_basebackup -R into a new temporary directory and
// starts a standby server on it.
func (d *Dedicated) makeReplica() (_ *server, err error) {
	basebackup, err := Program("pg_basebackup")
	if err != nil {
		return nil, err
	}
	p := d.srv
	tempDir, err := os.MkdirTemp(tempBase(), "nxpgr")
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	s := newServer(p.bin, p.runAs, tempDir, filepath.Join(tempDir, "data"), dedicatedSettings)
	started := false
	defer func() {
		if err == nil {
			return
		}
		if started {
			_, _ = s.run(s.bin.pgCtl, "stop", "-m", "immediate", "-w", "-D", s.dataDir)
		}
		_ = os.RemoveAll(tempDir)
	}()
	if sock := filepath.Join(tempDir, ".s.PGSQL."+port); len(sock) > maxSocketPath {
		return nil, fmt.Errorf("unix socket path %s is longer than %d bytes; set TMPDIR to a short directory", sock, maxSocketPath)
	}
	if s.runAs != nil {
		if err := s.runAs.chownAll(tempDir); err != nil {
			return nil, err
		}
	}
	// -R writes standby.signal and the primary's connection (primary_conninfo); -c fast starts at once rather
	// than at the primary's next checkpoint.
	if out, err := s.run(basebackup, "-D", s.dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync",
		"-d", p.databaseURL(dedicatedDatabase)); err != nil {
		return nil, fmt.Errorf("pg_basebackup (%s) failed: %w\n%s", basebackup, err, tail(out, 2000))
	}
	started = true
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// CatchUp waits until the replica has replayed everything the primary had
// written when it was called (up to a minute).
func (r *Replica) CatchUp() {
	r.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var target string
	if err := r.primary.query(ctx, "SELECT pg_current_wal_lsn()::text", &target); err != nil {
		r.tb.Fatalf("testdb: primary's WAL position: %v", err)
	}
	for {
		var done bool
		err := r.query(ctx, "SELECT COALESCE(pg_last_wal_replay_lsn() >= '"+target+"'::pg_lsn, false)", &done)
		if err == nil && done {
			return
		}
		if ctx.Err() != nil {
			r.tb.Fatalf("testdb: the replica did not replay up to %s within a minute (last error: %v)", target, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PauseReplay stops the replica's replay (pg_wal_replay_pause): it keeps
// receiving the primary's WAL and answering queries, but what it shows stays
// as it was, until ResumeReplay.
func (r *Replica) PauseReplay() {
	r.tb.Helper()
	r.exec("SELECT pg_wal_replay_pause()")
	// The pause takes effect at the replay loop's next record; wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		var state string
		if err := r.query(ctx, "SELECT pg_get_wal_replay_pause_state()", &state); err != nil {
			r.tb.Fatalf("testdb: replica: %v", err)
		}
		if state == "paused" {
			return
		}
		if ctx.Err() != nil {
			r.tb.Fatalf("testdb: the replica's replay did not pause within a minute (%s)", state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ResumeReplay resumes the replay that PauseReplay stopped.
func (r *Replica) ResumeReplay() {
	r.tb.Helper()
	r.exec("SELECT pg_wal_replay_resume()")
}

func (r *Replica) exec(sql string) {
	r.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	var discard any
	if err := r.query(ctx, sql, &discard); err != nil {
		r.tb.Fatalf("testdb: replica: %s: %v", sql, err)
	}
}

// query runs sql on a connection of its own to the server's admin database
// and scans its one row into dest.
func (d *Dedicated) query(ctx context.Context, sql string, dest ...any) error {
	conn, err := pgx.Connect(ctx, d.srv.adminURL.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql).Scan(dest...)
}
