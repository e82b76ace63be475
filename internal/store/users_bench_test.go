package store_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// The organizations of BenchmarkListUsers: the listed one, and another whose users make the indexes' leading
// organization_id column selective.
const (
	benchOrgUsers   = 100_000
	benchOtherUsers = 20_000
)

// benchPasswordHash is every seeded user's password hash: one string of the length of a real argon2id hash.
const benchPasswordHash = "$argon2id$v=19$m=65536,t=3,p=2$c2VlZGVkLXNhbHQtMTY$0n2ztSTW1lXbSzz9b0fiGdlJqmY3NMU6LBSGX0oLi2M"

// listBenchCases are the listings BenchmarkListUsers measures, each a total and a page: the first page and the
// deepest allowed offset, unfiltered and with each kind of filter.
var listBenchCases = []struct {
	name string
	q    users.ListQuery
}{
	{"first_page", users.ListQuery{Limit: users.DefaultLimit}},
	{"limit_50", users.ListQuery{Limit: 50}},
	{"offset_5000", users.ListQuery{Limit: users.MaxLimit, Offset: 5_000}},
	{"deep_offset", users.ListQuery{Limit: users.MaxLimit, Offset: users.MaxOffset}},
	{"status_inactive", users.ListQuery{Limit: users.DefaultLimit, Status: nexus.UserInactive}},
	{"status_inactive_offset_10000", users.ListQuery{Limit: users.MaxLimit, Offset: users.MaxOffset, Status: nexus.UserInactive}},
	{"status_active_offset_10000", users.ListQuery{Limit: users.MaxLimit, Offset: users.MaxOffset, Status: nexus.UserActive}},
	{"role_admin", users.ListQuery{Limit: users.DefaultLimit, Role: nexus.RoleAdmin}},
	{"role_member", users.ListQuery{Limit: users.DefaultLimit, Role: nexus.RoleMember}},
	{"role_member_offset_10000", users.ListQuery{Limit: users.MaxLimit, Offset: users.MaxOffset, Role: nexus.RoleMember}},
	{"role_member_status_inactive", users.ListQuery{Limit: users.DefaultLimit, Role: nexus.RoleMember, Status: nexus.UserInactive}},
	{"role_member_status_active_offset_10000", users.ListQuery{Limit: users.MaxLimit, Offset: users.MaxOffset, Role: nexus.RoleMember, Status: nexus.UserActive}},
}

// benchCallers is how many goroutines call ListUsers at once in the concurrent variant of each case.
const benchCallers = 8

// BenchmarkListUsers measures ListUsers (the total and the page) in an organization of 100,000 users, on each
// database, one call at a time and from benchCallers goroutines at once, reporting p50 and p99 as well as the
// mean; each dialect's database is seeded once, before its cases run. It then logs the plans of the
// statement ListUsers sends for each case (shown with -v, as the logs of a benchmark with sub-benchmarks are).
func BenchmarkListUsers(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			ctx := context.Background()
			db := storetest.Open(b, d)
			orgID, totals := seedListBench(b, db)
			s := store.NewUsers(db)
			for _, bc := range listBenchCases {
				want := totals[bc.q]
				wantLen := max(0, min(bc.q.Limit, want-bc.q.Offset))
				check := func(b *testing.B) {
					page, total, err := s.ListUsers(ctx, orgID, bc.q)
					if err != nil || total != want || len(page) != wantLen {
						b.Fatalf("ListUsers(%+v) = %d users, total %d, %v; want %d users, total %d",
							bc.q, len(page), total, err, wantLen, want)
					}
				}
				b.Run(bc.name, func(b *testing.B) {
					var lat latencies
					for b.Loop() {
						start := time.Now()
						check(b)
						lat.add(time.Since(start))
					}
					lat.report(b)
				})
				b.Run(bc.name+"/callers="+strconv.Itoa(benchCallers), func(b *testing.B) {
					var (
						mu  sync.Mutex
						lat latencies
					)
					b.SetParallelism(max(1, benchCallers/runtime.GOMAXPROCS(0)))
					b.RunParallel(func(pb *testing.PB) {
						var mine latencies
						for pb.Next() {
							start := time.Now()
							check(b)
							mine.add(time.Since(start))
						}
						mu.Lock()
						lat.d = append(lat.d, mine.d...)
						mu.Unlock()
					})
					lat.report(b)
				})
			}
			for _, bc := range listBenchCases {
				p, err := s.ExplainListUsers(ctx, orgID, bc.q)
				if err != nil {
					b.Fatalf("ExplainListUsers(%+v): %v", bc.q, err)
				}
				var out strings.Builder
				out.WriteString("\n== " + bc.name + ": " + p.SQL + "\n")
				out.WriteString(indent(p.Plan))
				if p.GenericPlan != "" {
					out.WriteString("-- generic plan (plan_cache_mode = force_generic_plan):\n" + indent(p.GenericPlan))
				}
				b.Log(out.String())
			}
		})
	}
}

