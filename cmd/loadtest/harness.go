package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// The targets of issue 13.
const (
	targetGetUser   = 0.25   // GET /v2/users/{id}, of the floor
	targetListSmall = 0.10   // GET /v2/users?limit=50 (200 users), of the floor
	targetListP99   = 50     // ms, GET /v2/users?limit=50 at 100,000 users, every offset and filter
	targetSingle    = 10_000 // events/s, single-event ingest
	targetBatch     = 0.6    // batch ingest, of the raw COPY
	targetRefresh   = 3_000  // refreshes/s, with p99 < 50 ms
	targetLogin     = 0.9    // logins, of the raw argon2id rate
)

// errNoPostgres is returned when no throwaway PostgreSQL server could be started.
var errNoPostgres = errors.New("no PostgreSQL server could be started")

// idleWait is how long the harness leaves a started server alone before reading its idle RSS.
const idleWait = time.Second

// runHarness runs every phase and returns the report. Everything it starts is stopped and every temporary
// directory removed before it returns, also when ctx is cancelled (Ctrl-C).
func runHarness(ctx context.Context, cfg config, diag io.Writer) (_ *report, err error) {
	bin, err := filepath.Abs(cfg.bin)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(bin); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("server binary %s: not found (make build makes it)", cfg.bin)
	}
	rep := &report{cfg: cfg, machine: readMachine(bin)}
	tmp, err := os.MkdirTemp("", "nexus-loadtest-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := os.RemoveAll(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()
	hash, err := auth.HashPassword(password)
	if err != nil {
		return nil, err
	}

	fmt.Fprintln(diag, "loadtest: starting a throwaway PostgreSQL (initdb; default settings)")
	pg, err := testdb.Start()
	if err != nil {
		return nil, fmt.Errorf("%w: %w (install the PostgreSQL server: apt-get install postgresql)", errNoPostgres, err)
	}
	defer func() {
		if serr := pg.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	dbURL, err := pg.CreateDatabase("nexus")
	if err != nil {
		return nil, err
	}

	// -only without an S row or 9 leaves the SQLite phase out.
	if cfg.wants("9") || slices.ContainsFunc(slices.Collect(maps.Keys(cfg.only)), func(id string) bool { return strings.HasPrefix(id, "S") }) {
		if err := sqlitePhase(ctx, cfg, bin, filepath.Join(tmp, "sqlite"), hash, diag, rep); err != nil {
			return nil, fmt.Errorf("SQLite: %w", err)
		}
	}
	if err := postgresPhase(ctx, cfg, bin, dbURL, hash, diag, rep); err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	return rep, nil
}

// idle waits idleWait and returns the server's VmRSS.
func idle(ctx context.Context, srv *server) (int64, error) {
	select {
	case <-time.After(idleWait):
		return srv.rss(), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// rowRunner runs rows on one harness and collects them, noting the row with the highest sampled RSS.
type rowRunner struct {
	h       *harness
	rows    []row
	peak    int64
	peakRow string
}

func (rr *rowRunner) run(ctx context.Context, id, unit string, l load) (row, error) {
	res, err := rr.h.measure(ctx, id, l)
	if err != nil {
		return row{}, err
	}
	if res.peakRSS > rr.peak {
		rr.peak, rr.peakRow = res.peakRSS, id+" "+l.name
	}
	return row{id: id, name: l.name, conns: l.conns, unit: unit, res: res}, nil
}

// runAlternating measures loads that are compared with each other (a row and its reference): in rounds, each
// load in turn for its duration/rounds (the first round after the load's warm-up, later ones after a short one),
// so that a change in the machine's other load during the run falls on all of them alike. after, when set, runs
// (untimed) after each load of each round. It returns one row per load, each with its rounds merged.
func (rr *rowRunner) runAlternating(ctx context.Context, rounds int, ids, units []string, loads []load, after func(i int) error) ([]row, error) {
	per := make([][]result, len(loads))
	for round := range rounds {
		for i, l := range loads {
			l.duration = max(l.duration/time.Duration(rounds), time.Millisecond)
			if round > 0 {
				l.warmup = min(l.warmup, roundWarmup)
			}
			id := ids[i]
			if rounds > 1 {
				id = fmt.Sprintf("%s (round %d/%d)", ids[i], round+1, rounds)
			}
			res, err := rr.h.measure(ctx, id, l)
			if err != nil {
				return nil, err
			}
			per[i] = append(per[i], res)
			if after != nil {
				if err := after(i); err != nil {
					return nil, err
				}
			}
		}
	}
	out := make([]row, len(loads))
	for i, l := range loads {
		res := merge(per[i])
		if res.peakRSS > rr.peak {
			rr.peak, rr.peakRow = res.peakRSS, ids[i]+" "+l.name
		}
		out[i] = row{id: ids[i], name: l.name, conns: l.conns, unit: units[i], res: res}
	}
	return out, nil
}

// roundWarmup is the warm-up of every round of runAlternating but the first.
const roundWarmup = 200 * time.Millisecond

// add appends r to the table.
func (rr *rowRunner) add(r row) { rr.rows = append(rr.rows, r) }

// sqlitePhase starts the server on an embedded SQLite database in dataDir (schema, client and one organization
// with its admin made by the admin commands), records its start-up and idle RSS, runs a few rows for
// cfg.sqliteDuration each, and records its peak RSS.
func sqlitePhase(ctx context.Context, cfg config, bin, dataDir, hash string, diag io.Writer, rep *report) error {
	fmt.Fprintln(diag, "loadtest: SQLite: seeding with the admin commands")
	env := serverEnv("", dataDir, newSecret())
	if err := cli(ctx, bin, env, "", nil, "migrate"); err != nil {
		return err
	}
	if err := cli(ctx, bin, env, "", &struct{}{}, "client", "create", "--client-id", clientID, "--name", "Load test"); err != nil {
		return err
	}
	o, err := seedAdmin(ctx, bin, env, "Load test: SQLite", "sqlite.example.com")
	if err != nil {
		return err
	}
	srv, err := startNexus(ctx, bin, env, diag)
	if err != nil {
		return err
	}
	defer srv.stop()
	st := startup{db: "SQLite", ready: srv.ready}
	if st.idleRSS, err = idle(ctx, srv); err != nil {
		return err
	}
	hc := cfg
	hc.duration = cfg.sqliteDuration
	h := &harness{cfg: hc, diag: diag, srv: srv, hash: hash, sessions: map[string]*sessionPool{}}
	rr := &rowRunner{h: h}
	admins, err := h.tokens(ctx, "admin", []user{o.admin}, cfg.conns)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		id, unit string
		l        load
	}{
		{"S1", "req/s", h.healthz()},
		{"S2", "req/s", h.getUser(admins, []string{o.admin.id})},
		{"S3", "req/s", h.listUsers("GET /v2/users?limit=50", admins, "/v2/users?limit=50")},
		{"S5", "events/s", h.trackEvent(admins)},
		{"S8", "logins/s", h.logins([]user{o.admin}, cfg.loginConns)},
	} {
		if !cfg.wants(s.id) {
			continue
		}
		r, err := rr.run(ctx, s.id, s.unit, s.l)
		if err != nil {
			return err
		}
		rr.add(r)
	}
	st.peakRSS, st.peakRow = srv.hwm(), rr.peakRow
	srv.stop()
	rep.sqlite = rr.rows
	rep.startups = append(rep.startups, st)
	return nil
}
