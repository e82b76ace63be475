package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// TestLifecycle runs the listener's defences and its shutdown against the real binary, on PostgreSQL and on
// SQLite: slow-header and slow-body clients are cut off while others are served; SIGTERM under load fails
// /readyz at once, serves on for NEXUS_SHUTDOWN_DELAY, completes the request in flight, exits 0 and loses no
// acknowledged event; a second signal exits at once.
func TestLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("the lifecycle tests build and run the server binary; skipped with -short")
	}
	bin := buildNexus(t)
	for _, dialect := range []store.Dialect{store.Postgres, store.SQLite} {
		t.Run(string(dialect), func(t *testing.T) {
			t.Run("SlowHeaders", func(t *testing.T) { testSlowClients(t, bin, dialect, false) })
			t.Run("SlowBody", func(t *testing.T) { testSlowClients(t, bin, dialect, true) })
			t.Run("SlowReaderIdleHeaderCap", func(t *testing.T) { testSlowReaderIdleHeaderCap(t, bin, dialect) })
			t.Run("SIGTERMUnderLoad", func(t *testing.T) { testSIGTERMUnderLoad(t, bin, dialect) })
			t.Run("SecondSignal", func(t *testing.T) { testSecondSignal(t, bin, dialect) })
		})
	}
}

// lifecycleVars returns the environment of a server on a fresh database of the dialect, with the rate limits
// off (the tests send thousands of requests from one address) and the extra variables, and the database/sql
// driver and DSN that read that database directly.
func lifecycleVars(t *testing.T, dialect store.Dialect, extra map[string]string) (vars map[string]string, driver, dsn string) {
	t.Helper()
	dataDir := t.TempDir()
	vars = map[string]string{"NEXUS_DATA_DIR": dataDir, "NEXUS_LOG_LEVEL": "warn",
		"NEXUS_RATE_LIMIT_IP": "off", "NEXUS_RATE_LIMIT_AUTH_IP": "off", "NEXUS_RATE_LIMIT_LOGIN_ACCOUNT": "off",
		"NEXUS_RATE_LIMIT_CLIENT": "off", "NEXUS_RATE_LIMIT_PRINCIPAL": "off"}
	driver, dsn = "sqlite", filepath.Join(dataDir, store.SQLiteFile)
	if dialect == store.Postgres {
		vars["NEXUS_DATABASE_URL"] = testdb.PostgresURL(t)
		driver, dsn = "pgx", vars["NEXUS_DATABASE_URL"]
	}
	for k, v := range extra {
		vars[k] = v
	}
	return vars, driver, dsn
}

// restartVars are vars without the shutdown delay, for the restart that checks the database.
func restartVars(vars map[string]string) map[string]string {
	r := map[string]string{}
	for k, v := range vars {
		if k != "NEXUS_SHUTDOWN_DELAY" {
			r[k] = v
		}
	}
	return r
}

// host is the server's host:port.
func (p *nexusProcess) host() string { return strings.TrimPrefix(p.url, "http://") }

// signal sends sig to the server.
func (p *nexusProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to the server: %v", sig, err)
	}
}

// exitWithin waits at most d for the server to exit and returns its exit status; it fails the test if the
// server is still running after d.
func (p *nexusProcess) exitWithin(t *testing.T, d time.Duration, why string) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		t.Fatalf("the server did not exit within %v %s\nstderr:\n%s", d, why, p.stderr)
		return nil
	}
}

// eventBody is one event with a fresh event_id.
func eventBody(rng *rand.Rand, name string) (eventID string, body []byte) {
	eventID = randomUUID(rng)
	body, _ = json.Marshal(map[string]any{"event_id": eventID, "event_name": name, "event_category": "test",
		"timestamp": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)})
	return eventID, body
}

// slowConn is what became of one attack connection.
type slowConn struct {
	closed bool   // the server closed it (the client read EOF or a reset)
	status string // the status line the server answered before closing, if any
	err    error  // why the client gave up, when the server did not close it
	took   time.Duration
}

