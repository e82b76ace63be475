package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/store"
)

// writeSQLiteScale is TestEventsAtScale on SQLite, for the sizes in spec (NEXUS_BENCH_EVENTS_SQLITE, e.g.
// 10000,1000000): each seeded once into dir/sqlite-<n> through the same path as on PostgreSQL (seedWorld), copied
// for every run, and measured the same way, without plans or CPU figures.
func writeSQLiteScale(t *testing.T, b *strings.Builder, dir, spec string, rounds int, ops []scaleOp) {
	var runs []*scaleRun
	var seeded []string
	for f := range strings.SplitSeq(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < scaleChunk/10 {
			t.Fatalf("NEXUS_BENCH_EVENTS_SQLITE: %q is not an event count of at least %d", f, scaleChunk/10)
		}
		name := "sqlite_" + strconv.Itoa(n)
		seedDir := filepath.Join(dir, "sqlite-"+strconv.Itoa(n))
		w, ok := cachedWorld(dir, name, n)
		if !ok || os.Getenv("NEXUS_BENCH_EVENTS_RESEED") != "" {
			w = seedSQLite(t, dir, seedDir, name, n)
		}
		seeded = append(seeded, fmt.Sprintf("%s %s", label(n), time.Duration(w.SeedSecs*float64(time.Second)).Round(time.Second)))
		runDir := filepath.Join(dir, "sqlite-run-"+strconv.Itoa(n))
		must(t, os.RemoveAll(runDir))
		must(t, os.MkdirAll(runDir, 0o700))
		must(t, copyFile(filepath.Join(seedDir, store.SQLiteFile), filepath.Join(runDir, store.SQLiteFile)))
		r := &scaleRun{t: t, label: label(n), name: name, world: w, sqliteDir: runDir, times: map[string][]time.Duration{},
			cpu: map[string]*scaleCPU{}}
		r.begin()
		runs = append(runs, r)
	}
	measureScale(runs, ops, rounds)
	fmt.Fprintf(b, "\n## Events at scale on SQLite: %s events, %d rounds\n\nSeeded in: %s (at the seed's run). Each run measures a copy of the seeded file.\n\n",
		spec, rounds, strings.Join(seeded, ", "))
	writeTimes(b, runs, ops, make([]map[string][]scalePlan, len(runs)))
}

// seedSQLite seeds n events into a new SQLite database in seedDir and records its world in dir.
func seedSQLite(t *testing.T, dir, seedDir, name string, n int) scaleWorld {
	began := time.Now()
	_ = os.Remove(markerPath(dir, name))
	must(t, os.RemoveAll(seedDir))
	db, err := store.Open(t.Context(), store.Options{DataDir: seedDir})
	must(t, err)
	w := seedWorld(t, db, name, n)
	_, err = db.Pool().ExecContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)")
	must(t, err)
	_, err = db.Pool().ExecContext(t.Context(), "ANALYZE")
	must(t, err)
	must(t, db.Close())
	w.SeedSecs = time.Since(began).Seconds()
	raw, err := json.Marshal(w)
	must(t, err)
	must(t, os.WriteFile(markerPath(dir, name), raw, 0o600))
	t.Logf("seed %s: done in %s", name, time.Since(began).Round(time.Second))
	return w
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
