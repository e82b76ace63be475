package httpapi

import (
	"fmt"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// The benchmarks send requests through the handler without the response checks of the tests.

// BenchmarkLogin measures a successful login through the real handler: validation, the user read, one argon2id
// verification (19 MiB, t=2), a transaction that reads the user again under its row lock and inserts the session
// and the audit entry (one commit), and an ES256 signature. The client comes from the client cache.
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

// BenchmarkRefresh measures one rotation through the real handler: one transaction that reads the session and
// its user under their locks (one statement), and writes the changed columns and the audit entry (one statement on
// PostgreSQL; one commit), and an ES256 signature. The client comes from the client cache. See
// BenchmarkRefreshConcurrent for 64 chains at once.
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

// BenchmarkUsers measures the users operations through the real handler, authentication (a token verification
// and a session lookup) included, on an organization of 1,000 users: the first page of 20, a page of 100 at
// offset 900, a filtered page, one user, one user with both includes (three more queries), and a rename
// (a transaction that locks the organization row).
func BenchmarkUsers(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			e := newEnv(b, storetest.Open(b, d))
			hash, err := auth.HashPassword(adminPassword)
			must(b, err)
			roles := nexus.Roles()
			var last nexus.User
			for i := range 1000 {
				last = e.user(e.orgA.ID, fmt.Sprintf("user%04d@example.com", i), roles[i%len(roles)], hash)
			}
			access, _ := e.tokens(webClient)
			auth := bearer(access)
			for _, c := range []struct{ name, method, path string }{
				{"list_first_page", "GET", "/v2/users"},
				{"list_limit_50", "GET", "/v2/users?limit=50"},
				{"list_offset_900_limit_100", "GET", "/v2/users?offset=900&limit=100"},
				{"list_role_analyst", "GET", "/v2/users?role=analyst&limit=50"},
				{"get", "GET", "/v2/users/" + last.ID},
				{"get_with_includes", "GET", "/v2/users/" + last.ID + "?include_permissions=true&include_activity=true"},
				{"rename", "PATCH", "/v2/users/" + last.ID},
			} {
				b.Run(c.name, func(b *testing.B) {
					var body any
					if c.method == "PATCH" {
						body = map[string]any{"name": "Renamed"}
					}
					b.ReportAllocs()
					for b.Loop() {
						if _, r := exchange(b, e.h, c.method, c.path, body, auth...); r.status != 200 {
							b.Fatalf("%d %s", r.status, r.body)
						}
					}
				})
			}
		})
	}
}
