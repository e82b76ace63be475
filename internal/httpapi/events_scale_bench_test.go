package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// TestEventsAtScale is the events-at-scale benchmark of issue 17 (make bench-events-10m): the event reads and
// ingest through the real HTTP handler (every response checked against openapi.yaml, outside the timing), on
// PostgreSQL databases of each size in NEXUS_BENCH_EVENTS (comma-separated event counts, e.g. 10000,10000000),
// to show that their cost does not grow with the events table. It is skipped unless NEXUS_BENCH_EVENTS is set.
//
// The databases live in one PostgreSQL data directory under NEXUS_BENCH_EVENTS_DIR (default .cache/bench-events
// at the repository's root), seeded once (events_scale_seed_test.go: through store.Events.InsertEvents and the
// analytics processor, so the seed follows the schema) and reused while the schema version and the seed version
// match; delete the directory, or set NEXUS_BENCH_EVENTS_RESEED=1, to seed again. Databases up to 1M events are
// cloned (CREATE DATABASE … TEMPLATE) for every run, so that the events the ingest rows add do not grow them;
// larger ones are measured in place (a run adds 26,026 events: 0.26% of 10M).
//
// The server runs with PostgreSQL's defaults (fsync on, shared_buffers 128MB). Every operation runs in
// NEXUS_BENCH_EVENTS_ROUNDS rounds (default 25), the sizes alternating within a round, after one warm-up round;
// the report gives each operation's median per size and their ratio, and then the plans of the statements of
// each operation at each size (auto_explain: EXPLAIN ANALYZE with BUFFERS of the statements the server really
// ran), whose shared buffers touched are the size-free proof that timing on a shared machine cannot give.
func TestEventsAtScale(t *testing.T) {
	spec := os.Getenv("NEXUS_BENCH_EVENTS")
	if spec == "" {
		t.Skip("set NEXUS_BENCH_EVENTS=10000,10000000 to run the events-at-scale benchmark (make bench-events-10m)")
	}
	var sizes []int
	for f := range strings.SplitSeq(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < scaleChunk/10 {
			t.Fatalf("NEXUS_BENCH_EVENTS: %q is not an event count of at least %d", f, scaleChunk/10)
		}
		sizes = append(sizes, n)
	}
	dir := os.Getenv("NEXUS_BENCH_EVENTS_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", ".cache", "bench-events")
	}
	dir, err := filepath.Abs(dir)
	must(t, err)
	must(t, os.MkdirAll(dir, 0o755))
	rounds := 25
	if v := os.Getenv("NEXUS_BENCH_EVENTS_ROUNDS"); v != "" {
		rounds, err = strconv.Atoi(v)
		if err != nil || rounds < 1 {
			t.Fatalf("NEXUS_BENCH_EVENTS_ROUNDS: %q", v)
		}
	}
	pgdata := filepath.Join(dir, "pgdata")
	worlds := make([]scaleWorld, len(sizes))
	var missing []int
	for i, n := range sizes {
		w, ok := cachedWorld(dir, seedName(n), n)
		if !ok || os.Getenv("NEXUS_BENCH_EVENTS_RESEED") != "" {
			missing = append(missing, i)
		}
		worlds[i] = w
	}
	if len(missing) > 0 {
		// Seeding: durability off, as the tests' throwaway servers; the measurements run on a clean restart.
		pg, err := testdb.StartPersistent(pgdata, "fsync=off", "synchronous_commit=off", "full_page_writes=off",
			"max_wal_size=8GB", "maintenance_work_mem=256MB", "max_connections=200")
		must(t, err)
		for _, i := range missing {
			worlds[i] = seedScale(t, pg, dir, seedName(sizes[i]), sizes[i])
		}
		must(t, pg.Stop())
	}

	pg, err := testdb.StartPersistent(pgdata, "max_connections=200")
	must(t, err)
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Error(err)
		}
	})
	runs := make([]*scaleRun, len(sizes))
	for i, n := range sizes {
		runs[i] = startScaleRun(t, pg, n, worlds[i])
	}
	var rel strings.Builder // before the rounds, whose ingest adds up to 26,026 events to each database
	writeRelations(&rel, runs)
	ops := scaleOps()
	measureScale(runs, ops, rounds)
	var b strings.Builder
	fmt.Fprintf(&b, "\n## Events at scale: %s events, PostgreSQL (defaults: fsync on, shared_buffers 128MB), %d rounds\n\n", spec, rounds)
	fmt.Fprintf(&b, "Machine: %d CPUs shared with other work, so absolute times are depressed; compare within a row. Seeded in: ", numCPU())
	for i, r := range runs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s (at the seed's run)", r.label, time.Duration(worlds[i].SeedSecs*float64(time.Second)).Round(time.Second))
	}
	b.WriteString(".\n\n")
	b.WriteString(rel.String())
	explains := make([]map[string][]scalePlan, len(runs))
	for i, r := range runs {
		explains[i] = r.explain(ops)
	}
	writeTimes(&b, runs, ops, explains)
	for _, op := range ops {
		fmt.Fprintf(&b, "\n### Plans of %s\n", op.name)
		for i, r := range runs {
			for _, p := range explains[i][op.name] {
				fmt.Fprintf(&b, "\n%s events (%s):\n\n```\n%s\n```\n", r.label, p.duration, strings.TrimRight(p.text, "\n"))
			}
		}
	}
	if spec := os.Getenv("NEXUS_BENCH_EVENTS_SQLITE"); spec != "" {
		writeSQLiteScale(t, &b, dir, spec, rounds, ops)
	}
	report := b.String()
	fmt.Print(report)
	must(t, os.WriteFile(filepath.Join(dir, "report.md"), []byte(report), 0o644))
}

