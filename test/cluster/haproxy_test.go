//go:build linux

package cluster

import (
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// productionConfig is the HAProxy configuration operators deploy; the test's configuration takes its timeouts
// and health-check settings from it.
const productionConfig = "../../deploy/haproxy/haproxy.cfg"

// lbSettings are what the test's HAProxy shares with production's.
type lbSettings struct {
	timeouts []string      // the defaults' "timeout …" lines
	inter    time.Duration // health-check interval
	fall     int           // failed checks before a server is taken out
	rise     int           // passed checks before it is put back
	idFormat string        // the frontend's unique-id-format line
	errors   []string      // the backend's http-error lines: HAProxy's own answers
}

var (
	timeoutLine  = regexp.MustCompile(`(?m)^\s*(timeout\s+\S+\s+\S+)\s*$`)
	idFormatLine = regexp.MustCompile(`(?m)^\s*(unique-id-format\s.*)$`)
	errorLine    = regexp.MustCompile(`(?m)^\s*(http-error\s.*)$`)
	defaultsLine = regexp.MustCompile(`(?m)^\s*default-server\s.*\binter\s+(\d+)(ms|s)\s+fall\s+(\d+)\s+rise\s+(\d+)`)
)

// readLBSettings reads production's settings, so that the test proves them (a change there changes the test).
func readLBSettings(t *testing.T) lbSettings {
	t.Helper()
	b, err := os.ReadFile(productionConfig)
	if err != nil {
		t.Fatalf("read the production HAProxy configuration: %v", err)
	}
	var s lbSettings
	for _, m := range timeoutLine.FindAllStringSubmatch(string(b), -1) {
		s.timeouts = append(s.timeouts, m[1])
	}
	if m := idFormatLine.FindStringSubmatch(string(b)); m != nil {
		s.idFormat = m[1]
	}
	for _, m := range errorLine.FindAllStringSubmatch(string(b), -1) {
		s.errors = append(s.errors, m[1])
	}
	m := defaultsLine.FindStringSubmatch(string(b))
	if m == nil || len(s.timeouts) == 0 {
		t.Fatalf("%s: no timeouts or no `default-server … inter N fall N rise N` line", productionConfig)
	}
	unit := time.Second
	if m[2] == "ms" {
		unit = time.Millisecond
	}
	var n int
	fmt.Sscan(m[1], &n)
	s.inter = time.Duration(n) * unit
	fmt.Sscan(m[3], &s.fall)
	fmt.Sscan(m[4], &s.rise)
	return s
}

// findHAProxy finds the haproxy binary on PATH or where Debian installs it.
func findHAProxy() (string, error) {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/haproxy", "/usr/local/sbin/haproxy"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("haproxy not found on PATH, /usr/sbin or /usr/local/sbin (apt-get install haproxy)")
}

// routine matches HAProxy's log lines of requests answered 2xx or 409 by an instance, and of the test's reads of
// the statistics: left out of the log tail.
var routine = regexp.MustCompile(`\] (api nexus/nexus\d+ \S+ (2\d\d|409) |stats stats/)`)

// lb is the running HAProxy.
type lb struct {
	addr      string // the frontend's host:port
	statsAddr string
	cmd       *exec.Cmd
	exited    chan struct{}
	log       *tailBuffer
}

// startLB writes the configuration and starts HAProxy in the foreground, with production's settings and nothing
// more: timeouts, round robin, GET /readyz every inter with fall and rise, X-Forwarded-For (and a response header
// naming the instance, for the test's messages). A request refused by a dead instance's closed port is retried
// on another instance (retries, 3 by default, pick another server without persistence).
func startLB(t *testing.T, bin string, s lbSettings, nodes []*node) *lb {
	t.Helper()
	l := &lb{addr: freePort(t), statsAddr: freePort(t), exited: make(chan struct{}), log: &tailBuffer{}}
	var b strings.Builder
	fmt.Fprintf(&b, "global\n    maxconn 4096\n    log stderr format raw local0\n\n")
	fmt.Fprintf(&b, "defaults\n    mode http\n    log global\n    option httplog\n")
	for _, tl := range s.timeouts {
		fmt.Fprintf(&b, "    %s\n", tl)
	}
	fmt.Fprintf(&b, "\nfrontend api\n    bind %s\n    option forwardfor\n    http-request set-header X-Forwarded-Proto https\n", l.addr)
	if s.idFormat != "" {
		fmt.Fprintf(&b, "    %s\n", s.idFormat)
	}
	fmt.Fprintf(&b, "    default_backend nexus\n\n")
	fmt.Fprintf(&b, "backend nexus\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n")
	for _, e := range s.errors {
		fmt.Fprintf(&b, "    %s\n", e)
	}
	fmt.Fprintf(&b, "    http-response set-header X-Cluster-Node %%s\n")
	fmt.Fprintf(&b, "    default-server inter %dms fall %d rise %d\n", s.inter.Milliseconds(), s.fall, s.rise)
	for _, n := range nodes {
		fmt.Fprintf(&b, "    server %s %s check\n", n.name, n.addr)
	}
	fmt.Fprintf(&b, "\nlisten stats\n    bind %s\n    stats enable\n    stats uri /stats\n", l.statsAddr)
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-q", "-f", cfg).CombinedOutput(); err != nil { // #nosec G204 -- haproxy, on the test's own file
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, b.String())
	}
	l.cmd = exec.Command(bin, "-db", "-f", cfg) // #nosec G204 -- haproxy, on the test's own file
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := l.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	l.cmd.Stdout = io.Discard
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("start haproxy: %v", err)
	}
	go func() {
		l.log.followFiltered(stderr, routine.MatchString)
		_ = l.cmd.Wait()
		close(l.exited)
	}()
	t.Cleanup(func() {
		_ = l.cmd.Process.Kill()
		<-l.exited
	})
	return l
}

// states returns each server's status as HAProxy's statistics say (UP, DOWN, "UP 1/2", …).
func (l *lb) states() (map[string]string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	res, err := c.Get("http://" + l.statsAddr + "/stats;csv")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# "))).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("stats: %v %.200q", err, body)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	out := map[string]string{}
	for _, r := range rows[1:] {
		if len(r) > col["status"] && r[col["pxname"]] == "nexus" && r[col["svname"]] != "BACKEND" {
			out[r[col["svname"]]] = r[col["status"]]
		}
	}
	return out, nil
}

// waitState waits (at most limit) until HAProxy reports server in state ("UP" or "DOWN") and returns how long it
// took.
func (l *lb) waitState(t *testing.T, server, state string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var last map[string]string
	for time.Since(start) < limit {
		st, err := l.states()
		if err == nil {
			last = st
			if st[server] == state {
				return time.Since(start)
			}
		}
		select {
		case <-l.exited:
			t.Fatalf("haproxy exited\n%s", l.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("HAProxy did not see %s %s within %v (states %v)", server, state, limit, last)
	return 0
}