// slowAttack is a sustained slow-client attack: slowAttackers connections at a time, each sending start and then
// one byte of trickle every 200 ms, never completing the request; when the server closes a connection, its
// attacker opens the next one, until stop. A connection the server leaves open for slowBound fails the test.
type slowAttack struct {
	open     atomic.Int64 // attack connections open now
	mu       sync.Mutex
	conns    []slowConn
	closedBy []int // connections closed by the server, per attacker
	stop     atomic.Bool
	wg       sync.WaitGroup
}

const (
	slowAttackers = 50
	slowEvery     = 200 * time.Millisecond
	slowBound     = 20 * time.Second // far above the 1 s timeouts: reached only if the server never cuts a client off
)

// startSlowAttack starts the attackers against addr.
func startSlowAttack(addr, start, trickle string) *slowAttack {
	a := &slowAttack{closedBy: make([]int, slowAttackers)}
	for i := range slowAttackers {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for !a.stop.Load() {
				c := slowClient(addr, start, trickle, &a.open)
				a.mu.Lock()
				a.conns = append(a.conns, c)
				if c.closed {
					a.closedBy[i]++
				}
				a.mu.Unlock()
				if !c.closed {
					return
				}
			}
		}()
	}
	return a
}

// countZero counts the zeros in s.
func countZero(s []int) int {
	n := 0
	for _, v := range s {
		if v == 0 {
			n++
		}
	}
	return n
}

// closedByPeer reports whether a read error says that the other end closed the connection.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// slowClient runs one attack connection until the server closes it or slowBound passes.
func slowClient(addr, start, trickle string, open *atomic.Int64) slowConn {
	begin := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return slowConn{err: fmt.Errorf("dial: %w", err)}
	}
	defer conn.Close()
	open.Add(1)
	defer open.Add(-1)
	_ = conn.SetDeadline(begin.Add(slowBound))
	read := make(chan slowConn, 1)
	go func() {
		// Whatever the server sends before it closes the connection; only its status line matters.
		raw, err := io.ReadAll(conn)
		c := slowConn{took: time.Since(begin)}
		c.status, _, _ = strings.Cut(string(raw), "\r\n")
		var ne net.Error
		switch {
		case err == nil || closedByPeer(err): // ReadAll returns nil at EOF
			c.closed = true
		case errors.As(err, &ne) && ne.Timeout():
			c.err = fmt.Errorf("the server left the connection open for %v", slowBound)
		default:
			c.err = err
		}
		read <- c
	}()
	if _, err := io.WriteString(conn, start); err != nil {
		return <-read // the server closed it already
	}
	tick := time.NewTicker(slowEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case c := <-read:
			return c
		case <-tick.C:
			// A write error means the server closed the connection; the reader sees it too.
			_, _ = io.WriteString(conn, trickle[i%len(trickle):i%len(trickle)+1])
		}
	}
}