// measureScale runs every operation on every run in rounds, after a warm-up round, the runs alternating
// their order from one round to the next.
func measureScale(runs []*scaleRun, ops []scaleOp, rounds int) {
	for round := -1; round < rounds; round++ { // round -1 warms up
		for k := range runs {
			r := runs[k]
			if round%2 == 1 {
				r = runs[len(runs)-1-k]
			}
			for _, op := range ops {
				d := r.do(op)
				if round >= 0 {
					r.times[op.name] = append(r.times[op.name], d)
				}
			}
		}
	}
}

func seedName(n int) string { return "scale_" + strconv.Itoa(n) }

// scaleOp is one measured operation: its request for a run.
type scaleOp struct {
	name   string
	method string
	status int
	req    func(r *scaleRun) (path string, body []byte)
	events int // events it ingests
}

// scaleOps are the measured operations, all as the large organization's admin.
func scaleOps() []scaleOp {
	week := func(r *scaleRun) string {
		return "from=" + url.QueryEscape(scaleNow.Add(-8*24*time.Hour).Format(time.RFC3339)) + "&to=" + url.QueryEscape(scaleNow.Add(-24*time.Hour).Format(time.RFC3339))
	}
	name, _ := scaleName(5)
	return []scaleOp{
		{name: "list: first page (limit 50)", method: "GET", status: http.StatusOK,
			req: func(r *scaleRun) (string, []byte) { return "/v2/analytics/events?limit=50", nil }},
		{name: "list: user_id, first page", method: "GET", status: http.StatusOK,
			req: func(r *scaleRun) (string, []byte) {
				return "/v2/analytics/events?limit=50&user_id=" + r.world.Users[1], nil
			}},
		{name: "list: event_name + 7-day range", method: "GET", status: http.StatusOK,
			req: func(r *scaleRun) (string, []byte) {
				return "/v2/analytics/events?limit=50&event_name=" + name + "&" + week(r), nil
			}},
		{name: "list: second page (cursor)", method: "GET", status: http.StatusOK,
			req: func(r *scaleRun) (string, []byte) { return "/v2/analytics/events?limit=50&cursor=" + r.cursor, nil }},
		{name: "summary: 30 days", method: "GET", status: http.StatusOK,
			req: func(r *scaleRun) (string, []byte) { return "/v2/analytics/summary", nil }},
		{name: "ingest: trackEvent (1 event)", method: "POST", status: http.StatusAccepted, events: 1,
			req: func(r *scaleRun) (string, []byte) { return "/v2/analytics/events", scaleEvent(nil, r) }},
		{name: "ingest: trackEventBatch (1000 events)", method: "POST", status: http.StatusAccepted, events: 1000,
			req: func(r *scaleRun) (string, []byte) { return scaleBatch(r, uuid.NewString) }},
		{name: "ingest: trackEventBatch (1000 events, UUIDv7 event_ids)", method: "POST", status: http.StatusAccepted, events: 1000,
			req: func(r *scaleRun) (string, []byte) { return scaleBatch(r, newV7) }},
	}
}

// newV7 returns a UUIDv7, the event_id a client that follows the API's advice generates.
func newV7() string { return uuid.Must(uuid.NewV7()).String() }

// scaleBatch is a trackEventBatch request of 1000 events whose event_ids eventID makes. The seeded events have
// random (version 4) event_ids, so the key index is as large and as scattered as it gets; new random keys land
// on any of its pages, new UUIDv7 keys on its last ones.
func scaleBatch(r *scaleRun, eventID func() string) (string, []byte) {
	buf := append(make([]byte, 0, 1000*200), `{"events":[`...)
	for k := range 1000 {
		if k > 0 {
			buf = append(buf, ',')
		}
		buf = scaleEventWith(buf, r, eventID())
	}
	return "/v2/analytics/events/batch", append(buf, "]}"...)
}

// scaleEvent appends one event as a client sends it, with a new event id and a timestamp a little before now.
func scaleEvent(buf []byte, r *scaleRun) []byte { return scaleEventWith(buf, r, uuid.NewString()) }

// scaleEventWith is scaleEvent with the event_id given.
func scaleEventWith(buf []byte, r *scaleRun, eventID string) []byte {
	r.sent++
	buf = append(buf, `{"event_id":"`...)
	buf = append(buf, eventID...)
	buf = append(buf, `","event_name":"event_03","event_category":"category_0","source":"web","timestamp":"`...)
	buf = scaleNow.Add(-time.Duration(r.sent%60_000)*time.Millisecond).AppendFormat(buf, time.RFC3339Nano)
	return append(buf, `","properties":{"path":"/pricing","plan":"team","seats":12}}`...)
}

