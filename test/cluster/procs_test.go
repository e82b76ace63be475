//go:build linux

package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// freePort returns a loopback address that was free a moment ago. The nodes keep theirs across restarts,
// since HAProxy's configuration names them.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// buildNexus builds the server once into a temporary directory, or returns NEXUS_CLUSTER_BIN when it is set.
func buildNexus(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("NEXUS_CLUSTER_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	gobin, err := exec.LookPath("go") // go test puts GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("the cluster test builds the server and needs the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "nexus")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, "../../cmd/nexus") // #nosec G204 -- the go command, building this repository
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cli runs one admin command of the server; with out, it adds --json and decodes the output into out.
func cli(t *testing.T, bin string, env []string, stdin string, out any, args ...string) {
	t.Helper()
	if out != nil {
		args = append(args, "--json")
	}
	cmd := exec.Command(bin, args...) // #nosec G204 -- the server binary this test built, with the test's arguments
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("nexus %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if out != nil {
		if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
			t.Fatalf("nexus %s: output %q: %v", strings.Join(args, " "), stdout.String(), err)
		}
	}
}

// tailBuffer keeps the last lines a process wrote.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
}

const keptLines = 60

func (b *tailBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, line)
	if len(b.lines) > 2*keptLines {
		b.lines = append(b.lines[:0], b.lines[len(b.lines)-keptLines:]...)
	}
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.lines
	if len(l) > keptLines {
		l = l[len(l)-keptLines:]
	}
	return strings.Join(l, "\n")
}

// follow copies r's lines into b until r ends.
func (b *tailBuffer) follow(r io.Reader) { b.followFiltered(r, func(string) bool { return false }) }

// followFiltered copies r's lines into b, but those skip matches, until r ends.
func (b *tailBuffer) followFiltered(r io.Reader, skip func(string) bool) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if !skip(sc.Text()) {
			b.add(sc.Text())
		}
	}
}

// node is one `nexus serve` of the cluster, on fixed loopback ports across its restarts.
type node struct {
	name        string // as HAProxy names it
	bin         string
	addr        string // the API's host:port
	metricsAddr string
	env         []string
	log         *tailBuffer

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	exitedAt time.Time // when its standard error closed: the process is gone
	err      error
}

// url returns the node's base URL.
func (n *node) url() string { return "http://" + n.addr }

// pid returns the running process's id.
func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.Process.Pid
}

// start starts the process and waits until its /readyz answers 200 (at most a minute).
func (n *node) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(n.bin, "serve") // #nosec G204 -- the server binary this test built
	cmd.Env = append(append([]string{}, n.env...), "NEXUS_HTTP_ADDR="+n.addr, "NEXUS_METRICS_ADDR="+n.metricsAddr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", n.name, err)
	}
	exited := make(chan struct{})
	go func() {
		n.log.follow(stderr)
		gone := time.Now()
		err := cmd.Wait()
		n.mu.Lock()
		n.err, n.exitedAt = err, gone
		n.mu.Unlock()
		close(exited)
	}()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()

	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(time.Minute)
	for {
		if res, err := c.Get(n.url() + "/readyz"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("%s exited during its start: %v\nlog tail:\n%s", n.name, n.exitErr(), n.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /readyz did not answer 200 within a minute\nlog tail:\n%s", n.name, n.log)
		}
	}
}

func (n *node) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// running reports whether the process has not exited.
func (n *node) running() bool {
	n.mu.Lock()
	ch := n.exited
	n.mu.Unlock()
	select {
	case <-ch:
		return false
	default:
		return true
	}
}

// signal sends sig and waits (at most a minute) for the exit, which it returns.
func (n *node) signal(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	n.mu.Lock()
	cmd, ch := n.cmd, n.exited
	n.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: send %v: %v", n.name, sig, err)
	}
	select {
	case <-ch:
		return n.exitErr()
	case <-time.After(time.Minute):
		t.Fatalf("%s did not exit within a minute of %v\nlog tail:\n%s", n.name, sig, n.log)
		return nil
	}
}

// cleanup kills the process if it still runs.
func (n *node) cleanup() {
	n.mu.Lock()
	cmd, ch := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-ch:
	default:
		_ = cmd.Process.Kill()
		<-ch
	}
}

// metric returns the value of an unlabelled series of the node's metrics listener.
func (n *node) metric(name string) (float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	res, err := c.Get("http://" + n.metricsAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+" ")
		if ok {
			var v float64
			_, err := fmt.Sscan(rest, &v)
			return v, err
		}
	}
	return 0, errors.New("no series " + name)
}
