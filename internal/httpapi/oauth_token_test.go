package httpapi

import (
	"net/http"
	"testing"
)

// TestClientCredentialsFlow: an admin creates a service client; the client obtains a token with its secret by
// HTTP Basic and in the body, and calls an operation its scope allows.
func TestClientCredentialsFlow(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		id, secret := e.serviceClient(admin, "users:list", "users:read")
		r := e.clientToken(id, secret, "")
		if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
			t.Fatalf("token: %d %v %s", r.status, r.header, r.body)
		}
		if got := r.str(t, "scope"); got != "users:list users:read" {
			t.Fatalf("scope %q", got)
		}
		tok := r.str(t, "access_token")
		if got := e.do("GET", "/v2/users", nil, "Authorization", "Bearer "+tok); got.status != http.StatusOK {
			t.Fatalf("list users: %d %s", got.status, got.body)
		}
		post := e.do("POST", "/v2/auth/token", form("grant_type", "client_credentials", "client_id", id, "client_secret", secret, "scope", "users:read"),
			"Content-Type", formType)
		if post.status != http.StatusOK || post.str(t, "scope") != "users:read" {
			t.Fatalf("client_secret_post: %d %s", post.status, post.body)
		}
		narrow := post.str(t, "access_token")
		expectProblem(t, e.do("GET", "/v2/users", nil, "Authorization", "Bearer "+narrow), http.StatusForbidden, "insufficient_permission")
		expectOAuthError(t, e.clientToken(id, secret+"x", ""), http.StatusUnauthorized, "invalid_client", "invalid_client")
		expectOAuthError(t, e.clientToken(id, secret, "users:write"), http.StatusBadRequest, "invalid_scope", "invalid_scope")
	})
}

// TestOAuthErrorMediaType: OAuth errors are application/json (RFC 6749 §5.2) unless Accept names
// application/problem+json itself; the body is the same OAuthError either way. Accept must still admit the
// success answer's application/json, or the request is 406 before anything else.
func TestOAuthErrorMediaType(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		id, secret := e.serviceClient(admin, "users:read")
		for _, c := range []struct {
			accept, want string
			status       int
			code         string
		}{
			{"", "application/json", http.StatusUnauthorized, "invalid_client"},
			{"*/*", "application/json", http.StatusUnauthorized, "invalid_client"},
			{"application/json", "application/json", http.StatusUnauthorized, "invalid_client"},
			{"application/problem+json;q=0, */*", "application/json", http.StatusUnauthorized, "invalid_client"},
			{"application/json, application/problem+json", "application/problem+json", http.StatusUnauthorized, "invalid_client"},
			{"application/json;q=0.5, application/problem+json", "application/problem+json", http.StatusUnauthorized, "invalid_client"},
			{"application/problem+json", "application/problem+json", http.StatusNotAcceptable, "not_acceptable"},
		} {
			r := e.do("POST", "/v2/auth/token", form("grant_type", "client_credentials"),
				"Content-Type", formType, "Authorization", basic(id, secret+"x"), "Accept", c.accept)
			if got := r.header.Get("Content-Type"); got != c.want || r.status != c.status || r.str(t, "code") != c.code || r.str(t, "error") == "" {
				t.Errorf("Accept %q: %d %s %s, want %d %s %s", c.accept, r.status, got, r.body, c.status, c.want, c.code)
			}
		}
	})
}
