package main

import (
	"bufio"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// report is everything one run measured.
type report struct {
	cfg      config
	machine  machine
	seed     time.Duration // seeding the PostgreSQL database
	rows     []row         // PostgreSQL, in the table's order
	sweep    []sweepPoint
	sqlite   []row
	startups []startup
	drains   []string // how long the processor took to empty event_backlog after each ingest row or round
	total    time.Duration
}

// row is one line of a table.
type row struct {
	id, name string
	conns    int
	unit     string // of the rate: "req/s", "events/s", …
	res      result
	ratio    float64 // to the row named ratioOf; 0: none
	ratioOf  string
	target   string      // the target, or ""
	meets    func() bool // whether the figures meet it (failures aside)
}

// met says whether the row meets its target: "met", "**not met**", or "" without a target. Any non-2xx answer
// fails the target too.
func (r row) met() string {
	switch {
	case r.target == "":
		return ""
	case r.res.failures > 0:
		return "**not met** (non-2xx)"
	case r.meets():
		return "met"
	}
	return "**not met**"
}

// sweepPoint is one point of the listing sweep.
type sweepPoint struct {
	filter string // the query's filter parameters, or ""
	total  int    // pagination.total of the filter
	offset int
	res    result
}

// startup is the start-up and memory figures of the server on one database.
type startup struct {
	db               string
	ready            time.Duration
	idleRSS, peakRSS int64  // VmRSS a second after ready; VmHWM at the end
	peakRow          string // the row during which the highest VmRSS was sampled
}

// machine describes where the run happened.
type machine struct {
	cpu               string
	cpus, gomaxprocs  int
	kernel, loadavg   string
	goServer, goLocal string
	revision          string
	postgres          string // version and the settings that matter for durability and size
}

// readMachine describes this machine and the server binary bin.
func readMachine(bin string) machine {
	m := machine{cpu: "unknown CPU", cpus: runtime.NumCPU(), gomaxprocs: runtime.GOMAXPROCS(0), goLocal: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.kernel = utsString(u.Sysname[:]) + " " + utsString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	if info, err := buildinfo.ReadFile(bin); err == nil {
		m.goServer = info.GoVersion
		var rev, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && modified == "true" {
			rev += "-dirty"
		}
		m.revision = rev
	}
	if m.revision == "" { // built with -buildvcs=false: say what the working tree holds, if it is a checkout
		if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
			m.revision = "of the working tree " + strings.TrimSpace(string(out))
		}
	}
	return m
}

// utsString reads a NUL-terminated field of Utsname (int8 on some architectures, uint8 on others).
func utsString[T int8 | uint8](b []T) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		out = append(out, byte(c))
	}
	return string(out)
}

