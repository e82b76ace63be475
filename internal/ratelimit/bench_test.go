package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/testredis"
)

// BenchmarkAllow measures one Allow on each backend, over 1000 keys (IPs) so
// that most requests find their key stored, with a quota they never exhaust.
// "parallel" runs it from GOMAXPROCS goroutines at once.
func BenchmarkAllow(b *testing.B) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "198.51.100." + strconv.Itoa(i)
	}
	q := Quota{Limit: 1_000_000, Window: time.Minute}
	ctx := context.Background()

	for _, backend := range []string{"memory", "redis"} {
		open := func(b *testing.B) *Limiter {
			o := Options{}
			if backend == "redis" {
				o.RedisURL = testredis.Start(b).URL()
				o.Timeout = time.Second // measure Redis, not a loaded machine's timeouts
			}
			l := newLimiter(b, o)
			for _, k := range keys {
				l.Allow(ctx, "ip", q, k)
			}
			return l
		}
		check := func(b *testing.B, l *Limiter) {
			if st := l.Status(); st.Degraded {
				b.Fatalf("degraded during the benchmark: %+v", st)
			}
		}
		b.Run(backend, func(b *testing.B) {
			l := open(b)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Allow(ctx, "ip", q, keys[i%len(keys)])
				i++
			}
			check(b, l)
		})
		b.Run(backend+"/parallel", func(b *testing.B) {
			l := open(b)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					l.Allow(ctx, "ip", q, keys[i%len(keys)])
					i++
				}
			})
			check(b, l)
		})
		if backend == "redis" {
			// A bare round trip, for scale: the other figures in PINGs
			// hold on a loaded machine where nanoseconds do not.
			b.Run("redis/ping", func(b *testing.B) {
				l := open(b)
				b.ReportAllocs()
				for b.Loop() {
					if err := l.rdb.Ping(ctx).Err(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(backend+"/peek", func(b *testing.B) {
			l := open(b)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Peek(ctx, "ip", q, keys[i%len(keys)])
				i++
			}
			check(b, l)
		})
	}
}

// BenchmarkAllowAll measures one step of a request that draws on n budgets
// (ip and auth_ip for a login or refresh; client and login_account), over
// 1000 clients, with quotas never exhausted.
func BenchmarkAllowAll(b *testing.B) {
	q := Quota{Limit: 1_000_000, Window: time.Minute}
	ctx := context.Background()
	names := []string{"ip", "auth_ip", "client", "login_account"}
	checks := make([][]Check, 1000)
	for i := range checks {
		for _, name := range names {
			checks[i] = append(checks[i], Check{name, q, "198.51.100." + strconv.Itoa(i)})
		}
	}
	for _, backend := range []string{"memory", "redis"} {
		for _, n := range []int{1, 2, 4} {
			b.Run(backend+"/"+strconv.Itoa(n), func(b *testing.B) {
				o := Options{}
				if backend == "redis" {
					o.RedisURL = testredis.Start(b).URL()
					o.Timeout = time.Second
				}
				l := newLimiter(b, o)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					l.AllowAll(ctx, checks[i%len(checks)][:n]...)
					i++
				}
				if st := l.Status(); st.Degraded {
					b.Fatalf("degraded during the benchmark: %+v", st)
				}
			})
		}
	}
}