// scaleRun is one database of the benchmark with a node serving it.
type scaleRun struct {
	t         *testing.T
	label     string
	name      string // the database measured
	world     scaleWorld
	e         *env
	url       string // PostgreSQL's, or "" for SQLite
	sqliteDir string // SQLite's data directory, or "" for PostgreSQL
	log       string // the PostgreSQL server's log
	access    string
	cursor    string // of the first page's next page
	sent      int
	times     map[string][]time.Duration
	cpu       map[string]*scaleCPU
	meter     *cpuMeter
	events    *store.Events
}

// scaleCPU is the CPU time an operation cost, this process's and PostgreSQL's, and the WAL it wrote, until its
// backlog was processed.
type scaleCPU struct {
	goCPU, pgCPU time.Duration
	wal          int64 // bytes
}

func startScaleRun(t *testing.T, pg *testdb.Persistent, n int, w scaleWorld) *scaleRun {
	r := &scaleRun{t: t, label: label(n), name: seedName(n), world: w, times: map[string][]time.Duration{}, cpu: map[string]*scaleCPU{}}
	if n <= 1_000_000 {
		r.name = "run_" + strconv.Itoa(n)
		must(t, pg.Exec(`DROP DATABASE IF EXISTS `+r.name+` WITH (FORCE)`))
		must(t, pg.Exec(`CREATE DATABASE `+r.name+` TEMPLATE `+seedName(n)))
	}
	must(t, pg.Exec(`ALTER DATABASE `+r.name+` RESET ALL`)) // an interrupted run's auto_explain
	r.url, r.log = pg.URL(r.name), pg.LogFile()
	r.begin()
	return r
}

// begin starts the run's node and logs in as the large organization's admin.
func (r *scaleRun) begin() {
	ctx, t := context.Background(), r.t
	r.e = r.node()
	r.events = store.NewEvents(r.e.db)
	r.meter = newCPUMeter(ctx, r.url)
	login := r.e.login(scaleAdminEmail, adminPassword, webClient)
	if login.status != http.StatusOK {
		t.Fatalf("login to %s: %d %s", r.name, login.status, login.body)
	}
	r.access = login.str(t, "access_token")
	first := r.e.do("GET", "/v2/analytics/events?limit=50", nil, "Authorization", "Bearer "+r.access)
	r.cursor = first.str(t, "next_cursor")
	if r.cursor == "" {
		t.Fatalf("%s: the first page has no next_cursor: %s", r.name, first.body)
	}
}

// node starts a node (the harness's, as cmd/nexus builds it) on a pool of its own over the run's database.
func (r *scaleRun) node() *env {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{URL: r.url, DataDir: r.sqliteDir})
	must(r.t, err)
	r.t.Cleanup(func() { _ = db.Close() })
	_, err = db.Migrate(ctx)
	must(r.t, err)
	e := &env{t: r.t, db: db, dir: store.NewDirectory(db), audit: store.NewAuth(db), clock: &clock{t: scaleNow}}
	e.start()
	must(r.t, e.svc.EnsureSigningKey(ctx))
	return e
}

// do sends op's request through the handler and returns how long the handler took; the response is checked
// against openapi.yaml afterwards. An ingest waits, untimed, until the processor has emptied the backlog, and
// records the CPU time the events cost until then.
func (r *scaleRun) do(op scaleOp) time.Duration {
	path, body := op.req(r)
	var b any
	if body != nil {
		b = body
	}
	c0 := r.meter.sample()
	var wal0 int64
	if op.events > 0 && r.url != "" {
		wal0 = r.walBytes()
	}
	start := time.Now()
	req, res := exchange(r.t, r.e.h, op.method, path, b, "Authorization", "Bearer "+r.access)
	d := time.Since(start)
	if res.status != op.status {
		r.t.Fatalf("%s on %s: %d %s", op.name, r.name, res.status, res.body)
	}
	if op.events > 0 {
		r.settle()
		c1 := r.meter.sample()
		c := r.cpu[op.name]
		if c == nil {
			c = &scaleCPU{}
			r.cpu[op.name] = c
		}
		c.goCPU += c1.self - c0.self
		if r.url != "" {
			c.wal += r.walBytes() - wal0
		}
		if c0.ok && c1.ok {
			c.pgCPU += c1.pg - c0.pg
		}
	}
	checkResponse(r.t, req, res)
	return d
}

// walBytes returns the WAL position of the server, in bytes.
func (r *scaleRun) walBytes() int64 {
	var n int64
	must(r.t, r.e.db.Pool().QueryRowContext(context.Background(), "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").Scan(&n))
	return n
}

// settle waits until the processor has emptied the backlog.
func (r *scaleRun) settle() {
	deadline := time.Now().Add(time.Minute)
	for {
		n, _, err := r.events.Backlog(context.Background())
		must(r.t, err)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: backlog of %d events not processed after a minute", r.name, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func label(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
