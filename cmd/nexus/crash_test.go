package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite"  // database/sql driver "sqlite", to count the stored events
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to count the stored events

	"github.com/nexus-cloud/nexus-core/internal/httpapi/apitest"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// The crash test of the issue: a client sends crashEvents events with event_ids from crashWorkers concurrent
// connections while the server is killed with SIGKILL at a random moment; after a restart every event answered
// 202 is stored, and resending all of them leaves each stored exactly once.
const (
	crashEvents  = 10_000
	crashWorkers = 32
)

// TestCrashIngest runs the crash test on PostgreSQL and on SQLite, five times each under CI=true, once
// otherwise; NEXUS_CRASH_RUNS sets the number of runs, and NEXUS_CRASH_SEED the seed of the first run (each run
// logs its seed; NEXUS_CRASH_RUNS=1 NEXUS_CRASH_SEED=<seed> repeats its event ids and kill point).
func TestCrashIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test sends 20,000 events per run; skipped with -short")
	}
	runs := 1
	if os.Getenv("CI") == "true" {
		runs = 5
	}
	if v := os.Getenv("NEXUS_CRASH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			t.Fatalf("NEXUS_CRASH_RUNS=%q: want a number of runs from 1 to 100", v)
		}
		runs = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("NEXUS_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("NEXUS_CRASH_SEED=%q: want an unsigned integer", v)
		}
		seed = n
	}
	bin := buildNexus(t)
	for _, dialect := range []store.Dialect{store.Postgres, store.SQLite} {
		t.Run(string(dialect), func(t *testing.T) {
			for i := range runs {
				t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) {
					crashRun(t, bin, dialect, seed+uint64(i))
				})
			}
		})
	}
}

