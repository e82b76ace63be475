package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

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
	bigAdmin, err := h.tokens(ctx, "big admin", []user{big.admin}, cfg.conns)
	if err != nil {
		return err
	}
	smallAdmin, err := h.tokens(ctx, "small admin", []user{small.admin}, cfg.conns)
	if err != nil {
		return err
	}
	members := big.active()[1:] // active users other than the admin, so one session each
	memberTokens, err := h.tokens(ctx, "members", members, cfg.conns)
	if err != nil {
		return err
	}
	ids := make([]string, len(big.users))
	for i, u := range big.users {
		ids[i] = u.id
	}
	finish := func() error {
		st.peakRSS, st.peakRow = srv.hwm(), rr.peakRow
		srv.stop()
		rep.rows = rr.rows
		rep.startups = append(rep.startups, st)
		return nil
	}
	ratio := func(r *row, of row) {
		if rate := of.res.rate(); rate > 0 {
			r.ratio, r.ratioOf = r.res.rate()/rate, of.id
		}
	}

	// 1–4: reads; the floor and the rows compared with it alternate.
	var readIDs []string
	var readLoads []load
	for i, l := range []func() load{
		h.healthz,
		func() load { return h.getUser(bigAdmin, ids) },
		func() load {
			return h.listUsers(fmt.Sprintf("GET /v2/users?limit=50 (%s users)", thousands(int64(cfg.smallUsers))), smallAdmin, "/v2/users?limit=50")
		},
	} {
		if id := strconv.Itoa(i + 1); cfg.wants(id) {
			readIDs, readLoads = append(readIDs, id), append(readLoads, l())
		}
	}
	reads, err := rr.runAlternating(ctx, cfg.rounds, readIDs, slices.Repeat([]string{"req/s"}, len(readIDs)), readLoads, nil)
	if err != nil {
		return err
	}
	var floor *row
	for i := range reads {
		r := &reads[i]
		switch r.id {
		case "1":
			r.name = "GET /healthz (unauthenticated floor)"
			floor = r
		case "2":
			if floor != nil {
				ratio(r, *floor)
			}
			r.target, r.meets = fmt.Sprintf("≥ %.2f of 1", targetGetUser), func() bool { return r.ratio >= targetGetUser }
		case "3":
			if floor != nil {
				ratio(r, *floor)
			}
			r.target, r.meets = fmt.Sprintf("≥ %.2f of 1", targetListSmall), func() bool { return r.ratio >= targetListSmall }
		}
		rr.add(*r)
	}
	for _, p := range []struct{ id, query string }{{"4a", "limit=50"}, {"4b", "limit=50&offset=10000"}} {
		if !cfg.wants(p.id) {
			continue
		}
		r, err := rr.run(ctx, p.id, "req/s", h.listUsers(fmt.Sprintf("GET /v2/users?%s (%s users)", p.query, thousands(int64(cfg.users))),
			bigAdmin, "/v2/users?"+p.query))
		if err != nil {
			return err
		}
		r.target, r.meets = fmt.Sprintf("p99 < %d ms", targetListP99), func() bool { return r.res.p99 < targetListP99*time.Millisecond }
		rr.add(r)
	}
	if cfg.wants("4c") {
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
	}
	// The rows below run in pairs or alone; -only picks them by group.
	var late []row // added at the end, in the table's order

	// 7–8: auth.
	if cfg.wants("7") {
		refresh, err := rr.run(ctx, "7", "refreshes/s", h.refreshChains(members, cfg.conns))
		if err != nil {
			return err
		}
		refresh.target = fmt.Sprintf("≥ %s/s, p99 < 50 ms", thousands(targetRefresh))
		refresh.meets = func() bool { return refresh.res.rate() >= targetRefresh && refresh.res.p99 < 50*time.Millisecond }
		late = append(late, refresh)
	}
	if cfg.wants("8a") || cfg.wants("8b") {
		// The raw hash rate while the server is idle, alternating with the logins.
		auths, err := rr.runAlternating(ctx, cfg.rounds, []string{"8a", "8b"}, []string{"hashes/s", "logins/s"},
			[]load{h.hashRate(), h.logins(big.active(), cfg.loginConns)}, nil)
		if err != nil {
			return err
		}
		hashes, logins := auths[0], auths[1]
		hashes.name += " while the server is idle"
		ratio(&logins, hashes)
		logins.target, logins.meets = fmt.Sprintf("≥ %.2f of 8a", targetLogin), func() bool { return logins.ratio >= targetLogin }
		late = append(late, hashes, logins)
	}

	// 5–6: ingest, each followed by the processor's catching up.
	if cfg.wants("5") {
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
	if !cfg.wants("6a") && !cfg.wants("6b") {
		for _, r := range late {
			rr.add(r)
		}
		return finish()
	}
	if _, err := db.Exec(ctx, "CREATE TABLE "+copyTable+" (LIKE events INCLUDING ALL)"); err != nil {
		return fmt.Errorf("create the scratch table: %w", err)
	}
	if _, err := db.Exec(ctx, "CREATE TABLE "+copyKeysTable+" (LIKE event_keys INCLUDING ALL)"); err != nil {
		return fmt.Errorf("create the scratch keys table: %w", err)
	}
	// Connection w of both sends user members[w]'s events. The raw COPY and the batches alternate, and the
	// processor empties the backlog after each round of batches, untimed, so that no COPY round pays for it.
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
	for _, r := range late {
		rr.add(r)
	}
	return finish()
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