// latencies collects the duration of each call, to report percentiles next to the mean.
type latencies struct{ d []time.Duration }

func (l *latencies) add(d time.Duration) { l.d = append(l.d, d) }

// report adds the p50 and p99 of the calls, in milliseconds, to the benchmark's results.
func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	at := func(p float64) float64 {
		return float64(l.d[min(len(l.d)-1, int(p*float64(len(l.d))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

// seedListBench creates the two organizations and their users, interleaved in creation time as real sign-ups
// would be, with about 1% admins, 9% managers, 20% analysts and 70% members, of whom about 10% are inactive.
// It returns the big organization's id and how many of its users each of listBenchCases matches.
func seedListBench(b *testing.B, db *store.DB) (orgID string, totals map[users.ListQuery]int) {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	dir := store.NewDirectory(db)
	org, err := dir.CreateOrganization(ctx, "Big")
	if err != nil {
		b.Fatalf("CreateOrganization: %v", err)
	}
	other, err := dir.CreateOrganization(ctx, "Other")
	if err != nil {
		b.Fatalf("CreateOrganization: %v", err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	n := benchOrgUsers + benchOtherUsers
	every := n / benchOtherUsers // every n-th sign-up is the other organization's
	us := make([]nexus.User, n)
	totals = map[users.ListQuery]int{}
	for i := range us {
		u := nexus.User{ID: uuid.Must(uuid.NewV7()).String(), OrganizationID: org.ID, Role: nexus.RoleMember,
			Status: nexus.UserActive, CreatedAt: base.Add(time.Duration(i) * 17 * time.Second)}
		if i%every == every-1 {
			u.OrganizationID = other.ID
		}
		switch p := r.IntN(100); {
		case p < 1:
			u.Role = nexus.RoleAdmin
		case p < 10:
			u.Role = nexus.RoleManager
		case p < 30:
			u.Role = nexus.RoleAnalyst
		}
		if r.IntN(10) == 0 {
			u.Status = nexus.UserInactive
		}
		u.Email = "user" + strconv.Itoa(i) + "@bench.example"
		u.Name = "User " + strconv.Itoa(i)
		us[i] = u
		if u.OrganizationID != org.ID {
			continue
		}
		for _, bc := range listBenchCases {
			if (bc.q.Role == "" || bc.q.Role == u.Role) && (bc.q.Status == "" || bc.q.Status == u.Status) {
				totals[bc.q]++
			}
		}
	}
	if err := db.InsertUsers(ctx, us, benchPasswordHash); err != nil {
		b.Fatalf("InsertUsers: %v", err)
	}
	inserted := time.Since(start)
	if err := db.Analyze(ctx); err != nil {
		b.Fatalf("Analyze: %v", err)
	}
	b.Logf("seeded %d + %d users in %v, analyzed in %v; matches per case: %v", benchOrgUsers, benchOtherUsers,
		inserted.Round(time.Millisecond), (time.Since(start) - inserted).Round(time.Millisecond), totals)
	return org.ID, totals
}
