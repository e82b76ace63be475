package httpapi

import (
	"context"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/auth"
)

// TestDisabledClientStops proves the bound on the client cache: a client disabled in the database (the only
// place clients are disabled) is refused by logins and refreshes on every node once the client TTL has passed,
// however recently the node used it.
func TestDisabledClientStops(t *testing.T) {
	const ttl = 300 * time.Millisecond
	withTTL := func(o *auth.Options) { o.ClientTTL = ttl }
	forEachDB(t, func(t *testing.T, e *env) {
		_, rt := e.tokens(webClient)
		second := e.instance(withTTL)
		if r := second.refresh(rt, webClient); r.status != 200 {
			t.Fatalf("refresh on the second node: %d %s", r.status, r.body)
		} else {
			rt = r.str(t, "refresh_token")
		}
		must(t, e.dir.SetClientDisabled(context.Background(), webClient, true))
		time.Sleep(ttl)
		for name, n := range map[string]*env{"first node": e, "second node": second} {
			expectProblem(t, n.login(adminEmail, adminPassword, webClient), 401, "invalid_client")
			if r := n.refresh(rt, webClient); r.status != 401 {
				t.Errorf("%s: refresh through a disabled client: %d %s", name, r.status, r.body)
			} else {
				expectProblem(t, r, 401, "invalid_client")
			}
		}
	}, withTTL)
}