// finish stops the attack, waits for every open connection to be closed, and checks that the server closed
// each one, answering at most a 4xx first.
func (a *slowAttack) finish(t *testing.T) {
	t.Helper()
	a.stop.Store(true)
	a.wg.Wait()
	var took []time.Duration
	var open []error
	statuses := map[string]int{}
	for _, c := range a.conns {
		if !c.closed {
			open = append(open, c.err)
			continue
		}
		took = append(took, c.took)
		statuses[c.status]++
	}
	if len(open) > 0 {
		t.Errorf("%d of %d attack connections were not closed by the server (first: %v)", len(open), len(a.conns), open[0])
	}
	for status, n := range statuses {
		if status != "" && !strings.HasPrefix(status, "HTTP/1.1 4") {
			t.Errorf("%d attack connections were answered %q before they were closed; want no answer or a 4xx", n, status)
		}
	}
	if none := countZero(a.closedBy); none > 0 {
		t.Errorf("%d of %d attackers saw none of their connections closed by the server", none, slowAttackers)
	}
	slices.Sort(took)
	if len(took) > 0 {
		t.Logf("%d attack connections, %d closed by the server (answered before closing: %v); time to close: median %v, max %v",
			len(a.conns), len(took), statuses, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	}
}

// testSlowClients attacks the server with slowAttackers connections that send a request header (slowBody false,
// NEXUS_READ_HEADER_TIMEOUT=1s) or an event's body (slowBody true, NEXUS_READ_TIMEOUT=1s) one byte every 200 ms,
// and meanwhile sends normal requests: /healthz and authenticated event posts. Every normal request succeeds,
// enough of them while the attack connections are open, and the server closes every attack connection.
func testSlowClients(t *testing.T, bin string, dialect store.Dialect, slowBody bool) {
	timeout := "NEXUS_READ_HEADER_TIMEOUT"
	if slowBody {
		timeout = "NEXUS_READ_TIMEOUT"
	}
	vars, _, _ := lifecycleVars(t, dialect, map[string]string{timeout: "1s"})
	srv := startNexus(t, bin, vars)
	email, password, client := srv.credentials(t)
	token := srv.login(t, email, password, client)

	// The header never ends; the body never reaches its Content-Length.
	start, trickle := "GET /healthz HTTP/1.1\r\nHost: "+srv.host()+"\r\nX-Slow: ", "abcdefghijklmnopqrstuvwxyz"
	if slowBody {
		start = "POST /v2/analytics/events HTTP/1.1\r\nHost: " + srv.host() + "\r\nAuthorization: Bearer " + token +
			"\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{\"event_name\":\"slow\",\"event_category\":\"test\",\"properties\":{\"pad\":\""
	}
	attack := startSlowAttack(srv.host(), start, trickle)

	// Normal requests until each attacker saw the server close a connection and each kind of request succeeded
	// at least 5 times while at least 80% of the attack connections were open.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const busy = slowAttackers * 8 / 10
	var health, posts, healthBusy, postsBusy int
	deadline := time.Now().Add(slowBound + 10*time.Second)
	for {
		attack.mu.Lock()
		every := !slices.Contains(attack.closedBy, 0)
		attack.mu.Unlock()
		if every && healthBusy >= 5 && postsBusy >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after %v: %d of %d normal requests while the attack was on (want 5 of each), attackers with a closed connection: %v",
				slowBound+10*time.Second, healthBusy, postsBusy, attack.closedBy)
			break
		}
		before := attack.open.Load()
		status, raw, err := srv.do("GET", "/healthz", "", nil, nil)
		if err != nil || status != http.StatusOK {
			t.Errorf("GET /healthz during the attack: %d %v %s", status, err, raw)
		} else {
			health++
			if before >= busy && attack.open.Load() >= busy {
				healthBusy++
			}
		}
		before = attack.open.Load()
		_, body := eventBody(rng, "during_attack")
		if o := srv.postEvent(token, body); o.status != http.StatusAccepted {
			t.Errorf("POST /v2/analytics/events during the attack: %d %v %s", o.status, o.err, o.body)
		} else {
			posts++
			if before >= busy && attack.open.Load() >= busy {
				postsBusy++
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	attack.finish(t)
	t.Logf("normal requests during the attack: GET /healthz %d (%d with ≥%d attack connections open), event posts %d (%d)",
		health, healthBusy, busy, posts, postsBusy)
	srv.stop(t)
}

// testSlowReaderIdleHeaderCap checks NEXUS_WRITE_TIMEOUT and NEXUS_IDLE_TIMEOUT (1 s each): clients that
// pipeline requests for a large document and stop reading are cut off before they get all the answers, while
// normal requests succeed; an idle keep-alive connection is closed by the server. And the listener's own header
// cap: a header above NEXUS_MAX_HEADER_BYTES (32 KB) still reaches the application, whose middleware answers
// it, while a grossly oversized one is refused by the listener with 431 before it is read into memory.
func testSlowReaderIdleHeaderCap(t *testing.T, bin string, dialect store.Dialect) {
	const (
		readers   = 10
		pipelined = 400 // 400 answers of 80 KB: far more than the sockets' buffers hold
		stall     = 3 * time.Second
	)
	vars, _, _ := lifecycleVars(t, dialect, map[string]string{
		"NEXUS_WRITE_TIMEOUT": "1s", "NEXUS_REQUEST_TIMEOUT": "500ms", "NEXUS_IDLE_TIMEOUT": "1s"})
	srv := startNexus(t, bin, vars)
	email, password, client := srv.credentials(t)
	token := srv.login(t, email, password, client)

	// The slow readers send their requests and then read nothing for stall, three times the write timeout.
	request := "GET /v2/openapi.yaml HTTP/1.1\r\nHost: " + srv.host() + "\r\n\r\n"
	conns := make([]net.Conn, readers)
	for i := range conns {
		c, err := net.Dial("tcp", srv.host())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(slowBound))
		if _, err := io.WriteString(c, strings.Repeat(request, pipelined)); err != nil {
			t.Fatalf("send the pipelined requests: %v", err)
		}
		conns[i] = c
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for end := time.Now().Add(stall); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if status, raw, err := srv.do("GET", "/healthz", "", nil, nil); err != nil || status != http.StatusOK {
			t.Errorf("GET /healthz while clients stall: %d %v %s", status, err, raw)
		}
		_, body := eventBody(rng, "during_slow_read")
		if o := srv.postEvent(token, body); o.status != http.StatusAccepted {
			t.Errorf("POST /v2/analytics/events while clients stall: %d %v %s", o.status, o.err, o.body)
		}
	}
	// Now each reads as fast as it can: the server cut the connection off before all the answers were written.
	got := make([]int, readers)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(c)
			var err error
			for ; got[i] < pipelined; got[i]++ {
				var resp *http.Response
				if resp, err = http.ReadResponse(br, nil); err != nil {
					break
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					break
				}
				if resp.StatusCode != http.StatusOK {
					t.Errorf("slow reader %d, answer %d: %d", i, got[i], resp.StatusCode)
				}
			}
			switch {
			case got[i] == pipelined:
				t.Errorf("slow reader %d got all %d answers after stalling for %v: the write timeout did not cut it off", i, pipelined, stall)
			case !closedByPeer(err):
				t.Errorf("slow reader %d, after %d answers: %v; want the server to close the connection", i, got[i], err)
			}
		}()
	}
	wg.Wait()
	t.Logf("answers the slow readers got of %d before the server closed the connection: %v", pipelined, got)

	// An idle keep-alive connection: the server closes it.
	c, err := net.Dial("tcp", srv.host())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(slowBound))
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", srv.host())
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("GET /healthz on a keep-alive connection: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	idle := time.Now()
	if n, err := br.Read(make([]byte, 1)); n != 0 || !closedByPeer(err) {
		t.Errorf("an idle keep-alive connection: read %d bytes, %v; want the server to close it", n, err)
	} else {
		t.Logf("the idle keep-alive connection was closed after %v", time.Since(idle).Round(time.Millisecond))
	}

	// Headers of 40 KB and 200 KB.
	header := func(size int) (*http.Response, string, error) {
		c, err := net.Dial("tcp", srv.host())
		if err != nil {
			return nil, "", err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(slowBound))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Big: %s\r\n\r\n", srv.host(), strings.Repeat("a", size))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		return resp, string(raw), err
	}
	switch resp, raw, err := header(40 << 10); {
	case err != nil:
		t.Errorf("a 40 KB header: %v", err)
	case resp.StatusCode == http.StatusRequestHeaderFieldsTooLarge && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json"):
		t.Errorf("a 40 KB header is refused by the listener (%s %q), not answered by the application", resp.Status, raw)
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge:
		t.Errorf("a 40 KB header: %s %q", resp.Status, raw)
	default:
		t.Logf("a 40 KB header: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp, raw, err := header(200 << 10); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 200 KB header: %v %v %q; want 431", resp, err, raw)
	}
	if status, raw, err := srv.do("GET", "/healthz", "", nil, nil); err != nil || status != http.StatusOK {
		t.Errorf("GET /healthz after the oversized headers: %d %v %s", status, err, raw)
	}

	// Transfer-Encoding with Content-Length (RFC 9112 section 6.1): 400, and the connection closed after it; the
	// request the Content-Length framing would have found in the body is never answered.
	smuggle, err := net.Dial("tcp", srv.host())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer smuggle.Close()
	_ = smuggle.SetDeadline(time.Now().Add(slowBound))
	fmt.Fprintf(smuggle, "POST /v2/auth/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"+
		"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", srv.host(), srv.host())
	sr := bufio.NewReader(smuggle)
	if resp, err := http.ReadResponse(sr, nil); err != nil || resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Errorf("Transfer-Encoding with Content-Length: %v %v; want 400 and Connection: close", resp, err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		if n, err := sr.Read(make([]byte, 1)); n != 0 || !closedByPeer(err) {
			t.Errorf("after Transfer-Encoding with Content-Length: read %d bytes, %v; want the connection closed", n, err)
		}
	}
	srv.stop(t)
}

