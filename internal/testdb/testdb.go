// Package testdb gives Go tests a fresh, empty, real PostgreSQL database per
// test.
//
// If the environment variable NEXUS_TEST_POSTGRES_URL is set to an admin URL
// of an existing server (for example a CI service container), the per-test
// databases are created on that server. Otherwise one throwaway server is
// started lazily, on the first PostgresURL call of the test binary, from the
// locally installed PostgreSQL binaries (initdb, pg_ctl, postgres found on
// PATH or under /usr/lib/postgresql/*/bin). It listens only on a Unix socket
// in a temporary directory and runs with durability switched off, so it is
// fast but must never hold data worth keeping.
//
// A package that uses testdb must call Main from its TestMain so that the
// throwaway server is stopped after the tests:
//
//	func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
//
// A test that must see the database go down and come back uses NewDedicated
// instead: a server of its own that it can stop and start (see Dedicated).
//
// When PostgreSQL cannot be provided, tests calling PostgresURL are skipped
// with a loud message, except when the environment variable CI is "true": then
// they fail, so that the PostgreSQL suite never silently skips in CI.
//
// This package is meant to be imported only by _test.go files, and by the load
// harness (cmd/loadtest), which starts a server of its own through Start.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// envURL names the environment variable holding the admin URL of an
	// existing server.
	envURL = "NEXUS_TEST_POSTGRES_URL"

	// osUser is the operating system user that runs initdb and pg_ctl when
	// the tests run as root (initdb refuses to run as root).
	osUser = "postgres"

	// port is the (socket-only) port of the throwaway server. It is set
	// explicitly on both sides so that a PGPORT in the environment cannot
	// make the client and the server disagree.
	port = "5432"

	// maxSocketPath is the longest Unix socket path Linux accepts
	// (sizeof(sun_path) - 1).
	maxSocketPath = 107

	// adminTimeout bounds every statement on the admin connection.
	adminTimeout = time.Minute
)

// server is the process-wide PostgreSQL provider: either an external server
// (NEXUS_TEST_POSTGRES_URL) or a throwaway server started by this package.
type server struct {
	// adminURL is the URL of the admin database (postgres).
	adminURL *url.URL
	// socketDir, when non-empty, is the Unix socket directory of the
	// throwaway server; URLs are then built in the socket form.
	socketDir string

	// Throwaway server only; empty for an external server.
	tempDir string
	dataDir string
	bin     binaries
	runAs   *runAs
	opts    string // the options of pg_ctl start -o
	logFile string

	mu    sync.Mutex // guards admin
	admin *pgx.Conn
}

var (
	// mainRunning is set by Main; PostgresURL refuses to start a server
	// that nobody would stop.
	mainRunning atomic.Bool

	setupOnce sync.Once
	srv       *server
	setupErr  error

	// skipped records that a test was skipped because PostgreSQL was
	// unavailable, so that Main can repeat the warning.
	skipped atomic.Bool
)

// Main runs the package's tests and then stops the throwaway PostgreSQL server
// if one was started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
func Main(m *testing.M) int {
	mainRunning.Store(true)
	code := m.Run()
	mainRunning.Store(false)

	// Every test has returned, so no setup can be in flight; going through
	// the Once also publishes srv and setupErr to this goroutine.
	setupOnce.Do(func() { setupErr = errors.New("testdb: Main has returned") })
	if srv != nil {
		if err := srv.shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "testdb: %v\n", err)
		}
	}
	if skipped.Load() {
		// Repeat the warning at the end of the output. (go test in
		// package list mode still hides it for a passing package
		// unless -v is given.)
		fmt.Fprintf(os.Stderr, "\n*** %s ***\n\n", skipMessage(setupErr))
	}
	return code
}

