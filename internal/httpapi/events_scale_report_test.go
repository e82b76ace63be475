package httpapi

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

// scalePlan is one statement's plan as auto_explain logged it.
type scalePlan struct {
	duration string // "12.345 ms"
	text     string // Query Text and the plan
}

// logLine is the start of a line of PostgreSQL's log (log_line_prefix '%m [%p] '); a line that does not start
// so continues the message before it.
var (
	logLine    = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
	planHeader = regexp.MustCompile(`LOG:  duration: ([0-9.]+ ms)  plan:`)
	topBuffers = regexp.MustCompile(`Buffers: shared(?: hit=(\d+))?(?: read=(\d+))?(?: dirtied=(\d+))?`)
)

// explain runs every operation once more on a node whose connections load auto_explain (EXPLAIN ANALYZE with
// BUFFERS of every statement, logged), and returns the plans of each operation's statements on events and
// their rollups. The node is a new one, on a pool of its own: the measured node's connections never load it.
func (r *scaleRun) explain(ops []scaleOp) map[string][]scalePlan {
	pg := r.name
	exec := func(sql string) {
		_, err := r.e.db.Pool().ExecContext(context.Background(), sql)
		must(r.t, err)
	}
	for _, s := range []string{"session_preload_libraries = 'auto_explain'", "auto_explain.log_min_duration = 0",
		"auto_explain.log_analyze = on", "auto_explain.log_buffers = on", "auto_explain.log_timing = on",
		"auto_explain.log_nested_statements = off"} {
		exec("ALTER DATABASE " + pg + " SET " + s)
	}
	defer exec("ALTER DATABASE " + pg + " RESET ALL")
	// Only the new node's processor runs from here on, so that the statements of an ingest's processing are
	// logged.
	measured := r.e
	measured.pipe.Processor.Stop()
	r.e = r.node()
	defer func() { r.e = measured }()
	logFile := r.log
	out := map[string][]scalePlan{}
	for _, op := range ops {
		before := fileSize(logFile)
		r.do(op)
		time.Sleep(200 * time.Millisecond) // the processor's statements of an ingest, and the log's writes
		out[op.name] = plansIn(logFile, before)
	}
	return out
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// plansIn returns the plans logged in path after offset whose statement reads or writes events or their
// rollups, but for the processor's look at an empty backlog.
func plansIn(path string, offset int64) []scalePlan {
	raw, err := os.ReadFile(path)
	if err != nil || int64(len(raw)) < offset {
		return nil
	}
	var plans []scalePlan
	var cur *scalePlan
	flush := func() {
		if cur != nil && relevant(cur.text) {
			plans = append(plans, *cur)
		}
		cur = nil
	}
	for line := range strings.SplitSeq(string(raw[offset:]), "\n") {
		if logLine.MatchString(line) {
			flush()
			if m := planHeader.FindStringSubmatch(line); m != nil {
				cur = &scalePlan{duration: m[1]}
			}
			continue
		}
		if cur != nil {
			cur.text += strings.TrimPrefix(line, "\t") + "\n"
		}
	}
	flush()
	return plans
}

func relevant(plan string) bool {
	q, _, _ := strings.Cut(plan, "\n")
	q = strings.ToLower(q)
	if strings.Contains(q, "count(*), min(received_at)") { // Backlog: the settle loop's and the processor's looks
		return false
	}
	if top, _, _ := strings.Cut(strings.SplitN(plan, "\n", 3)[1], "\n"); strings.Contains(q, "delete from event_backlog") &&
		strings.Contains(top, " rows=0 loops") { // the processor's look at an empty backlog
		return false
	}
	return strings.Contains(strings.ToLower(plan), "event")
}

// buffers returns the shared buffers touched (hit + read) and dirtied by the top nodes of plans, summed over
// their statements.
func buffers(plans []scalePlan) (touched, dirtied int, found bool) {
	for _, p := range plans {
		m := topBuffers.FindStringSubmatch(p.text)
		if m == nil {
			continue
		}
		found = true
		hit, _ := strconv.Atoi(m[1]) // "" when absent: 0
		read, _ := strconv.Atoi(m[2])
		dirty, _ := strconv.Atoi(m[3])
		touched, dirtied = touched+hit+read, dirtied+dirty
	}
	return touched, dirtied, found
}

// writeRelations writes the size of every relation of the events tables (and their indexes, partitions
// included) per run.
func writeRelations(b *strings.Builder, runs []*scaleRun) {
	b.WriteString("Relations before the timed rounds (tables, partitions and indexes whose name starts with event or user_event):\n\n| database | relation | kind | size |\n|---|---|---|--:|\n")
	for _, r := range runs {
		rows, err := r.e.db.Pool().QueryContext(context.Background(), `SELECT c.relname, c.relkind, pg_relation_size(c.oid)
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND (c.relname LIKE 'event%' OR c.relname LIKE 'user_event%') AND c.relkind IN ('r','i','p','I')
			ORDER BY pg_relation_size(c.oid) DESC LIMIT 12`)
		must(r.t, err)
		for rows.Next() {
			var name, kind string
			var size int64
			must(r.t, rows.Scan(&name, &kind, &size))
			fmt.Fprintf(b, "| %s | %s | %s | %.1f MiB |\n", r.label, name, kind, float64(size)/(1<<20))
		}
		must(r.t, rows.Err())
		_ = rows.Close()
	}
	b.WriteString("\n")
}

// writeTimes writes the table of medians, ratios, buffers and CPU.
func writeTimes(b *strings.Builder, runs []*scaleRun, ops []scaleOp, plans []map[string][]scalePlan) {
	b.WriteString("| operation |")
	for _, r := range runs {
		fmt.Fprintf(b, " %s median |", r.label)
	}
	last := len(runs) - 1
	fmt.Fprintf(b, " %s / %s |", runs[last].label, runs[0].label)
	for _, r := range runs {
		fmt.Fprintf(b, " buffers %s |", r.label)
	}
	b.WriteString(" CPU per 1000 events (server / PostgreSQL) and WAL, until processed |\n|---|")
	b.WriteString(strings.Repeat("--:|", 2*len(runs)+1) + "---|\n")
	for _, op := range ops {
		fmt.Fprintf(b, "| %s |", op.name)
		for _, r := range runs {
			fmt.Fprintf(b, " %s |", round(median(r.times[op.name])))
		}
		if lo := median(runs[0].times[op.name]); lo > 0 {
			fmt.Fprintf(b, " %.2f |", float64(median(runs[last].times[op.name]))/float64(lo))
		}
		for i := range runs {
			if n, dirty, ok := buffers(plans[i][op.name]); ok && dirty > 0 {
				fmt.Fprintf(b, " %d (%d dirtied) |", n, dirty)
			} else if ok {
				fmt.Fprintf(b, " %d |", n)
			} else {
				b.WriteString(" – |")
			}
		}
		var cpu []string
		for _, r := range runs {
			// Only for batches: /proc counts CPU time in 10 ms ticks.
			if c := r.cpu[op.name]; c != nil && op.events >= 1000 && r.url != "" {
				events := float64(op.events * len(r.times[op.name]))
				per := func(d time.Duration) string { return round(time.Duration(float64(d) * 1000 / events)).String() }
				cpu = append(cpu, fmt.Sprintf("%s: %s / %s, WAL %.0f B/event", r.label, per(c.goCPU), per(c.pgCPU), float64(c.wal)/events))
			}
		}
		fmt.Fprintf(b, " %s |\n", strings.Join(cpu, "; "))
	}
	b.WriteString("\nbuffers: shared buffers touched (hit + read; and dirtied, each a full-page image in the WAL at its first change after a checkpoint) by the top plan node of the operation's statements on events and rollups, summed (auto_explain, one more run of each operation after the timed rounds); for ingest, the insert's statement and the processor's statements that ran within 200 ms after it.\n")
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