// buildNexus builds the server binary into a temporary directory.
func buildNexus(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go") // go test puts GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("the crash test builds the server and needs the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "nexus")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// crashRun is one run of the crash test on a fresh database.
func crashRun(t *testing.T, bin string, dialect store.Dialect, seed uint64) {
	t.Logf("seed %d (NEXUS_CRASH_RUNS=1 NEXUS_CRASH_SEED=%d repeats this run)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	dataDir := t.TempDir()
	// 32 workers of one user from one IP: far over the default per-IP and per-user limits, which are not what
	// this test is about.
	vars := map[string]string{"NEXUS_DATA_DIR": dataDir, "NEXUS_LOG_LEVEL": "warn",
		"NEXUS_RATE_LIMIT_IP": "off", "NEXUS_RATE_LIMIT_PRINCIPAL": "off"}
	countDSN, countDriver := filepath.Join(dataDir, store.SQLiteFile), "sqlite"
	if dialect == store.Postgres {
		vars["NEXUS_DATABASE_URL"] = testdb.PostgresURL(t)
		countDSN, countDriver = vars["NEXUS_DATABASE_URL"], "pgx"
	}

	// The events: random event_ids, timestamps an hour ago (so all fall into today's or yesterday's summary).
	ids := make([]string, crashEvents)
	bodies := make([][]byte, crashEvents)
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	for n := range ids {
		ids[n] = randomUUID(rng)
		bodies[n], _ = json.Marshal(map[string]any{"event_id": ids[n], "event_name": "crash_probe", "event_category": "test",
			"timestamp": base.Add(time.Duration(n) * time.Millisecond).Format(time.RFC3339Nano), "properties": map[string]any{"n": n}})
	}
	killAt := crashEvents/10 + rng.IntN(crashEvents*8/10+1) // answered requests before the kill: 10% to 90%

	// 1. Send the events and kill the server with SIGKILL after the killAt-th answer.
	srv := startNexus(t, bin, vars)
	email, password, client := srv.credentials(t)
	token := srv.login(t, email, password, client)
	start := time.Now()
	var answered atomic.Int64
	first := sendEvents(t, srv, token, bodies, all(crashEvents), func() bool {
		if answered.Add(1) == int64(killAt) {
			srv.kill(t)
			return true
		}
		return false
	})
	if err := srv.wait(10 * time.Second); err == nil || !srv.killed.Load() {
		t.Fatalf("the server was not killed (exit: %v); %d events answered before the run ended, kill planned after %d",
			err, answered.Load(), killAt)
	}
	acked := map[int]string{} // event index → id answered with 202
	for n, o := range first {
		if o.status == http.StatusAccepted {
			acked[n] = o.id
		}
	}
	refused, transport, unsent := map[int]int{}, 0, 0
	for n, o := range first {
		switch {
		case o.status == -1:
			unsent++
		case o.status == 0:
			transport++
		case o.status != http.StatusAccepted:
			refused[o.status]++
			if o.status != http.StatusServiceUnavailable {
				t.Errorf("event %d answered %d before the kill: %s", n, o.status, o.body)
			}
		}
	}
	t.Logf("phase 1: %d answers in %v, SIGKILL after the %d-th; %d events answered 202, refused %v, %d failed in transport, %d not sent",
		answered.Load(), time.Since(start).Round(time.Millisecond), killAt, len(acked), refused, transport, unsent)

	// 2. Restart on the same database: every event answered 202 is there.
	start = time.Now()
	srv = startNexus(t, bin, vars)
	if _, _, _, ok := srv.seed(); ok {
		t.Fatalf("the restarted server seeded the database again:\n%s", srv.stdout)
	}
	t.Logf("restarted in %v", time.Since(start).Round(time.Millisecond))
	token = srv.login(t, email, password, client)
	listed := srv.listEvents(t, token)
	found := 0
	for n, id := range acked {
		switch got := listed[ids[n]]; {
		case len(got) == 0:
			t.Errorf("event %d (event_id %s) was answered 202 with id %s but is missing after the crash", n, ids[n], id)
		case len(got) > 1 || got[0] != id:
			t.Errorf("event %d (event_id %s) was answered 202 with id %s but is stored as %v", n, ids[n], id, got)
		default:
			found++
		}
	}
	index := make(map[string]int, crashEvents)
	for n, id := range ids {
		index[id] = n
	}
	for eventID := range listed {
		if _, ok := index[eventID]; !ok {
			t.Errorf("stored event_id %s was never sent", eventID)
		}
	}
	rows, distinct := countEvents(t, countDriver, countDSN)
	t.Logf("after the restart: %d of the %d events answered 202 found; %d stored in all (%d without a 202: committed as the server died); database rows %d, distinct event_ids %d",
		found, len(acked), len(listed), len(listed)-found, rows, distinct)
	if rows != len(listed) || distinct != len(listed) {
		t.Errorf("the database holds %d events with %d distinct event_ids, the listing %d", rows, distinct, len(listed))
	}
	if t.Failed() {
		t.FailNow()
	}

	// 3. Resend all of them, as a client that does not know which ones arrived: the stored ones are duplicates
	// with their first id, the others are stored now.
	start = time.Now()
	second := sendEvents(t, srv, token, bodies, all(crashEvents), nil)
	dups := 0
	for n, o := range second {
		switch {
		case o.status != http.StatusAccepted:
			t.Errorf("resend of event %d: %d %s (%v)", n, o.status, o.body, o.err)
			continue
		case o.duplicate:
			dups++
		}
		if stored := listed[ids[n]]; o.duplicate != (len(stored) == 1) || (o.duplicate && o.id != stored[0]) {
			t.Errorf("resend of event %d: id %s duplicate %v, but before it the event was stored as %v", n, o.id, o.duplicate, stored)
		}
	}
	t.Logf("phase 3: resent %d events in %v: %d duplicates, %d new", crashEvents, time.Since(start).Round(time.Millisecond), dups, crashEvents-dups)

	listed = srv.listEvents(t, token)
	rows, distinct = countEvents(t, countDriver, countDSN)
	if len(listed) != crashEvents || rows != crashEvents || distinct != crashEvents {
		t.Errorf("after the resend: %d event_ids listed, %d rows and %d distinct event_ids in the database; want %d each",
			len(listed), rows, distinct, crashEvents)
	}
	for n, id := range ids {
		if len(listed[id]) != 1 {
			t.Errorf("after the resend event %d (event_id %s) is listed %d times", n, id, len(listed[id]))
		}
	}

	// 4. The background processor catches up, counting every event once, including those it was processing
	// when the server died.
	start = time.Now()
	total := srv.awaitSummary(t, token, crashEvents, time.Minute)
	t.Logf("summary total %d after %v", total, time.Since(start).Round(time.Millisecond))
	srv.stop(t)
}

// all returns 0, …, n-1.
func all(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// randomUUID returns a version 4 UUID drawn from rng.
func randomUUID(rng *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// outcome is what the client learnt of one event: an HTTP status with the receipt, or a transport error
// (status 0), or nothing (not sent: status -1).
type outcome struct {
	status    int
	id        string
	duplicate bool
	body      string
	err       error
}

// sendEvents posts the events at the indexes from crashWorkers concurrent workers. A 503 is retried (at most 5
// times, after its Retry-After capped at 1 s) unless after is set; after, when set, is called once per answer
// or transport error and returns true to stop the workers (the server was killed): events not sent by then
// keep status -1.
func sendEvents(t *testing.T, srv *nexusProcess, token string, bodies [][]byte, idx []int, after func() bool) []outcome {
	t.Helper()
	outs := make([]outcome, len(bodies))
	for i := range outs {
		outs[i].status = -1
	}
	var next atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Minute)
	for range crashWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() && time.Now().Before(deadline) {
				k := int(next.Add(1)) - 1
				if k >= len(idx) {
					return
				}
				n := idx[k]
				o := srv.postEvent(token, bodies[n])
				for try := 1; after == nil && o.status == http.StatusServiceUnavailable && try <= 5; try++ {
					time.Sleep(min(time.Duration(try)*200*time.Millisecond, time.Second))
					o = srv.postEvent(token, bodies[n])
				}
				outs[n] = o
				if after != nil && after() {
					stop.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	if !stop.Load() && time.Now().After(deadline) {
		t.Fatalf("sending %d events took more than 3 minutes", len(idx))
	}
	return outs
}

// nexusProcess is a `nexus serve --dev` child process.
type nexusProcess struct {
	cmd    *exec.Cmd
	url    string
	stdout *lockedBuffer
	stderr *lockedBuffer
	exited chan struct{}
	err    error // the exit status, once exited is closed
	killed atomic.Bool
	client *http.Client
}

// startNexus starts `nexus serve --dev` on a free loopback port with only the given NEXUS_ variables, and waits
// until /healthz answers. The listen address is 127.0.0.1:0 and the server prints the port it got, so no other
// process can take the port between choosing and binding it.
func startNexus(t *testing.T, bin string, vars map[string]string) *nexusProcess {
	t.Helper()
	p := &nexusProcess{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, exited: make(chan struct{}),
		client: &http.Client{Timeout: 30 * time.Second, Transport: apitest.Transport{T: t, Base: &http.Transport{
			MaxIdleConns: 2 * crashWorkers, MaxIdleConnsPerHost: 2 * crashWorkers, IdleConnTimeout: 30 * time.Second}}}}
	p.cmd = exec.Command(bin, "serve", "--dev", "--addr", "127.0.0.1:0")
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	for k, v := range vars {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		p.client.CloseIdleConnections()
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("the server exited: %v\nstdout:\n%s\nstderr:\n%s", p.err, p.stdout, p.stderr)
		default:
		}
		if m := listening.FindStringSubmatch(p.stdout.String()); m != nil && p.url == "" {
			p.url = m[1]
		}
		if p.url != "" {
			if r, err := p.client.Get(p.url + "/healthz"); err == nil {
				r.Body.Close()
				if r.StatusCode == http.StatusOK {
					return p
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the server did not become healthy in 30 s:\nstdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
	return nil
}

// seed returns the demo credentials the server printed, if it seeded the database.
func (p *nexusProcess) seed() (email, password, client string, ok bool) {
	m := seeded.FindStringSubmatch(p.stdout.String())
	if m == nil {
		return "", "", "", false
	}
	return m[1], m[2], m[3], true
}

func (p *nexusProcess) credentials(t *testing.T) (email, password, client string) {
	t.Helper()
	email, password, client, ok := p.seed()
	if !ok {
		t.Fatalf("no demo credentials printed:\n%s", p.stdout)
	}
	return email, password, client
}

// kill sends SIGKILL.
func (p *nexusProcess) kill(t *testing.T) {
	p.killed.Store(true)
	if err := p.cmd.Process.Kill(); err != nil {
		t.Errorf("kill the server: %v", err)
	}
}

// wait waits for the process to exit and returns its exit status.
func (p *nexusProcess) wait(d time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		return nil
	}
}

// stop stops the server the way Ctrl-C does (SIGINT), and waits for it to exit.
func (p *nexusProcess) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("the server did not stop within 30 s of SIGINT")
	}
}

// do sends a request with a JSON body and decodes a JSON answer into out (when non-nil).
func (p *nexusProcess) do(method, path, token string, body []byte, out any) (int, string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.url+path, rd)
	if err != nil {
		return 0, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("read the answer (status %d): %w", resp.StatusCode, err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return 0, string(raw), fmt.Errorf("decode the answer (status %d): %w", resp.StatusCode, err)
		}
	}
	return resp.StatusCode, string(raw), nil
}

func (p *nexusProcess) login(t *testing.T, email, password, client string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password, "client_id": client})
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	status, raw, err := p.do("POST", "/v2/auth/login", "", body, &tok)
	if err != nil || status != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("login: %d %v %s", status, err, raw)
	}
	return tok.AccessToken
}