// PostgresURL returns the URL (postgres://...) of a new, empty database
// created for this test and dropped (WITH (FORCE)) in tb.Cleanup.
//
// The first call of the test binary starts the throwaway server unless
// NEXUS_TEST_POSTGRES_URL is set. If PostgreSQL cannot be provided, the test
// is skipped, or fails when the environment variable CI is "true".
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	if !mainRunning.Load() {
		tb.Fatalf("testdb: PostgresURL needs TestMain to call testdb.Main: func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }")
	}
	setupOnce.Do(func() { srv, setupErr = setup() })
	if setupErr != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("testdb: PostgreSQL is required in CI (CI=true) but unavailable: %v", setupErr)
		}
		skipped.Store(true)
		tb.Skip(skipMessage(setupErr))
	}

	name, err := randomName()
	if err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	if err := srv.exec(`CREATE DATABASE ` + name); err != nil {
		tb.Fatalf("testdb: create database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if err := srv.exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); err != nil {
			tb.Errorf("testdb: drop database %s: %v", name, err)
		}
	})
	return srv.databaseURL(name)
}

func skipMessage(reason error) string {
	return fmt.Sprintf("SKIPPING PostgreSQL tests: %v. Install the PostgreSQL server (apt-get install postgresql) or set %s.", reason, envURL)
}

// randomName returns a fresh database name t_<16 hex digits>.
func randomName() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random database name: %w", err)
	}
	return "t_" + hex.EncodeToString(b[:]), nil
}

// setup provides the server: external if NEXUS_TEST_POSTGRES_URL is set,
// otherwise a freshly started throwaway server. It also opens the admin
// connection, so a returned server is known to work.
func setup() (*server, error) {
	if raw := os.Getenv(envURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fmt.Errorf("%s must be a postgres:// URL, got %q", envURL, redact(raw))
		}
		s := &server{adminURL: u}
		if err := s.connect(); err != nil {
			return nil, fmt.Errorf("connect to %s (%s): %w", envURL, u.Redacted(), err)
		}
		return s, nil
	}
	s, err := startServer()
	if err != nil {
		return nil, err
	}
	if err := s.connect(); err != nil {
		_ = s.shutdown()
		return nil, fmt.Errorf("connect to throwaway server: %w", err)
	}
	return s, nil
}

// redact hides a password in an unparsable URL-ish string as far as possible.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "<unparsable>"
}

// databaseURL returns the URL of database name on s.
func (s *server) databaseURL(name string) string {
	if s.socketDir != "" {
		return socketURL(s.socketDir, name)
	}
	u := *s.adminURL
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// socketURL returns the URL of database name on the throwaway server.
func socketURL(socketDir, name string) string {
	host := strings.ReplaceAll(url.QueryEscape(socketDir), "%2F", "/")
	return "postgres://" + osUser + "@/" + name + "?host=" + host + "&port=" + port + "&sslmode=disable"
}

// connect opens the shared admin connection (s.mu must not be held).
func (s *server) connect() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connectLocked()
}

func (s *server) connectLocked() error {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.adminURL.String())
	if err != nil {
		return err
	}
	s.admin = conn
	return nil
}

// exec runs sql on the shared admin connection, reconnecting once if the
// connection was lost.
func (s *server) exec(sql string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admin == nil || s.admin.IsClosed() {
		if err := s.connectLocked(); err != nil {
			return fmt.Errorf("connect to admin database: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	_, err := s.admin.Exec(ctx, sql)
	return err
}

// shutdown closes the admin connection and, for a throwaway server, stops it
// and removes its directory.
func (s *server) shutdown() error {
	s.mu.Lock()
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.admin.Close(ctx)
		cancel()
		s.admin = nil
	}
	s.mu.Unlock()

	if s.tempDir == "" {
		return nil
	}
	var errs []error
	if _, err := s.run(s.bin.pgCtl, "stop", "-m", "immediate", "-w", "-D", s.dataDir); err != nil {
		errs = append(errs, fmt.Errorf("stop throwaway PostgreSQL server: %w", err))
	}
	if err := os.RemoveAll(s.tempDir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", s.tempDir, err))
	}
	return errors.Join(errs...)
}
