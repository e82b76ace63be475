package testdb

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fastSettings are the settings of the shared throwaway server: durability
// switched off, since its data is never worth keeping.
var fastSettings = []string{"fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200"}

// startServer initialises and starts a throwaway server in a new temporary
// directory.
func startServer() (*server, error) {
	return startServerWith("nxpg", fastSettings)
}

// startServerWith initialises and starts a throwaway server in a new
// temporary directory named after prefix, with the given configuration
// settings (name=value) on top of the fixed ones (a Unix socket only).
func startServerWith(prefix string, settings []string) (_ *server, err error) {
	bin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	var as *runAs
	if os.Geteuid() == 0 {
		if as, err = newRunAs(); err != nil {
			return nil, err
		}
	}

	tempDir, err := os.MkdirTemp(tempBase(), prefix)
	if err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	s := newServer(bin, as, tempDir, filepath.Join(tempDir, "data"), settings)
	started := false
	defer func() {
		if err == nil {
			return
		}
		if started {
			_, _ = s.run(bin.pgCtl, "stop", "-m", "immediate", "-w", "-D", s.dataDir)
		}
		_ = os.RemoveAll(tempDir)
	}()

	if sock := filepath.Join(tempDir, ".s.PGSQL."+port); len(sock) > maxSocketPath {
		return nil, fmt.Errorf("unix socket path %s is longer than %d bytes; set TMPDIR to a short directory", sock, maxSocketPath)
	}
	if as != nil {
		if err := as.chownAll(tempDir); err != nil {
			return nil, err
		}
	}

	if out, err := s.run(bin.initdb, "-D", s.dataDir, "-A", "trust", "-U", osUser, "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		return nil, fmt.Errorf("initdb (%s) failed: %w\n%s", bin.initdb, err, tail(out, 2000))
	}

	started = true // from here on a (half-)started server may need stopping
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// newServer returns the server of dataDir run by bin (as as, when not nil), listening only on a Unix socket in
// dir (which also holds its log), with the given settings (name=value) on top of the fixed ones.
func newServer(bin binaries, as *runAs, dir, dataDir string, settings []string) *server {
	opts := []string{"-p", port, "-c", "listen_addresses=''", "-k", shellQuote(dir)}
	for _, kv := range settings {
		opts = append(opts, "-c", kv)
	}
	s := &server{socketDir: dir, tempDir: dir, dataDir: dataDir, bin: bin, runAs: as,
		opts: strings.Join(opts, " "), logFile: filepath.Join(dir, "server.log")}
	s.adminURL, _ = url.Parse(socketURL(dir, "postgres"))
	return s
}

// start starts the initialised throwaway server and waits until it accepts
// connections.
func (s *server) start() error {
	if out, err := s.run(s.bin.pgCtl, "start", "-w", "-t", "60", "-D", s.dataDir, "-l", s.logFile, "-o", s.opts); err != nil {
		logTail := "(no server log)"
		if b, rerr := os.ReadFile(s.logFile); rerr == nil {
			logTail = tail(b, 4000)
		}
		return fmt.Errorf("pg_ctl start (%s) failed: %w\n%s\nserver log tail:\n%s", s.bin.pgCtl, err, tail(out, 2000), logTail)
	}
	return nil
}

// tempBase returns the directory for the throwaway server: os.TempDir()
// unless that is so long that the socket path could exceed the limit, then
// /tmp.
func tempBase() string {
	if base := os.TempDir(); len(base) <= 40 {
		return base
	}
	return "/tmp"
}

// tail returns at most the last n bytes of b, trimmed.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// run runs a PostgreSQL program (as the postgres user when root) in the
// temporary directory and returns its combined output.
func (s *server) run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := s.runAs.command(ctx, name, args...)
	// The postgres user may not be able to enter the test's working
	// directory, so run from the temporary directory.
	cmd.Dir = s.tempDir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start leaves the server running; should it ever inherit the
	// output pipe, do not wait for it to exit.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}
