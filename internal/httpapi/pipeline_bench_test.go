package httpapi

import (
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// BenchmarkPipeline measures what the contract's pipeline costs a request, through the real handler on SQLite:
// answers the pipeline gives itself (401, 406, 400 on a parameter, 400 on an event body that its one pass and the
// schema refuse) and one read with the least work behind it (the caller's own record), beside /healthz, which has
// only the transport middleware. Compare ns/op and allocs/op between commits, in one session:
//
//	go test -run '^$' -bench Pipeline -count 6 ./internal/httpapi
func BenchmarkPipeline(b *testing.B) {
	e := newEnv(b, storetest.Open(b, "sqlite"))
	access, _ := e.tokens(webClient)
	auth := bearer(access)
	badEvent := map[string]any{"event_name": "signup", "event_category": "", "properties": map[string]any{"plan": "team"}}
	for _, c := range []struct {
		name         string
		method, path string
		body         any
		header       []string
		status       int
	}{
		{"healthz", "GET", "/healthz", nil, nil, 200},
		{"401_no_token", "GET", "/v2/users", nil, nil, 401},
		{"406_accept", "GET", "/v2/users/" + e.admin.ID, nil, append([]string{"Accept", "text/html"}, auth...), 406},
		{"400_parameter", "GET", "/v2/users?limit=abc", nil, auth, 400},
		{"400_event", "POST", "/v2/analytics/events", badEvent, auth, 400},
		{"200_own_user", "GET", "/v2/users/" + e.admin.ID, nil, auth, 200},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, r := exchange(b, e.h, c.method, c.path, c.body, c.header...); r.status != c.status {
					b.Fatalf("%d %s", r.status, r.body)
				}
			}
		})
	}
}
