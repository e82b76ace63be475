package httpapi

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/ratelimit"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
	"github.com/nexus-cloud/nexus-core/internal/testredis"
)

// BenchmarkRateLimitBackends measures what rate limiting costs a request, and what Redis (NEXUS_REDIS_URL) adds
// to it, for docs/scaling.md: the same requests through the handler on PostgreSQL with the limits off, with the
// in-memory limiter, and with the limiter over a local redis-server (loopback, so a round trip is the floor of
// a real network's). Quotas are never exhausted. The refreshes also report the CPU time of this process and of
// PostgreSQL per refresh and the WAL it writes (testdb's server: full_page_writes off, so no full-page images). An authenticated read (GET /v2/users/{id}) draws on the ip
// and principal budgets, a refresh on ip, auth_ip and client. "parallel" sends from GOMAXPROCS goroutines.
//
//	go test -run '^$' -bench RateLimitBackends -count 3 ./internal/httpapi
func BenchmarkRateLimitBackends(b *testing.B) {
	ctx := context.Background()
	url := testdb.PostgresURL(b)
	db, err := store.Open(ctx, store.Options{URL: url})
	must(b, err)
	b.Cleanup(func() { _ = db.Close() })
	_, err = db.Migrate(ctx)
	must(b, err)
	base := newEnv(b, db)
	redisURL := testredis.Start(b).URL()
	q := ratelimit.Quota{Limit: 1_000_000_000, Window: time.Minute}
	limits := Limits{IP: q, AuthIP: q, Client: q, LoginAccount: q, LoginFailures: q, Principal: q}
	meter := newCPUMeter(ctx, url)
	wal := func(b *testing.B) int64 {
		var n int64
		must(b, db.Pool().QueryRowContext(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").Scan(&n))
		return n
	}
	for _, backend := range []string{"off", "memory", "redis"} {
		e := base
		switch backend {
		case "memory":
			e = withLimits(b, base, limits, "")
		case "redis":
			e = withLimits(b, base, limits, redisURL)
		}
		access, _ := e.tokens(webClient)
		path := "/v2/users/" + e.admin.ID
		read := func(b *testing.B) {
			_, r := exchange(b, e.h, "GET", path, nil, "Authorization", "Bearer "+access)
			if r.status != http.StatusOK {
				b.Fatalf("%s: %d %s", path, r.status, r.body)
			}
		}
		b.Run(backend+"/read", func(b *testing.B) {
			for b.Loop() {
				read(b)
			}
		})
		b.Run(backend+"/read/parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					read(b)
				}
			})
		})
		b.Run(backend+"/refresh", func(b *testing.B) {
			_, refresh := e.tokens(webClient)
			c0, w0 := meter.sample(), wal(b)
			for b.Loop() {
				_, r := exchange(b, e.h, "POST", "/v2/auth/refresh", map[string]any{"refresh_token": refresh, "client_id": webClient})
				if r.status != http.StatusOK {
					b.Fatalf("refresh: %d %s", r.status, r.body)
				}
				refresh = r.str(b, "refresh_token")
			}
			c1, w1 := meter.sample(), wal(b)
			b.ReportMetric(float64((c1.self-c0.self).Microseconds())/float64(b.N), "go_cpu_us/op")
			if c0.ok && c1.ok {
				b.ReportMetric(float64((c1.pg-c0.pg).Microseconds())/float64(b.N), "pg_cpu_us/op")
			}
			b.ReportMetric(float64(w1-w0)/float64(b.N), "wal_B/op")
		})
	}
}
