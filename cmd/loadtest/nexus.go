package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// serverEnv returns the environment of every nexus command the harness runs: the database (a PostgreSQL URL,
// or else an SQLite data directory), a fresh secret key, plain HTTP behind an assumed TLS proxy, and every rate
// limit and the failed-login slow-down off. Nothing else is set, so every other setting is the server's
// default; the harness's own environment is not passed on, apart from PATH, HOME and TMPDIR.
func serverEnv(databaseURL, dataDir string, secret string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir(),
		"NEXUS_SECRET_KEY=" + secret,
		"NEXUS_BEHIND_TLS_PROXY=true",
	}
	for _, k := range rateLimitVars {
		env = append(env, k+"=off")
	}
	if databaseURL != "" {
		return append(env, "NEXUS_DATABASE_URL="+databaseURL)
	}
	return append(env, "NEXUS_DATA_DIR="+dataDir)
}

// rateLimitVars are the limits the harness switches off ("off" is config.ParseRate's word for it).
var rateLimitVars = []string{"NEXUS_RATE_LIMIT_IP", "NEXUS_RATE_LIMIT_AUTH_IP", "NEXUS_RATE_LIMIT_LOGIN_ACCOUNT",
	"NEXUS_RATE_LIMIT_CLIENT", "NEXUS_RATE_LIMIT_PRINCIPAL", "NEXUS_LOGIN_FAILURES"}

// newSecret returns 32 random bytes in standard base64, as NEXUS_SECRET_KEY wants.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// cli runs one nexus admin command; with out, it adds --json and decodes the output into out.
func cli(ctx context.Context, bin string, env []string, stdin string, out any, args ...string) error {
	if out != nil {
		args = append(args, "--json")
	}
	cmd := exec.CommandContext(ctx, bin, args...) // #nosec G204 -- the server binary the operator named (-bin), with the harness's own arguments
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nexus %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.Bytes(), 2000))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		return fmt.Errorf("nexus %s: output %q: %w", strings.Join(args, " "), stdout.String(), err)
	}
	return nil
}

// server is a running `nexus serve`.
type server struct {
	cmd    *exec.Cmd
	addr   string        // host:port it listens on
	ready  time.Duration // from the process's start until /readyz first answered 200
	exited chan struct{}
	err    error // the exit status, once exited is closed

	mu   sync.Mutex
	logs []string // the last lines it wrote to stderr
}

// keptLogLines is how many of the server's last log lines are kept for an error message.
const keptLogLines = 40

// maxPrintedWarnings is how many of the server's warning and error log lines are copied to the harness's
// standard error.
const maxPrintedWarnings = 20

var listening = regexp.MustCompile(`nexus: listening on http://(\S+)`)

// startNexus starts `bin serve` on a free loopback port and waits until /readyz answers 200. The server's
// warnings and errors are copied to diag (the first few); its access log is read and dropped.
func startNexus(ctx context.Context, bin string, env []string, diag io.Writer) (*server, error) {
	n := &server{exited: make(chan struct{})}
	n.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	n.cmd.Env = env
	// Its own process group: a Ctrl-C in the terminal reaches the harness only, which then stops the server.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	started := time.Now()
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	addrc := make(chan string, 1)
	var pipes sync.WaitGroup
	pipes.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	})
	pipes.Go(func() {
		printed := 0
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if printed < maxPrintedWarnings && (strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`)) {
				printed++
				fmt.Fprintf(diag, "loadtest: server: %s\n", line)
			}
			n.mu.Lock()
			n.logs = append(n.logs, line)
			if len(n.logs) > 2*keptLogLines {
				n.logs = append(n.logs[:0], n.logs[len(n.logs)-keptLogLines:]...)
			}
			n.mu.Unlock()
		}
	})
	go func() {
		pipes.Wait() // Wait closes the pipes: read them to the end first
		n.err = n.cmd.Wait()
		close(n.exited)
	}()

	fail := func(err error) (*server, error) {
		n.stop()
		return nil, fmt.Errorf("%w\nserver log tail:\n%s", err, n.logTail())
	}
	select {
	case n.addr = <-addrc:
	case <-n.exited:
		return fail(fmt.Errorf("nexus serve exited: %v", n.err))
	case <-time.After(time.Minute):
		return fail(errors.New("nexus serve printed no listening address in a minute"))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	deadline := started.Add(time.Minute)
	for {
		res, err := client.Get("http://" + n.addr + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				n.ready = time.Since(started)
				return n, nil
			}
		}
		select {
		case <-n.exited:
			return fail(fmt.Errorf("nexus serve exited: %v", n.err))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail(errors.New("/readyz did not answer 200 within a minute"))
		}
	}
}

// rss returns the server's resident set size in bytes (VmRSS), or 0 when it cannot be read.
func (n *server) rss() int64 { return procStatus(n.cmd.Process.Pid, "VmRSS") }

// hwm returns the server's peak resident set size in bytes (VmHWM), or 0 when it cannot be read.
func (n *server) hwm() int64 { return procStatus(n.cmd.Process.Pid, "VmHWM") }

// cpu returns the CPU time (user and system) the server has used, or 0 when it cannot be read.
func (n *server) cpu() time.Duration { return procCPU(n.cmd.Process.Pid) }

// stop sends SIGTERM and waits for the exit, and sends SIGKILL after 30 s (the server drains its event
// pipeline first). It may be called more than once.
func (n *server) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// logTail returns the server's last log lines.
func (n *server) logTail() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	lines := n.logs
	if len(lines) > keptLogLines {
		lines = lines[len(lines)-keptLogLines:]
	}
	return strings.Join(lines, "\n")
}

// procStatus reads a size field (such as VmRSS) of /proc/<pid>/status in bytes, or 0.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest) // "123456 kB"
		if len(f) == 2 && f[1] == "kB" {
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// clockTicks is USER_HZ, the unit of the times in /proc/<pid>/stat: 100 on every Linux platform Go supports.
const clockTicks = 100

// procCPU reads utime + stime of /proc/<pid>/stat, or 0.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// pid (comm) state ppid …: comm may hold spaces and parentheses, so count from the last ')'. utime and
	// stime are fields 14 and 15, the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+st) * time.Second / clockTicks
}

// tail returns at most the last n bytes of b, trimmed.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