// print writes the report as Markdown.
func (rep *report) print(w io.Writer) {
	m, c := rep.machine, rep.cfg
	fmt.Fprintf(w, "\n## make loadtest — %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "- Machine: %s, %d logical CPUs (GOMAXPROCS %d), %s; load average %s at the start\n", m.cpu, m.cpus, m.gomaxprocs, m.kernel, m.loadavg)
	rev := ""
	if m.revision != "" {
		rev = ", revision " + m.revision
	}
	fmt.Fprintf(w, "- Go: server %s built with %s%s; harness %s\n", c.bin, m.goServer, rev, m.goLocal)
	fmt.Fprintf(w, "- PostgreSQL: %s\n", m.postgres)
	fmt.Fprintf(w, "- Server: every rate limit off (%s=off), NEXUS_BEHIND_TLS_PROXY=true, all else default (access log on, read and dropped by the harness)\n",
		strings.Join(rateLimitVars, ", "))
	fmt.Fprintf(w, "- Load: this program on the same machine, keep-alive HTTP/1.1; %v warm-up, then %v measured per row; rows compared in a ratio alternate in %d rounds; p50/p99 exact (nearest rank) over every request measured; non-2xx counts errors and failed checks too\n",
		c.warmup, c.duration, c.rounds)
	fmt.Fprintf(w, "- cores server/gen: CPU time of the server process and of this program over the row's wall time, warm-up included (this program is the load generator, and runs 8a's hashes and 6a's COPY itself; PostgreSQL's CPU is in neither)\n")
	fmt.Fprintf(w, "- Data: organization \"big\" %s users, \"small\" %s users (about 1%% admins, 9%% managers, 20%% analysts, 70%% members; 10%% inactive), seeded in %v\n\n",
		thousands(int64(c.users)), thousands(int64(c.smallUsers)), rep.seed.Round(100*time.Millisecond))

	fmt.Fprintln(w, "| # | PostgreSQL | conns | rate | p50 | p99 | non-2xx | ratio | target | | cores server/gen |")
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|---|---|--:|")
	for _, r := range rep.rows {
		ratio := ""
		if r.ratioOf != "" {
			ratio = fmt.Sprintf("%.2f of %s", r.ratio, r.ratioOf)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.id, r.name, r.conns,
			rateText(r.res.rate(), r.unit), durText(r.res.p50), durText(r.res.p99), thousands(r.res.failures), ratio, r.target, r.met(),
			coresText(r.res))
	}

	if len(rep.drains) > 0 {
		fmt.Fprintf(w, "\nAfter each ingest row (and each round of 6b) the harness waited, untimed, until the processor had emptied event_backlog: %s.\n",
			strings.Join(rep.drains, ", "))
	}

	if len(rep.sweep) > 0 {
		offsets := []int{}
		for _, p := range rep.sweep {
			if !slices.Contains(offsets, p.offset) {
				offsets = append(offsets, p.offset)
			}
		}
		fmt.Fprintf(w, "\n4c. GET /v2/users?limit=50 in the big organization, every filter and offset: p99 (requests/s, non-2xx if any); %d conns, %v warm-up + %v each; target p99 < 50 ms\n\n",
			c.sweepConns, sweepWarmup(c), c.sweepDuration)
		fmt.Fprint(w, "| filter | total |")
		for _, o := range offsets {
			fmt.Fprintf(w, " offset %d |", o)
		}
		fmt.Fprint(w, "\n|---|--:|")
		for range offsets {
			fmt.Fprint(w, "--:|")
		}
		fmt.Fprintln(w)
		for i := 0; i < len(rep.sweep); i += len(offsets) {
			p0 := rep.sweep[i]
			f := p0.filter
			if f == "" {
				f = "(none)"
			}
			fmt.Fprintf(w, "| %s | %s |", f, thousands(int64(p0.total)))
			for _, p := range rep.sweep[i:min(i+len(offsets), len(rep.sweep))] {
				failed := ""
				if p.res.failures > 0 {
					failed = ", " + thousands(p.res.failures) + " non-2xx"
				}
				fmt.Fprintf(w, " %s (%s/s%s) |", durText(p.res.p99), thousands(int64(p.res.rate())), failed)
			}
			fmt.Fprintln(w)
		}
	}

	fmt.Fprintln(w, "\n9. Start-up and memory of the server process (start: from exec until /readyz answers 200; idle: VmRSS a second later; peak: VmHWM at the end)")
	fmt.Fprintln(w, "\n| database | start → ready | idle RSS | peak RSS under load | highest during |")
	fmt.Fprintln(w, "|---|--:|--:|--:|---|")
	for _, s := range rep.startups {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", s.db, durText(s.ready), mib(s.idleRSS), mib(s.peakRSS), s.peakRow)
	}

	if len(rep.sqlite) > 0 {
		fmt.Fprintf(w, "\nSQLite (embedded database, one organization of one admin; %v measured per row; for the memory figures, no targets)\n\n", c.sqliteDuration)
		fmt.Fprintln(w, "| # | SQLite | conns | rate | p50 | p99 | non-2xx | cores server/gen |")
		fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|--:|")
		for _, r := range rep.sqlite {
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | %s |\n", r.id, r.name, r.conns, rateText(r.res.rate(), r.unit),
				durText(r.res.p50), durText(r.res.p99), thousands(r.res.failures), coresText(r.res))
		}
	}
	fmt.Fprintf(w, "\nWhole run: %v.\n", rep.total.Round(time.Second))
}

// coresText formats the cores the server and the load generator used on average during a row ("" for 4c).
func coresText(r result) string {
	if r.wall <= 0 {
		return ""
	}
	s, g := r.cores()
	return fmt.Sprintf("%.2f / %.2f", s, g)
}

// rateText formats a rate with its unit.
func rateText(v float64, unit string) string {
	if v >= 100 {
		return thousands(int64(v+0.5)) + " " + unit
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + unit
}

// durText formats a latency with three significant digits, in ms (in s from 10 s on).
func durText(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms < 10:
		return fmt.Sprintf("%.2f ms", ms)
	case ms < 100:
		return fmt.Sprintf("%.1f ms", ms)
	case ms < 10_000:
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f s", ms/1000)
}

// mib formats a size in MiB.
func mib(b int64) string {
	if b <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// thousands formats n with a comma every three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
