package httpapi

import (
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// The benchmarks send requests through the handler without the response checks of the tests.

// BenchmarkLogin measures a successful login through the real handler: validation, one argon2id verification
// (19 MiB, t=2), a session insert, an audit insert and an ES256 signature.
func BenchmarkLogin(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			e := newEnv(b, storetest.Open(b, d))
			body := map[string]any{"email": adminEmail, "password": adminPassword, "client_id": webClient}
			b.ReportAllocs()
			for b.Loop() {
				if _, r := exchange(b, e.h, "POST", "/v2/auth/login", body); r.status != 200 {
					b.Fatalf("%d %s", r.status, r.body)
				}
			}
		})
	}
}

// BenchmarkRefresh measures one rotation through the real handler: a locked read-modify-write of the session,
// a user lookup, an audit insert and an ES256 signature.
func BenchmarkRefresh(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			e := newEnv(b, storetest.Open(b, d))
			_, rt := e.tokens(webClient)
			b.ReportAllocs()
			for b.Loop() {
				_, r := exchange(b, e.h, "POST", "/v2/auth/refresh", map[string]any{"refresh_token": rt, "client_id": webClient})
				if r.status != 200 {
					b.Fatalf("%d %s", r.status, r.body)
				}
				rt = r.str(b, "refresh_token")
			}
		})
	}
}

// BenchmarkLoginFailure compares the two invalid_credentials paths: an unknown email (one argon2id verification
// against a dummy hash) and a wrong password. Their times should match: the response must not tell them apart.
func BenchmarkLoginFailure(b *testing.B) {
	e := newEnv(b, storetest.Open(b, "sqlite"))
	for name, email := range map[string]string{"unknown_email": "nobody@example.com", "wrong_password": adminEmail} {
		b.Run(name, func(b *testing.B) {
			body := map[string]any{"email": email, "password": "not the password", "client_id": webClient}
			for b.Loop() {
				if _, r := exchange(b, e.h, "POST", "/v2/auth/login", body); r.status != 401 {
					b.Fatalf("%d %s", r.status, r.body)
				}
			}
		})
	}
}