// postEvent sends one event. Only a complete 202 answer with its receipt counts as accepted: an answer cut
// short by the kill is a transport error.
func (p *nexusProcess) postEvent(token string, body []byte) outcome {
	var r struct {
		ID        string `json:"id"`
		Status    string `json:"status"`
		Duplicate *bool  `json:"duplicate"`
	}
	status, raw, err := p.do("POST", "/v2/analytics/events", token, body, &r)
	switch {
	case err != nil:
		return outcome{err: err, body: raw}
	case status == http.StatusAccepted && (r.Status != "accepted" || r.ID == "" || r.Duplicate == nil):
		return outcome{err: errors.New("202 without a receipt"), body: raw}
	case status == http.StatusAccepted:
		return outcome{status: status, id: r.ID, duplicate: *r.Duplicate}
	}
	return outcome{status: status, body: raw}
}

// listEvents pages through the organization's events (500 a page) and returns the ids stored per event_id.
func (p *nexusProcess) listEvents(t *testing.T, token string) map[string][]string {
	t.Helper()
	ids := map[string][]string{}
	path := "/v2/analytics/events?limit=500"
	for page := 0; ; page++ {
		if page > 2*crashEvents/500+10 {
			t.Fatalf("more than %d pages of events", page)
		}
		var list struct {
			Data []struct {
				ID      string `json:"id"`
				EventID string `json:"event_id"`
			} `json:"data"`
			NextCursor string `json:"next_cursor"`
		}
		status, raw, err := p.do("GET", path, token, nil, &list)
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET %s: %d %v %s", path, status, err, raw)
		}
		for _, ev := range list.Data {
			ids[ev.EventID] = append(ids[ev.EventID], ev.ID)
		}
		if list.NextCursor == "" {
			return ids
		}
		path = "/v2/analytics/events?limit=500&cursor=" + url.QueryEscape(list.NextCursor)
	}
}

