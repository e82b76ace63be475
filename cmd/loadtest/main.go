// Command loadtest is the load harness of `make loadtest` (issue 13): it starts the built server binary on a
// throwaway PostgreSQL (fsync on, PostgreSQL's default settings) and, once, on the embedded SQLite; seeds them;
// drives the server from keep-alive HTTP/1.1 connections in this process; and prints one Markdown table of every
// figure, all measured in that one run, with the machine at the top and the targets beside the figures.
//
//	go run ./cmd/loadtest [-bin bin/nexus] [-duration 5s] [-conns 64] …   (make loadtest builds both first)
//
// Every flag can also be set as LOADTEST_<FLAG> in the environment (LOADTEST_DURATION=10s, LOADTEST_PPROF=dir);
// a flag wins. `loadtest -h` lists them.
//
// What it measures, in the order of the table (each row: rate, p50 and p99 over every request of the measured
// window, the count of non-2xx answers, errors and 2xx answers that failed a check; ratios where the issue
// names one):
//
//  1. GET /healthz: the unauthenticated floor.
//  2. GET /v2/users/{id} of the big organization's users in turn, as its admin; ratio to 1.
//  3. GET /v2/users?limit=50 in the small organization; ratio to 1.
//  4. GET /v2/users?limit=50 in the big organization: the first page and offset=10000; then a sweep over every
//     allowed filter (none, status, role, both) at offsets 0, 5000 and 10000, each answer checked for its total.
//  5. POST /v2/analytics/events, one event with a unique event_id per request, from members' sessions.
//  6. POST /v2/analytics/events/batch with 1,000 events per request, against a raw pgx CopyFrom of the same rows
//     into scratch tables made with (LIKE events INCLUDING ALL) and (LIKE event_keys INCLUDING ALL), in one
//     transaction, from as many connections; ratio.
//  7. POST /v2/auth/refresh: one session chain per connection (its login first), each refreshing with its
//     latest refresh token.
//  8. POST /v2/auth/login of the seeded users in turn (2×GOMAXPROCS connections), against the raw argon2id rate
//     of internal/auth.VerifyPassword on GOMAXPROCS goroutines in this process, measured while the server is
//     idle; ratio.
//  9. Start-up (process start until /readyz answers 200), idle RSS (a second after that) and peak RSS (VmHWM
//     at the end) of the server, on SQLite and on PostgreSQL. The SQLite server also runs a few rows for a
//     short while, reported apart, so that its peak is one under load.
//
// A row and the rows compared with it (1–3, 6a–6b, 8a–8b) alternate in rounds (-rounds, 5 by default), each
// round a fifth of -duration, and each row's rounds are merged: a change in the machine's other load during the
// run then falls on both sides of a ratio. Every row also reports the CPU the server process and this program
// used (in cores, warm-up included), which shows how much of the shared machine each had.
//
// Each connection sends the access token of a session of its own (the organization's admin for the user reads,
// distinct members for ingest), as distinct clients would. Ingest runs last, and after each ingest row (and each
// round of batches) the harness waits, untimed, until the server's processor has emptied event_backlog, so that
// no row pays for the one before; the report lists how long each wait took.
//
// Seeding: `nexus migrate`, `nexus client create`, `nexus org create` and `nexus user create` (the admins), then
// one COPY of the members into users (one argon2id hash made by internal/auth.HashPassword, shared by all), then
// VACUUM ANALYZE. The server itself runs with every rate limit off and NEXUS_BEHIND_TLS_PROXY=true (plain HTTP
// outside --dev), everything else at its defaults, its access log read and dropped. The server does not expose
// pprof today; -pprof writes its CPU profiles (one per row) only if it answers /debug/pprof/.
//
// Everything it starts (servers, PostgreSQL) and every temporary directory is removed on exit, Ctrl-C included.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// config is the harness's settings.
type config struct {
	bin            string          // the server binary
	duration       time.Duration   // the measured window of each row
	warmup         time.Duration   // before each row's window; its requests are not counted
	conns          int             // connections of most rows
	sweepDuration  time.Duration   // the measured window of each point of the listing sweep
	sweepConns     int             // connections of the sweep
	batchConns     int             // connections of batch ingest and of the raw COPY
	batchEvents    int             // events per batch, rows per COPY
	loginConns     int             // connections of the login row
	users          int             // users of the big organization, its admin included
	smallUsers     int             // users of the small organization, its admin included
	sqliteDuration time.Duration   // the measured window of each SQLite row
	pprofDir       string          // where CPU profiles go, if the server offers them
	rounds         int             // rounds in which rows compared with each other alternate
	only           map[string]bool // the row ids to run (-only); empty: every row
}

