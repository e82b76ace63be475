package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
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

	if cfg.wants("S") {
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

// postgresPhase seeds the PostgreSQL database, starts the server on it and runs every row of the table.
func postgresPhase(ctx context.Context, cfg config, bin, dbURL, hash string, diag io.Writer, rep *report) error {
	fmt.Fprintf(diag, "loadtest: PostgreSQL: seeding %d + %d users\n", cfg.users, cfg.smallUsers)
	env := serverEnv(dbURL, "", newSecret())
	t0 := time.Now()
	big, small, err := seedPostgres(ctx, bin, env, dbURL, cfg.users, cfg.smallUsers, hash)
	if err != nil {
		return err
	}
	rep.seed = time.Since(t0)
	fmt.Fprintf(diag, "loadtest: PostgreSQL: seeded in %v\n", rep.seed.Round(time.Millisecond))
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer db.Close(context.WithoutCancel(ctx))
	if rep.machine.postgres, err = postgresInfo(ctx, db); err != nil {
		return err
	}

	srv, err := startNexus(ctx, bin, env, diag)
	if err != nil {
		return err
	}
	defer srv.stop()
	st := startup{db: "PostgreSQL", ready: srv.ready}
	if st.idleRSS, err = idle(ctx, srv); err != nil {
		return err
	}
	h := &harness{cfg: cfg, diag: diag, srv: srv, hash: hash, sessions: map[string]*sessionPool{}}
	if cfg.pprofDir != "" {
		if h.probePprof() {
			if err := os.MkdirAll(cfg.pprofDir, 0o750); err != nil {
				return err
			}
			h.pprofDir = cfg.pprofDir
		} else {
			fmt.Fprintln(diag, "loadtest: the server does not serve /debug/pprof/: no CPU profiles are written")
		}
	}
	rr := &rowRunner{h: h}
	members := big.active()[1:] // active users other than the admin, so one session each
	ids := make([]string, len(big.users))
	for i, u := range big.users {
		ids[i] = u.id
	}
	ratio := func(r *row, of row) {
		if rate := of.res.rate(); rate > 0 {
			r.ratio, r.ratioOf = r.res.rate()/rate, of.id
		}
	}

	if err := readRows(ctx, rr, h, cfg, rep, big, small, ids, ratio); err != nil {
		return err
	}
	var refresh, hashes, logins row
	if cfg.wants("7") {
		if refresh, err = rr.run(ctx, "7", "refreshes/s", h.refreshChains(members, cfg.conns)); err != nil {
			return err
		}
		refresh.target = fmt.Sprintf("≥ %s/s, p99 < 50 ms", thousands(targetRefresh))
		refresh.meets = func() bool { return refresh.res.rate() >= targetRefresh && refresh.res.p99 < 50*time.Millisecond }
	}
	if cfg.wants("8a") {
		// The raw hash rate while the server is idle, alternating with the logins.
		auths, err := rr.runAlternating(ctx, cfg.rounds, []string{"8a", "8b"}, []string{"hashes/s", "logins/s"},
			[]load{h.hashRate(), h.logins(big.active(), cfg.loginConns)}, nil)
		if err != nil {
			return err
		}
		hashes, logins = auths[0], auths[1]
		hashes.name += " while the server is idle"
		ratio(&logins, hashes)
		logins.target, logins.meets = fmt.Sprintf("≥ %.2f of 8a", targetLogin), func() bool { return logins.ratio >= targetLogin }
	}

	// 5–6: ingest, each followed by the processor's catching up.
	if cfg.wants("5") {
		memberTokens, err := h.tokens(ctx, "members", members, cfg.conns)
		if err != nil {
			return err
		}
		single, err := rr.run(ctx, "5", "events/s", h.trackEvent(memberTokens))
		if err != nil {
			return err
		}
		single.target = fmt.Sprintf("≥ %s events/s", thousands(targetSingle))
		single.meets = func() bool { return single.res.rate() >= targetSingle }
		rr.add(single)
		if err := settle(ctx, db, diag, rep, "5:"); err != nil {
			return err
		}
	}
	if cfg.wants("6a") {
		if err := batchRows(ctx, rr, h, cfg, db, dbURL, big, members, diag, rep, ratio); err != nil {
			return err
		}
	}
	for _, r := range []row{refresh, hashes, logins} {
		if r.id != "" {
			rr.add(r)
		}
	}

	st.peakRSS, st.peakRow = srv.hwm(), rr.peakRow
	srv.stop()
	rep.rows = rr.rows
	rep.startups = append(rep.startups, st)
	return nil
}

// readRows measures rows 1–4 (the groups cfg selects): reads; the floor and the rows compared with it alternate.
func readRows(ctx context.Context, rr *rowRunner, h *harness, cfg config, rep *report, big, small *org, ids []string, ratio func(*row, row)) error {
	if !cfg.wants("1") && !cfg.wants("4a") {
		return nil
	}
	bigAdmin, err := h.tokens(ctx, "big admin", []user{big.admin}, cfg.conns)
	if err != nil {
		return err
	}
	if cfg.wants("1") {
		smallAdmin, err := h.tokens(ctx, "small admin", []user{small.admin}, cfg.conns)
		if err != nil {
			return err
		}
		reads, err := rr.runAlternating(ctx, cfg.rounds, []string{"1", "2", "3"}, []string{"req/s", "req/s", "req/s"}, []load{
			h.healthz(),
			h.getUser(bigAdmin, ids),
			h.listUsers(fmt.Sprintf("GET /v2/users?limit=50 (%s users)", thousands(int64(cfg.smallUsers))), smallAdmin, "/v2/users?limit=50"),
		}, nil)
		if err != nil {
			return err
		}
		floor, get, listSmall := reads[0], reads[1], reads[2]
		floor.name = "GET /healthz (unauthenticated floor)"
		rr.add(floor)
		ratio(&get, floor)
		get.target, get.meets = fmt.Sprintf("≥ %.2f of 1", targetGetUser), func() bool { return get.ratio >= targetGetUser }
		rr.add(get)
		ratio(&listSmall, floor)
		listSmall.target, listSmall.meets = fmt.Sprintf("≥ %.2f of 1", targetListSmall), func() bool { return listSmall.ratio >= targetListSmall }
		rr.add(listSmall)
	}
	if !cfg.wants("4a") {
		return nil
	}
	for _, p := range []struct{ id, query string }{{"4a", "limit=50"}, {"4b", "limit=50&offset=10000"}} {
		r, err := rr.run(ctx, p.id, "req/s", h.listUsers(fmt.Sprintf("GET /v2/users?%s (%s users)", p.query, thousands(int64(cfg.users))),
			bigAdmin, "/v2/users?"+p.query))
		if err != nil {
			return err
		}
		r.target, r.meets = fmt.Sprintf("p99 < %d ms", targetListP99), func() bool { return r.res.p99 < targetListP99*time.Millisecond }
		rr.add(r)
	}
	sweepTokens, err := h.tokens(ctx, "big admin", []user{big.admin}, cfg.sweepConns)
	if err != nil {
		return err
	}
	sweep, err := listSweep(ctx, h, cfg, sweepTokens)
	if err != nil {
		return err
	}
	rep.sweep = sweep
	rr.add(sweepRow(sweep, cfg.sweepConns))
	return nil
}

// batchRows measures rows 6a and 6b: the raw COPY and the batches alternate, and the processor empties the
// backlog after each round of batches, untimed, so that no COPY round pays for it.
func batchRows(ctx context.Context, rr *rowRunner, h *harness, cfg config, db *pgx.Conn, dbURL string, big *org, members []user,
	diag io.Writer, rep *report, ratio func(*row, row)) error {
	if _, err := db.Exec(ctx, "CREATE TABLE "+copyTable+" (LIKE events INCLUDING ALL)"); err != nil {
		return fmt.Errorf("create the scratch table: %w", err)
	}
	// Connection w of both sends user members[w]'s events.
	batchTokens, err := h.tokens(ctx, "members", members, cfg.batchConns)
	if err != nil {
		return err
	}
	ingest, err := rr.runAlternating(ctx, cfg.rounds, []string{"6a", "6b"}, []string{"rows/s", "events/s"}, []load{
		h.rawCopy(dbURL, cfg.batchConns, cfg.batchEvents, big.id, members),
		h.trackBatch(batchTokens, cfg.batchEvents),
	}, func(i int) error {
		if i == 1 {
			return settle(ctx, db, diag, rep, "6b:")
		}
		return nil
	})
	if err != nil {
		return err
	}
	cp, batch := ingest[0], ingest[1]
	rr.add(cp)
	ratio(&batch, cp)
	batch.target, batch.meets = fmt.Sprintf("≥ %.2f of 6a", targetBatch), func() bool { return batch.ratio >= targetBatch }
	rr.add(batch)
	return nil
}

// sweepWarmup is the warm-up of each point of the listing sweep.
func sweepWarmup(cfg config) time.Duration { return min(cfg.warmup, 200*time.Millisecond) }

// listSweep measures GET /v2/users?limit=50 in the big organization for every allowed filter (none, each
// status, each role, each status and role) at offsets 0, 5000 and 10000.
func listSweep(ctx context.Context, h *harness, cfg config, tokens []string) ([]sweepPoint, error) {
	filters := []string{""}
	statuses := []nexus.UserStatus{nexus.UserActive, nexus.UserInactive}
	for _, s := range statuses {
		filters = append(filters, "status="+string(s))
	}
	for _, r := range nexus.Roles() {
		filters = append(filters, "role="+string(r))
	}
	for _, s := range statuses {
		for _, r := range nexus.Roles() {
			filters = append(filters, "status="+string(s)+"&role="+string(r))
		}
	}
	var out []sweepPoint
	for _, f := range filters {
		q := "/v2/users?limit=50"
		if f != "" {
			q += "&" + f
		}
		total, err := h.listTotal(tokens[0], q)
		if err != nil {
			return nil, err
		}
		for _, off := range []int{0, 5000, 10000} {
			path := fmt.Sprintf("%s&offset=%d", q, off)
			l := h.listUsers("GET "+path, tokens, path)
			l.warmup, l.duration = sweepWarmup(cfg), cfg.sweepDuration
			res, err := h.measure(ctx, "4c", l)
			if err != nil {
				return nil, err
			}
			out = append(out, sweepPoint{filter: f, total: total, offset: off, res: res})
		}
	}
	return out, nil
}

// sweepRow summarizes the sweep in one row: its lowest rate, highest p50 and p99, and every failure.
func sweepRow(sweep []sweepPoint, conns int) row {
	r := row{id: "4c", name: fmt.Sprintf("GET /v2/users?limit=50, %d filters × offsets 0/5000/10000: worst point (table 4c)", len(sweep)/3),
		conns: conns, unit: "req/s", target: fmt.Sprintf("p99 < %d ms, every point", targetListP99)}
	for i, p := range sweep {
		if i == 0 || p.res.rate() < r.res.rate() {
			r.res.calls, r.res.units, r.res.elapsed = p.res.calls, p.res.units, p.res.elapsed
		}
		r.res.p50, r.res.p99 = max(r.res.p50, p.res.p50), max(r.res.p99, p.res.p99)
		r.res.failures += p.res.failures
	}
	r.meets = func() bool { return r.res.p99 < targetListP99*time.Millisecond }
	return r
}

// settle waits until the server's processor has emptied event_backlog, so that the next row does not pay for
// this one's events.
// The time it took is added to the report's drains under the name after.
func settle(ctx context.Context, db *pgx.Conn, diag io.Writer, rep *report, after string) error {
	start := time.Now()
	for {
		var n int64
		if err := db.QueryRow(ctx, "SELECT count(*) FROM event_backlog").Scan(&n); err != nil {
			return fmt.Errorf("read the event backlog: %w", err)
		}
		if n == 0 {
			d := time.Since(start)
			fmt.Fprintf(diag, "loadtest: the processor emptied the event backlog in %v\n", d.Round(time.Millisecond))
			rep.drains = append(rep.drains, fmt.Sprintf("%s %s", after, durText(d)))
			return nil
		}
		if time.Since(start) > 5*time.Minute {
			return fmt.Errorf("the processor left %d events in event_backlog after 5 minutes", n)
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// postgresInfo returns the server's version and the settings that decide durability and size.
func postgresInfo(ctx context.Context, db *pgx.Conn) (string, error) {
	var version string
	if err := db.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return "", err
	}
	var settings []string
	for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes", "wal_level", "shared_buffers", "max_connections"} {
		var v string
		if err := db.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v); err != nil {
			return "", err
		}
		settings = append(settings, name+"="+v)
	}
	// What is not at PostgreSQL's built-in default: what initdb wrote into postgresql.conf (sizes it probed,
	// locale), and the socket-only options testdb passes on the command line.
	bySource := map[string][]string{}
	rows, err := db.Query(ctx, "SELECT source, name FROM pg_settings WHERE source IN ('configuration file', 'command line') ORDER BY name")
	if err != nil {
		return "", err
	}
	for rows.Next() {
		var src, name string
		if err := rows.Scan(&src, &name); err != nil {
			return "", err
		}
		bySource[src] = append(bySource[src], name)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s, a throwaway server (initdb); %s; set by initdb in postgresql.conf: %s; on the command line: %s",
		version, strings.Join(settings, ", "), strings.Join(bySource["configuration file"], ", "),
		strings.Join(bySource["command line"], ", ")), nil
}