// awaitSummary polls the summary until its total is want, failing if it ever exceeds want (an event counted
// twice) or does not get there within d, and then once more after the processor reports an empty backlog.
func (p *nexusProcess) awaitSummary(t *testing.T, token string, want int, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	total := -1
	for {
		var sum struct {
			Total int `json:"total"`
		}
		status, raw, err := p.do("GET", "/v2/analytics/summary", token, nil, &sum)
		if err != nil || status != http.StatusOK {
			t.Fatalf("GET /v2/analytics/summary: %d %v %s", status, err, raw)
		}
		if sum.Total > want {
			t.Fatalf("summary total %d, more than the %d events stored: events counted twice", sum.Total, want)
		}
		var ready struct {
			Events struct {
				Backlog int `json:"backlog"`
			} `json:"events"`
		}
		rs, rraw, rerr := p.do("GET", "/readyz", "", nil, &ready)
		if rerr != nil || rs != http.StatusOK {
			t.Fatalf("GET /readyz: %d %v %s", rs, rerr, rraw)
		}
		if total == want && sum.Total == want && ready.Events.Backlog == 0 {
			return total
		}
		total = sum.Total
		if time.Now().After(deadline) {
			t.Fatalf("summary total %d after %v, want %d (backlog %d)", total, d, want, ready.Events.Backlog)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countEvents counts the rows of the events table and their distinct event_ids directly in the database (the
// run has one organization).
func countEvents(t *testing.T, driver, dsn string) (rows, distinct int) {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("open the database to count events: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT event_id) FROM events`).Scan(&rows, &distinct); err != nil {
		t.Fatalf("count events: %v", err)
	}
	return rows, distinct
}
