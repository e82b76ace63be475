package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// The concurrent benchmarks drive the real handler from many goroutines at once, as many clients would, and
// report throughput and latency percentiles from the recorded latencies (no timing is asserted). To measure on
// PostgreSQL with fsync on, point NEXUS_TEST_POSTGRES_URL at such a server (the throwaway one runs without).

// authPost sends a JSON POST through h and returns the status and the decoded body, without the response
// checks of the tests (safe to call from any goroutine).
func authPost(h http.Handler, path string, body any) (int, map[string]any, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req := httptest.NewRequest("POST", path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		return rec.Code, nil, fmt.Errorf("%d: %s", rec.Code, rec.Body.Bytes())
	}
	return rec.Code, m, nil
}

// runConcurrent runs op b.N times in total from workers goroutines (worker i calls op(i)), and reports ops/s,
// p50 and p99 from the recorded latencies.
func runConcurrent(b *testing.B, workers int, op func(worker int) error) {
	b.Helper()
	var next atomic.Int64
	lat := make([][]time.Duration, workers)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := op(w); err != nil {
					errs <- err
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(float64(len(all)-1)*p)].Microseconds()) / 1000 }
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
	b.ReportMetric(pct(0.50), "p50_ms")
	b.ReportMetric(pct(0.99), "p99_ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(all)), "cpu_us/op")
}

// processCPU returns the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pageFaults returns the minor page faults of this process so far: memory that the runtime gave back to the
// operating system and takes again (each argon2id check allocates 19 MiB).
func pageFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}

// BenchmarkRefreshConcurrent rotates 64 session chains at once, each in its own goroutine: of one user (every
// rotation takes that user's row FOR SHARE) and of 64 users.
func BenchmarkRefreshConcurrent(b *testing.B) {
	const chains = 64
	for _, d := range storetest.Dialects {
		for _, users := range []int{1, chains} {
			b.Run(fmt.Sprintf("%s/chains=%d/users=%d", d, chains, users), func(b *testing.B) {
				e := newEnv(b, storetest.Open(b, d))
				hash, err := auth.HashPassword(adminPassword)
				must(b, err)
				emails := []string{adminEmail}
				for i := 1; i < users; i++ {
					u := e.user(e.orgA.ID, fmt.Sprintf("chain%02d@example.com", i), nexus.RoleMember, hash)
					emails = append(emails, u.Email)
				}
				tokens := make([]string, chains)
				for i := range tokens {
					r := e.login(emails[i%len(emails)], adminPassword, webClient)
					if r.status != http.StatusOK {
						b.Fatalf("login: %d %s", r.status, r.body)
					}
					tokens[i] = r.str(b, "refresh_token")
				}
				runConcurrent(b, chains, func(w int) error {
					status, m, err := authPost(e.h, "/v2/auth/refresh", map[string]any{"refresh_token": tokens[w], "client_id": webClient})
					if err != nil || status != http.StatusOK {
						return fmt.Errorf("refresh: %d %v %v", status, m, err)
					}
					tokens[w], _ = m["refresh_token"].(string)
					return nil
				})
			})
		}
	}
}

// BenchmarkLoginConcurrent logs in from 16 goroutines at once and compares the rate with the raw argon2id
// verification rate of this machine, measured in the same run just before (GOMAXPROCS goroutines verifying
// the same hash as many times): login_ratio is logins/s over raw verifications/s. On a machine shared with other
// work the wall-clock rates are noisy; cpu_ratio compares the CPU time of this process per raw verification and
// per login instead (the database server's share is not in it).
func BenchmarkLoginConcurrent(b *testing.B) {
	const clients = 16
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			e := newEnv(b, storetest.Open(b, d))
			hash, err := auth.HashPassword(adminPassword)
			must(b, err)

			procs := runtime.GOMAXPROCS(0)
			var next atomic.Int64
			var wg sync.WaitGroup
			cpu0, pf0 := processCPU(), pageFaults()
			start := time.Now()
			for range procs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if !auth.VerifyPassword(hash, adminPassword) {
							panic("hash does not verify")
						}
					}
				}()
			}
			wg.Wait()
			raw := float64(b.N) / time.Since(start).Seconds()
			rawCPU := float64((processCPU() - cpu0).Microseconds()) / float64(b.N)
			rawFaults := float64(pageFaults()-pf0) / float64(b.N)

			body := map[string]any{"email": adminEmail, "password": adminPassword, "client_id": webClient}
			var logins atomic.Int64
			t0, c0, pf1 := time.Now(), processCPU(), pageFaults()
			runConcurrent(b, clients, func(int) error {
				if status, m, err := authPost(e.h, "/v2/auth/login", body); err != nil || status != http.StatusOK {
					return fmt.Errorf("login: %d %v %v", status, m, err)
				}
				logins.Add(1)
				return nil
			})
			rate := float64(logins.Load()) / time.Since(t0).Seconds()
			loginCPU := float64((processCPU() - c0).Microseconds()) / float64(logins.Load())
			b.ReportMetric(rawFaults, "raw_faults/hash")
			b.ReportMetric(float64(pageFaults()-pf1)/float64(logins.Load()), "faults/login")
			b.ReportMetric(raw, "raw_hash/s")
			b.ReportMetric(rawCPU, "raw_cpu_us/hash")
			b.ReportMetric(rate/raw, "login_ratio")
			b.ReportMetric(rawCPU/loginCPU, "cpu_ratio")
		})
	}
}
