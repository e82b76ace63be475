package httpapi

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// cpuMeter reads the CPU time used so far by this process (server and load generator alike) and by the
// PostgreSQL server that the benchmark's database lives on (its postmaster, every backend alive and every
// backend that has exited), so that a benchmark can say where its time went per unit. It reads /proc, so it
// works on Linux with a local server only; elsewhere pg reads as zero and ok is false.
type cpuMeter struct {
	postmaster int
}

// newCPUMeter finds the postmaster of the server at url: the parent of a backend of its own.
func newCPUMeter(ctx context.Context, url string) *cpuMeter {
	m := &cpuMeter{}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return m
	}
	defer conn.Close(ctx)
	var pid int
	if conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid) != nil {
		return m
	}
	if f, ok := procStat(pid); ok {
		m.postmaster = f.ppid
	}
	return m
}

// cpuSample is the CPU time used up to one moment.
type cpuSample struct {
	self, pg time.Duration
	ok       bool // pg was read
}

func (m *cpuMeter) sample() cpuSample {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := cpuSample{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	if m.postmaster == 0 {
		return s
	}
	pm, ok := procStat(m.postmaster)
	if !ok {
		return s
	}
	// The postmaster's own time and that of the children it has reaped, plus its living children's.
	ticks := pm.utime + pm.stime + pm.cutime + pm.cstime
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, ok := procStat(pid); ok && f.ppid == m.postmaster {
			ticks += f.utime + f.stime
		}
	}
	s.pg, s.ok = time.Duration(ticks)*time.Second/clockTicks, true
	return s
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux platform Go supports.
const clockTicks = 100

type statFields struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

// procStat reads the parent and CPU times of a process from /proc/<pid>/stat.
func procStat(pid int) (statFields, bool) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return statFields{}, false
	}
	// The command name, in parentheses, may hold spaces: the fields that count come after its last ')'.
	s := string(raw)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(rest) < 15 {
		return statFields{}, false
	}
	n := func(i int) int64 { v, _ := strconv.ParseInt(rest[i], 10, 64); return v }
	// rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
	return statFields{ppid: int(n(1)), utime: n(11), stime: n(12), cutime: n(13), cstime: n(14)}, true
}
