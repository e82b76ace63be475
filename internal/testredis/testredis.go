// Package testredis gives Go tests a throwaway, real Redis server of their
// own.
//
// Start runs the locally installed redis-server (found on PATH or at
// /usr/bin/redis-server) on a free loopback port, with no persistence, in a
// temporary directory, and stops it when the test ends. A test can simulate
// outages: Stop kills the server (connections are refused), Pause freezes it
// (connections hang until the client times out), and Start and Resume bring
// it back on the same port.
//
// When redis-server is not installed, the test is skipped with a loud
// message, except when the environment variable CI is "true": then it fails,
// so that the Redis tests never silently skip in CI.
//
// This package is meant to be imported only by _test.go files.
package testredis

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// defaultBinary is where the Debian package redis-server installs it.
	defaultBinary = "/usr/bin/redis-server"

	// startTimeout bounds the wait for a started server to answer PING.
	startTimeout = 30 * time.Second

	// portAttempts is how often Start tries another free port when the
	// server cannot start (another process may take the port between
	// the probe and the server's bind).
	portAttempts = 3
)

// Server is a redis-server process of one test's own.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	args []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	running bool
	paused  bool
}

// Start starts a redis-server on a free loopback port and returns once it
// answers PING. args are added to its command line, such as "--requirepass",
// "secret" (PING is then answered with an error, which also proves it up). It
// is killed and its directory removed in tb.Cleanup. If
// redis-server is not installed, the test is skipped, or fails when the
// environment variable CI is "true".
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	bin, err := findBinary()
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("testredis: redis-server is required in CI (CI=true) but unavailable: %v. The CI script must install it: apt-get install redis-server", err)
		}
		tb.Skipf("SKIPPING test that needs Redis: %v. Install it (apt-get install redis-server) to run this test.", err)
	}
	began := time.Now()
	s := &Server{tb: tb, bin: bin, dir: tb.TempDir(), args: args}
	// Registered after TempDir, so it runs first: the server is killed
	// before its directory is removed.
	tb.Cleanup(s.cleanup)

	for attempt := 1; ; attempt++ {
		if s.port, err = freePort(); err == nil {
			err = s.start()
		}
		if err == nil {
			break
		}
		if attempt == portAttempts {
			tb.Fatalf("testredis: %v", err)
		}
	}
	tb.Logf("testredis: redis-server started on 127.0.0.1:%d in %v", s.port, time.Since(began).Round(time.Millisecond))
	return s
}

// URL returns the server's URL (redis://127.0.0.1:port/0). It stays the same
// across Stop and Start.
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Addr returns the server's address (127.0.0.1:port).
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop kills the server (SIGKILL), the way a crash or an outage does: open
// connections break and new ones are refused until Start. All data is lost.
// It returns once the process has exited.
func (s *Server) Stop() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		s.tb.Fatalf("testredis: Stop of a server that is not running")
	}
	s.kill()
}

// Start starts the stopped server again on the same port, empty, and returns
// once it answers PING.
func (s *Server) Start() {
	s.tb.Helper()
	s.mu.Lock()
	running := s.running
	s.mu.Unlock()
	if running {
		s.tb.Fatalf("testredis: Start of a server that is running")
	}
	if err := s.start(); err != nil {
		s.tb.Fatalf("testredis: restart on the same port: %v", err)
	}
}

// Pause freezes the server (SIGSTOP), the way a hung host or a network
// partition looks to clients: connections are accepted by the kernel but no
// command is answered until Resume.
func (s *Server) Pause() {
	s.tb.Helper()
	s.signal(syscall.SIGSTOP, true)
}

// Resume lets a paused server go on (SIGCONT).
func (s *Server) Resume() {
	s.tb.Helper()
	s.signal(syscall.SIGCONT, false)
}

func (s *Server) signal(sig syscall.Signal, pause bool) {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.paused == pause {
		s.tb.Fatalf("testredis: %v in the wrong state (running %v, paused %v)", sig, s.running, s.paused)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.tb.Fatalf("testredis: send %v: %v", sig, err)
	}
	s.paused = pause
}

// cleanup kills the server if it runs.
func (s *Server) cleanup() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		s.kill()
	}
}

// kill kills the process and waits for it (s.mu held).
func (s *Server) kill() {
	_ = s.cmd.Process.Kill() // SIGKILL also ends a stopped process
	<-s.exited
	s.running, s.paused = false, false
}

// start starts redis-server on s.port and waits until it answers PING.
func (s *Server) start() error {
	logFile := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command(s.bin, append([]string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", logFile,
		"--daemonize", "no",
	}, s.args...)...)
	cmd.Dir = s.dir
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		err := ping(s.Addr())
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server on port %d exited during start-up: %v\nserver log tail:\n%s", s.port, cmd.ProcessState, logTail(logFile))
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within %v: %v\nserver log tail:\n%s", s.port, startTimeout, err, logTail(logFile))
		}
		time.Sleep(10 * time.Millisecond)
	}

	s.mu.Lock()
	s.cmd, s.exited, s.running, s.paused = cmd, exited, true, false
	s.mu.Unlock()
	return nil
}

// ping sends PING to addr and expects +PONG, or the error of a server that
// wants a password first.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if reply := strings.TrimSpace(line); reply != "+PONG" && !strings.HasPrefix(reply, "-NOAUTH") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// findBinary finds redis-server on PATH or at its Debian location.
func findBinary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat(defaultBinary); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return defaultBinary, nil
	}
	return "", errors.New("redis-server not found on PATH or at " + defaultBinary)
}

// logTail returns the end of the server log.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no server log)"
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
