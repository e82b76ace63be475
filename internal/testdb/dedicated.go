package testdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// dedicatedSettings keep every committed transaction across Stop and Start,
// even an immediate stop: commits wait for their WAL to be written to the
// operating system (synchronous_commit=on), which survives a server crash.
// Only a crash of the whole machine could lose data, since the server still
// runs without fsync.
var dedicatedSettings = []string{"fsync=off", "synchronous_commit=on", "full_page_writes=off", "max_connections=200"}

// dedicatedDatabase is the database that Dedicated.URL names.
const dedicatedDatabase = "nexus_test"

// Dedicated is a PostgreSQL server of one test's own, which the test may stop
// and start again to see how code behaves while the database is down. It is
// always started from the locally installed PostgreSQL binaries, even when
// NEXUS_TEST_POSTGRES_URL names an external server, listens only on a Unix
// socket in a temporary directory, and is removed when the test ends.
//
// Unlike the shared throwaway server it keeps every committed transaction
// across Stop and Start (synchronous_commit=on); it still runs without fsync,
// so it must never hold data worth keeping.
type Dedicated struct {
	tb  testing.TB
	srv *server

	mu      sync.Mutex
	running bool
	paused  []int // the processes Pause stopped, until Resume
}

// NewDedicated starts a dedicated server with one empty database and stops
// and removes it in tb.Cleanup. It needs no TestMain. If the PostgreSQL
// binaries cannot be found or the server cannot be started, the test is
// skipped, or fails when the environment variable CI is "true".
func NewDedicated(tb testing.TB) *Dedicated {
	tb.Helper()
	start := time.Now()
	s, err := startServerWith("nxpgd", dedicatedSettings)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("testdb: a dedicated PostgreSQL server is required in CI (CI=true) but could not be started: %v", err)
		}
		tb.Skipf("SKIPPING test that needs a dedicated PostgreSQL server: %v. Install the PostgreSQL server (apt-get install postgresql).", err)
	}
	d := &Dedicated{tb: tb, srv: s, running: true}
	tb.Cleanup(d.remove)
	if err := d.createDatabase(); err != nil {
		tb.Fatalf("testdb: dedicated server: %v", err)
	}
	tb.Logf("testdb: dedicated PostgreSQL server started in %v (%s)", time.Since(start).Round(time.Millisecond), s.tempDir)
	return d
}

// remove stops the server if it runs and removes its directory.
func (d *Dedicated) remove() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.paused != nil {
		if err := d.resumeLocked(); err != nil {
			d.tb.Errorf("testdb: dedicated server: %v", err)
		}
	}
	if d.running {
		if err := d.srv.shutdown(); err != nil {
			d.tb.Errorf("testdb: dedicated server: %v", err)
		}
		d.running = false
		return
	}
	if err := os.RemoveAll(d.srv.tempDir); err != nil {
		d.tb.Errorf("testdb: remove %s: %v", d.srv.tempDir, err)
	}
}

func (d *Dedicated) createDatabase() error {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.srv.adminURL.String())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+dedicatedDatabase); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	return nil
}

// URL returns the URL (postgres://...) of the server's database. It stays the
// same across Stop and Start.
func (d *Dedicated) URL() string {
	return d.srv.databaseURL(dedicatedDatabase)
}

// Stop stops the server the way an operator does (pg_ctl stop -m fast): open
// sessions are terminated, and new connections are refused until Start. It
// returns once the server has exited.
func (d *Dedicated) Stop() { d.stop("fast") }

// Kill stops the server the way a crash does (pg_ctl stop -m immediate): every
// server process quits at once without a goodbye to its clients, and the next
// Start runs crash recovery. Committed transactions survive.
func (d *Dedicated) Kill() { d.stop("immediate") }

func (d *Dedicated) stop(mode string) {
	d.tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		d.tb.Fatalf("testdb: dedicated server stopped twice")
	}
	if d.paused != nil {
		d.tb.Fatalf("testdb: dedicated server stopped while paused")
	}
	if out, err := d.srv.run(d.srv.bin.pgCtl, "stop", "-m", mode, "-w", "-t", "60", "-D", d.srv.dataDir); err != nil {
		d.tb.Fatalf("testdb: pg_ctl stop -m %s failed: %v\n%s", mode, err, tail(out, 2000))
	}
	d.running = false
}

// Start starts the stopped server again, on the same socket and data, and
// returns once it accepts connections.
func (d *Dedicated) Start() {
	d.tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running {
		d.tb.Fatalf("testdb: dedicated server started while running")
	}
	if err := d.srv.start(); err != nil {
		d.tb.Fatalf("testdb: dedicated server: %v", err)
	}
	d.running = true
}

// Pause stalls the running server the way an overloaded or frozen machine
// does: the postmaster and every server process get SIGSTOP, so connections
// and queries are accepted by the kernel but never answered, until Resume.
// Nothing is refused and no session ends.
func (d *Dedicated) Pause() {
	d.tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running || d.paused != nil {
		d.tb.Fatalf("testdb: Pause needs a running, unpaused dedicated server")
	}
	postmaster, err := d.postmasterPID()
	if err != nil {
		d.tb.Fatalf("testdb: dedicated server: %v", err)
	}
	// The postmaster first, so that it forks no new process; then its
	// children, again until no new one shows up (one may have been forked
	// just before the postmaster stopped).
	d.paused = []int{}
	stopped := map[int]bool{}
	for pids := []int{postmaster}; len(pids) > 0; {
		for _, pid := range pids {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil && !errors.Is(err, syscall.ESRCH) {
				d.tb.Fatalf("testdb: SIGSTOP %d: %v", pid, err)
			}
			stopped[pid] = true
			d.paused = append(d.paused, pid)
		}
		pids = nil
		for _, pid := range childrenOf(postmaster) {
			if !stopped[pid] {
				pids = append(pids, pid)
			}
		}
	}
}

// Resume continues the server that Pause stalled.
func (d *Dedicated) Resume() {
	d.tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.paused == nil {
		d.tb.Fatalf("testdb: Resume of a dedicated server that is not paused")
	}
	if err := d.resumeLocked(); err != nil {
		d.tb.Fatalf("testdb: dedicated server: %v", err)
	}
}

func (d *Dedicated) resumeLocked() error {
	var errs []error
	// Children first, so that the postmaster finds them running.
	for i := len(d.paused) - 1; i >= 0; i-- {
		if err := syscall.Kill(d.paused[i], syscall.SIGCONT); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("SIGCONT %d: %w", d.paused[i], err))
		}
	}
	d.paused = nil
	return errors.Join(errs...)
}

// postmasterPID reads the postmaster's process id from postmaster.pid.
func (d *Dedicated) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(d.srv.dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("postmaster.pid: no process id in %q", line)
	}
	return pid, nil
}

// childrenOf lists the processes whose parent is pid (Linux /proc).
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses, so
		// read from the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 2 && f[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}
