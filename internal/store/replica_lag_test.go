package store

import (
	"testing"
	"time"
)

func TestParseLSN(t *testing.T) {
	for in, want := range map[string]uint64{"0/0": 0, "0/16B3748": 0x16B3748, "16/B374D848": 0x16<<32 | 0xB374D848, "FFFFFFFF/FFFFFFFF": 1<<64 - 1} {
		if got, err := parseLSN(in); err != nil || got != want {
			t.Errorf("parseLSN(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for _, in := range []string{"", "16", "x/1", "1/"} {
		if _, err := parseLSN(in); err == nil {
			t.Errorf("parseLSN(%q) succeeded", in)
		}
	}
}

// TestLagOf: the lag is the age of the newest check whose primary position the replica has replayed, zero when
// it has replayed the current one, however long the primary has been idle.
func TestLagOf(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r := &replica{}
	steps := []struct {
		at              time.Duration // since t0
		primary, replay uint64
		want            time.Duration
	}{
		{0, 100, 100, 0},                                       // caught up
		{time.Second, 100, 100, 0},                             // an idle primary: still caught up
		{time.Hour, 100, 100, 0},                               // idle for an hour: no lag (a replay timestamp would say an hour)
		{time.Hour + time.Second, 200, 100, time.Second},       // a write the replica has not replayed: as old as the last check it passed
		{time.Hour + 2*time.Second, 300, 150, 2 * time.Second}, // replayed part of it: still behind the second check
		{time.Hour + 3*time.Second, 300, 200, 2 * time.Second}, // replayed what the primary had at 1h+1s
		{time.Hour + 4*time.Second, 300, 300, 0},               // caught up
	}
	for i, s := range steps {
		if got := r.lagOf(t0.Add(s.at), s.primary, s.replay); got != s.want {
			t.Errorf("step %d: lag %v, want %v", i, got, s.want)
		}
	}
	if len(r.history) != 1 {
		t.Errorf("%d samples kept once caught up, want 1", len(r.history))
	}
	// A replica that has passed none of the kept samples: the age of the oldest, a lower bound.
	r = &replica{}
	for i := range replicaHistory + 10 {
		r.lagOf(t0.Add(time.Duration(i)*time.Second), uint64(1000+i), 10)
	}
	if len(r.history) != replicaHistory {
		t.Errorf("%d samples kept, want at most %d", len(r.history), replicaHistory)
	}
	if got := r.lagOf(t0.Add(time.Hour), 5000, 10); got < 50*time.Minute {
		t.Errorf("lag %v of a replica behind every kept sample", got)
	}
}
