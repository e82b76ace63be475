package httpapi

import (
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// BenchmarkClientCredentials measures one client credentials grant through the real handler: the form's
// checks, client authentication (one read of the client with its secrets' hashes, one HMAC, two constant-time
// comparisons), one transaction that holds the client's row, reads the client and the secret again and inserts
// the token's service session and the audit entry, and an ES256 signature. Compare with BenchmarkRefresh, the
// other grant that writes one session row per token.
func BenchmarkClientCredentials(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			e := newEnv(b, storetest.Open(b, d))
			admin, _ := e.tokens(webClient)
			id, secret := e.serviceClient(admin, "users:read")
			body := form("grant_type", "client_credentials")
			b.ReportAllocs()
			for b.Loop() {
				_, r := exchange(b, e.h, "POST", "/v2/auth/token", body, "Content-Type", formType, "Authorization", basic(id, secret))
				if r.status != 200 {
					b.Fatalf("%d %s", r.status, r.body)
				}
			}
		})
	}
}

// BenchmarkBearerKinds compares an authenticated read (GET /v2/users/{id}) with a user's token and with a
// service client's: both are verified once and then come from the auth caches, so they should cost the same.
func BenchmarkBearerKinds(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			e := newEnv(b, storetest.Open(b, d))
			admin, _ := e.tokens(webClient)
			id, secret := e.serviceClient(admin, "users:read")
			service := e.serviceToken(id, secret, "")
			path := "/v2/users/" + e.admin.ID
			for name, tok := range map[string]string{"user": admin, "service": service} {
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, r := exchange(b, e.h, "GET", path, nil, "Authorization", "Bearer "+tok); r.status != 200 {
							b.Fatalf("%d %s", r.status, r.body)
						}
					}
				})
			}
		})
	}
}