// wants reports whether the row with this id is to run (-only).
func (c config) wants(id string) bool { return len(c.only) == 0 || c.only[id] }

// parseConfig reads the flags, each defaulting to LOADTEST_<FLAG> from getenv, then to the built-in default.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.bin, "bin", "bin/nexus", "the server binary (make build makes it)")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "measured time per row")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "warm-up before each row, not counted")
	fs.IntVar(&c.conns, "conns", 64, "concurrent connections of most rows")
	fs.DurationVar(&c.sweepDuration, "sweep-duration", time.Second, "measured time per point of the listing sweep (45 points)")
	fs.IntVar(&c.sweepConns, "sweep-conns", 0, "concurrent connections of the listing sweep (0: -conns)")
	fs.IntVar(&c.batchConns, "batch-conns", 4, "concurrent connections of batch ingest and of the raw COPY")
	fs.IntVar(&c.batchEvents, "batch-events", 1000, "events per batch (at most 1000), rows per COPY")
	fs.IntVar(&c.loginConns, "login-conns", 2*runtime.GOMAXPROCS(0), "concurrent connections of the login row")
	fs.IntVar(&c.users, "users", 100_000, "users of the big organization")
	fs.IntVar(&c.smallUsers, "small-users", 200, "users of the small organization")
	fs.DurationVar(&c.sqliteDuration, "sqlite-duration", 2*time.Second, "measured time per row on SQLite")
	fs.IntVar(&c.rounds, "rounds", 5, "rounds in which a row and its reference alternate (1-3, 6a-6b, 8a-8b), -duration split among them")
	fs.StringVar(&c.pprofDir, "pprof", "", "write the server's CPU profile of each row into this directory, if it serves /debug/pprof")
	var only string
	fs.StringVar(&only, "only", "", "run only these rows, comma-separated ids of the table (e.g. 1,3,4a,4b,4c; S1,S3 on SQLite; 9 is always reported); empty: every row")
	var bad []string
	fs.VisitAll(func(f *flag.Flag) {
		name := "LOADTEST_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := strings.TrimSpace(getenv(name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				bad = append(bad, fmt.Sprintf("%s=%q: %v", name, v, err))
			}
		}
	})
	if len(bad) > 0 {
		return c, errors.New(strings.Join(bad, "; "))
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for id := range strings.SplitSeq(only, ",") {
		if id = strings.TrimSpace(id); id != "" {
			if c.only == nil {
				c.only = map[string]bool{}
			}
			c.only[id] = true
		}
	}
	if c.sweepConns == 0 {
		c.sweepConns = c.conns
	}
	switch {
	case c.duration <= 0 || c.sweepDuration <= 0 || c.sqliteDuration <= 0 || c.warmup < 0:
		return c, errors.New("durations must be positive (the warm-up may be 0)")
	case c.rounds < 1:
		return c, errors.New("-rounds: at least 1")
	case c.conns < 1 || c.sweepConns < 1 || c.batchConns < 1 || c.loginConns < 1:
		return c, errors.New("connection counts must be at least 1")
	case c.batchEvents < 1 || c.batchEvents > 1000:
		return c, errors.New("-batch-events: between 1 and 1000")
	case c.users < 2 || c.smallUsers < 2:
		return c, errors.New("-users and -small-users: at least 2 (the admin and a member)")
	case c.users < c.conns+1:
		return c, errors.New("-users: at least -conns + 1, so that every ingest and refresh connection has a member of its own")
	}
	return c, nil
}

// run is the whole program: main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := runHarness(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	rep.total = time.Since(start)
	rep.print(stdout)
	return nil
}
