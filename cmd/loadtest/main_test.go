package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHarness runs the whole harness against the server binary, built from this checkout, with tiny figures
// (200 ms per row, a few hundred users, a few connections) on a throwaway PostgreSQL and on SQLite, so that it
// cannot rot. It checks only that every row, sweep point and start-up figure is produced and every request got
// a 2xx answer that passed its check; the timings are not asserted. Without the PostgreSQL server binaries it is
// skipped loudly, except under CI=true, where it fails.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and runs it under load for about half a minute")
	}
	bin := buildServer(t)
	env := map[string]string{"LOADTEST_DURATION": "200ms", "LOADTEST_SWEEP_CONNS": "2"}
	cfg, err := parseConfig([]string{"-bin", bin, "-warmup", "50ms", "-sweep-duration", "50ms", "-sqlite-duration", "200ms",
		"-conns", "4", "-batch-conns", "2", "-batch-events", "50", "-login-conns", "2", "-users", "300", "-small-users", "20"},
		func(k string) string { return env[k] }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.duration != 200*time.Millisecond || cfg.sweepConns != 2 {
		t.Fatalf("LOADTEST_* not read: duration %v, sweep conns %d", cfg.duration, cfg.sweepConns)
	}
	var diag bytes.Buffer
	rep, err := runHarness(context.Background(), cfg, &diag)
	if errors.Is(err, errNoPostgres) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI (CI=true): %v", err)
		}
		t.Skipf("SKIPPING the load harness test, which needs PostgreSQL: %v", err)
	}
	if err != nil {
		t.Fatalf("runHarness: %v\n%s", err, diag.String())
	}

	check := func(table string, rows []row, want []string) {
		t.Helper()
		var ids []string
		for _, r := range rows {
			ids = append(ids, r.id)
			if r.res.calls == 0 || r.res.units < r.res.calls || r.res.elapsed <= 0 || r.res.p99 < r.res.p50 || r.res.p50 <= 0 {
				t.Errorf("%s row %s %s: no measurement: %+v", table, r.id, r.name, r.res)
			}
			if r.res.failures > 0 {
				t.Errorf("%s row %s %s: %d of %d calls failed: %q", table, r.id, r.name, r.res.failures, r.res.calls, r.res.failureNotes)
			}
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%s rows %q, want %q", table, ids, want)
		}
	}
	check("PostgreSQL", rep.rows, []string{"1", "2", "3", "4a", "4b", "4c", "5", "6a", "6b", "7", "8a", "8b"})
	check("SQLite", rep.sqlite, []string{"S1", "S2", "S3", "S5", "S8"})
	for _, r := range rep.rows {
		if (r.ratioOf != "") != slices.Contains([]string{"2", "3", "6b", "8b"}, r.id) || (r.ratioOf != "" && r.ratio <= 0) {
			t.Errorf("row %s: ratio %v of %q", r.id, r.ratio, r.ratioOf)
		}
	}
	if len(rep.sweep) != 15*3 {
		t.Errorf("%d sweep points, want 45 (15 filters × 3 offsets)", len(rep.sweep))
	}
	for _, p := range rep.sweep {
		if p.res.calls == 0 || p.res.failures > 0 {
			t.Errorf("sweep %q offset %d: %d calls, %d failed: %q", p.filter, p.offset, p.res.calls, p.res.failures, p.res.failureNotes)
		}
	}
	if len(rep.sweep) > 0 && rep.sweep[0].total != 300 {
		t.Errorf("sweep: unfiltered total %d, want 300", rep.sweep[0].total)
	}
	if len(rep.startups) != 2 {
		t.Fatalf("%d start-up figures, want SQLite and PostgreSQL", len(rep.startups))
	}
	for _, s := range rep.startups {
		if s.ready <= 0 || s.idleRSS <= 0 || s.peakRSS < s.idleRSS || s.peakRow == "" {
			t.Errorf("%s start-up and memory: %+v", s.db, s)
		}
	}
	var out bytes.Buffer
	rep.print(&out)
	for _, want := range []string{"| 8b | POST /v2/auth/login |", "| status=inactive&role=member | ", "| PostgreSQL | ", "PostgreSQL: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the printed report has no %q:\n%s", want, out.String())
		}
	}
	t.Logf("report:\n%s", out.String())
}

// buildServer builds the server binary into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go") // go test puts GOROOT/bin first on PATH
	if err != nil {
		t.Fatalf("the test builds the server and needs the go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "nexus")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, "../nexus")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestOnly checks -only and LOADTEST_ONLY: a selected row brings its group, the others are skipped, and an
// unknown row is refused.
func TestOnly(t *testing.T) {
	env := map[string]string{"LOADTEST_ONLY": "6b"}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"6a": true, "6b": true, "1": false, "4a": false, "5": false, "7": false, "8a": false, "S": false} {
		if cfg.wants(id) != want {
			t.Errorf("LOADTEST_ONLY=6b: wants(%q) = %v", id, !want)
		}
	}
	cfg, err = parseConfig([]string{"-only", "S, 2"}, func(string) string { return "" }, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.wants("S") || !cfg.wants("1") || !cfg.wants("3") || cfg.wants("6a") {
		t.Errorf("-only 'S, 2': %q", cfg.only)
	}
	if cfg, _ = parseConfig(nil, func(string) string { return "" }, os.Stderr); !cfg.wants("6a") || !cfg.wants("S") {
		t.Error("without -only, not every row runs")
	}
	if _, err := parseConfig([]string{"-only", "6c"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("-only 6c: no error")
	}
}