// Phases of the SIGTERM test, as the client sees them.
const (
	phaseServing  = iota // before /readyz was seen failing
	phaseDraining        // /readyz fails, the listener still serves
	phaseClosed          // the listener refuses connections
)

// posted is one event post of the SIGTERM test.
type posted struct {
	eventID    string
	o          outcome
	start, end int32 // phase when the request was sent and when it was answered or failed
}

// testSIGTERMUnderLoad sends events from 16 workers, with a batch request half sent, and then SIGTERM: /readyz
// fails at once while /healthz and event posts succeed for NEXUS_SHUTDOWN_DELAY; then the listener closes and
// clients get connection errors, never an error status; the half-sent batch, completed after the listener
// closed, is answered 202; the server exits 0; after a restart every event answered 202 is stored.
func testSIGTERMUnderLoad(t *testing.T, bin string, dialect store.Dialect) {
	const (
		workers   = 16
		maxEvents = 20_000 // listEvents pages through at most 25,000
		batchSize = 500
	)
	vars, driver, dsn := lifecycleVars(t, dialect, map[string]string{"NEXUS_SHUTDOWN_DELAY": "2s"})
	srv := startNexus(t, bin, vars)
	email, password, client := srv.credentials(t)
	token := srv.login(t, email, password, client)

	var phase atomic.Int32
	exited := func() bool {
		select {
		case <-srv.exited:
			return true
		default:
			return false
		}
	}

	// The workers.
	var (
		mu      sync.Mutex
		results []posted
		sent    atomic.Int64
		acked   atomic.Int64
		wg      sync.WaitGroup
	)
	seed := uint64(time.Now().UnixNano())
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for !exited() && sent.Add(1) <= maxEvents {
				id, body := eventBody(rng, "sigterm_load")
				r := posted{eventID: id, start: phase.Load()}
				r.o = srv.postEvent(token, body)
				r.end = phase.Load()
				if r.o.status == http.StatusAccepted {
					acked.Add(1)
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if r.o.err != nil {
					time.Sleep(10 * time.Millisecond) // refused connections fail fast
				}
			}
		}()
	}

	// The batch in flight across the shutdown: headers and half of the body now, the rest after the listener
	// closed.
	rng := rand.New(rand.NewPCG(seed, workers))
	batchIDs := make([]string, batchSize)
	items := make([]json.RawMessage, batchSize)
	for i := range items {
		var b []byte
		batchIDs[i], b = eventBody(rng, "sigterm_in_flight")
		items[i] = b
	}
	batch, _ := json.Marshal(map[string]any{"events": items})
	inflight, err := net.Dial("tcp", srv.host())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer inflight.Close()
	_ = inflight.SetDeadline(time.Now().Add(time.Minute))
	fmt.Fprintf(inflight, "POST /v2/analytics/events/batch HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		srv.host(), token, len(batch))
	if _, err := inflight.Write(batch[:len(batch)/2]); err != nil {
		t.Fatalf("send half of the batch: %v", err)
	}

	// SIGTERM once the load is on.
	if status, raw, err := srv.do("GET", "/readyz", "", nil, nil); err != nil || status != http.StatusOK {
		t.Fatalf("GET /readyz before SIGTERM: %d %v %s", status, err, raw)
	}
	for acked.Load() < 200 {
		if exited() || sent.Load() > maxEvents {
			t.Fatalf("the load did not get going: %d events answered 202\nstderr:\n%s", acked.Load(), srv.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.signal(t, syscall.SIGTERM)
	sigAt := time.Now()

	// The monitor: /readyz and /healthz on connections of their own, and whether the listener accepts.
	type probe struct {
		phase           int32
		ready, health   int
		readyR, healthR string
	}
	var probes []probe
	mon := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string) {
		r, err := mon.Get(srv.url + path)
		if err != nil {
			return 0, err.Error()
		}
		defer r.Body.Close()
		raw, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(raw)
	}
	var closedAt time.Time
	for phase.Load() != phaseClosed {
		if time.Since(sigAt) > 30*time.Second {
			t.Fatalf("the listener still accepts connections 30 s after SIGTERM with NEXUS_SHUTDOWN_DELAY=2s")
		}
		p := probe{phase: phase.Load()}
		p.ready, p.readyR = get("/readyz")
		p.health, p.healthR = get("/healthz")
		if p.ready == 0 || p.health == 0 {
			if c, err := net.DialTimeout("tcp", srv.host(), time.Second); err != nil {
				phase.Store(phaseClosed)
				closedAt = time.Now()
				break
			} else {
				c.Close()
			}
		}
		if p.phase == phaseServing && p.ready == http.StatusServiceUnavailable {
			phase.Store(phaseDraining)
			p.phase = phaseDraining
		}
		probes = append(probes, p)
		time.Sleep(50 * time.Millisecond)
	}

	// The rest of the batch, after the listener closed: the request was in flight and is answered.
	if _, err := inflight.Write(batch[len(batch)/2:]); err != nil {
		t.Fatalf("send the rest of the batch after the listener closed: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(inflight), nil)
	if err != nil {
		t.Fatalf("the batch in flight at SIGTERM got no answer: %v\nstderr:\n%s", err, srv.stderr)
	}
	var receipt struct {
		Results []struct {
			Status string `json:"status"`
			ID     string `json:"id"`
		} `json:"results"`
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &receipt) != nil || len(receipt.Results) != batchSize {
		t.Fatalf("the batch in flight at SIGTERM: %d %s", resp.StatusCode, raw)
	}
	batchAcked := map[string]string{}
	for i, r := range receipt.Results {
		if r.Status != "accepted" {
			t.Errorf("batch event %d: %s", i, r.Status)
		}
		batchAcked[batchIDs[i]] = r.ID
	}

	if err := srv.exitWithin(t, 30*time.Second, "after the listener closed"); err != nil {
		t.Fatalf("the server exited with %v after SIGTERM; want 0\nstderr:\n%s", err, srv.stderr)
	}
	t.Logf("SIGTERM → listener closed (as the client saw it): %v; exited 0", closedAt.Sub(sigAt).Round(time.Millisecond))
	wg.Wait()

	// The probes: ready before, failing from the first 503 on; /healthz answers until the listener closes.
	var readyDraining, healthDraining int
	for _, p := range probes {
		switch {
		case p.phase == phaseServing && p.ready == http.StatusOK: // SIGTERM was sent but not handled yet
		case p.phase == phaseDraining && p.ready == http.StatusServiceUnavailable:
			readyDraining++
		case p.ready != 0: // 0: the connection failed, as the listener closed
			t.Errorf("GET /readyz in phase %d: %d %s", p.phase, p.ready, p.readyR)
		}
		switch {
		case p.health == http.StatusOK:
			if p.phase == phaseDraining {
				healthDraining++
			}
		case p.health != 0:
			t.Errorf("GET /healthz in phase %d: %d %s", p.phase, p.health, p.healthR)
		}
	}
	if readyDraining == 0 || healthDraining == 0 {
		t.Errorf("during the shutdown delay: /readyz answered 503 %d times, /healthz 200 %d times; want both", readyDraining, healthDraining)
	}

	// The events: nothing but 202 and connection errors; connection errors only once the shutdown began and for
	// every request sent after the listener closed; posts answered during the delay.
	var byPhase [3][3]int // [start phase][0: 202, 1: connection error, 2: other]
	for _, r := range results {
		k := 2
		switch {
		case r.o.status == http.StatusAccepted:
			k = 0
		case r.o.err != nil:
			k = 1
			if r.start == phaseServing && r.end == phaseServing {
				t.Errorf("event post failed before the shutdown began: %v", r.o.err)
			}
		default:
			t.Errorf("event post (sent in phase %d): %d %s", r.start, r.o.status, r.o.body)
		}
		if r.start == phaseClosed && k != 1 {
			t.Errorf("an event post sent after the listener closed was answered %d", r.o.status)
		}
		byPhase[r.start][k]++
	}
	t.Logf("event posts [202, connection error, other] by the phase they were sent in: serving %v, draining %v, closed %v; during the delay /readyz answered 503 %d times, /healthz 200 %d times",
		byPhase[phaseServing], byPhase[phaseDraining], byPhase[phaseClosed], readyDraining, healthDraining)
	if byPhase[phaseDraining][0] == 0 {
		t.Errorf("no event post sent during the shutdown delay was answered 202")
	}
	if t.Failed() {
		t.FailNow()
	}

	// After a restart on the same database every event answered 202 is stored, and nothing else was stored but
	// events that were sent.
	srv = startNexus(t, bin, restartVars(vars))
	token = srv.login(t, email, password, client)
	listed := srv.listEvents(t, token)
	want := map[string]string{}
	sentIDs := map[string]bool{}
	for _, r := range results {
		sentIDs[r.eventID] = true
		if r.o.status == http.StatusAccepted {
			want[r.eventID] = r.o.id
		}
	}
	for id, stored := range batchAcked {
		sentIDs[id] = true
		want[id] = stored
	}
	for eventID, id := range want {
		if got := listed[eventID]; len(got) != 1 || got[0] != id {
			t.Errorf("event_id %s was answered 202 with id %s but is stored as %v", eventID, id, got)
		}
	}
	for eventID := range listed {
		if !sentIDs[eventID] {
			t.Errorf("stored event_id %s was never sent", eventID)
		}
	}
	rows, distinct := countEvents(t, driver, dsn)
	// The events posted during the slow-client tests are not in this database: each test has its own.
	if rows != len(listed) || distinct != len(listed) {
		t.Errorf("the database holds %d events with %d distinct event_ids, the listing %d", rows, distinct, len(listed))
	}
	t.Logf("after the restart: %d events answered 202 (%d in the batch in flight), all stored; %d stored in all",
		len(want), len(batchAcked), len(listed))
	srv.stop(t)
}

// testSecondSignal posts events, sends SIGTERM and, once /readyz fails, SIGINT during a one-minute shutdown
// delay: the server logs it and exits at once, non-zero; after a restart every event answered 202 is stored.
func testSecondSignal(t *testing.T, bin string, dialect store.Dialect) {
	vars, _, _ := lifecycleVars(t, dialect, map[string]string{"NEXUS_SHUTDOWN_DELAY": "1m"})
	srv := startNexus(t, bin, vars)
	email, password, client := srv.credentials(t)
	token := srv.login(t, email, password, client)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	acked := map[string]string{}
	for range 50 {
		id, body := eventBody(rng, "second_signal")
		o := srv.postEvent(token, body)
		if o.status != http.StatusAccepted {
			t.Fatalf("POST /v2/analytics/events: %d %v %s", o.status, o.err, o.body)
		}
		acked[id] = o.id
	}

	srv.signal(t, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, raw, err := srv.do("GET", "/readyz", "", nil, nil)
		if err == nil && status == http.StatusServiceUnavailable {
			break
		}
		if err != nil || status != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("GET /readyz after SIGTERM: %d %v %s; want 200 and soon 503", status, err, raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.signal(t, syscall.SIGINT)
	// Far below the one-minute delay: reached only if the second signal is ignored.
	err := srv.exitWithin(t, 20*time.Second, "of the second signal, with NEXUS_SHUTDOWN_DELAY=1m")
	var exit interface{ ExitCode() int }
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Errorf("after a second signal the server exited with %v; want a non-zero exit status", err)
	}
	if !strings.Contains(srv.stderr.String(), "second signal") {
		t.Errorf("the forced exit is not logged:\n%s", srv.stderr)
	}

	srv = startNexus(t, bin, restartVars(vars))
	token = srv.login(t, email, password, client)
	listed := srv.listEvents(t, token)
	for eventID, id := range acked {
		if got := listed[eventID]; len(got) != 1 || got[0] != id {
			t.Errorf("event_id %s was answered 202 with id %s but is stored as %v after the forced exit", eventID, id, got)
		}
	}
	srv.stop(t)
}
