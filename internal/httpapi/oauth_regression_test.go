package httpapi

import (
	"net/http"
	"testing"
)

// TestOAuthUnknownParametersIgnored: the OAuth endpoints ignore parameters they do not know, as their contract
// and RFC 6749 §3.2 say ("MUST ignore unrecognized request parameters"), even when one is given twice or is not
// UTF-8; only their own parameters must be given once (found by Schemathesis: a schema-valid body with a
// repeated extra parameter was 400).
func TestOAuthUnknownParametersIgnored(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		id, secret := e.serviceClient(admin, "users:read", "tokens:introspect")
		extra := "&x=1&x=2&%FF=3&y=%FE&=&="
		token := e.do("POST", "/v2/auth/token", form("grant_type", "client_credentials")+extra,
			"Content-Type", formType, "Authorization", basic(id, secret))
		if token.status != http.StatusOK || token.str(t, "scope") != "users:read tokens:introspect" {
			t.Fatalf("token: %d %s", token.status, token.body)
		}
		access := token.str(t, "access_token")
		in := e.do("POST", "/v2/auth/introspect", form("token", access)+extra, "Content-Type", formType, "Authorization", basic(id, secret))
		if in.status != http.StatusOK || in.obj(t)["active"] != true {
			t.Fatalf("introspect: %d %s", in.status, in.body)
		}
		if r := e.do("POST", "/v2/auth/revoke", form("token", access)+extra, "Content-Type", formType, "Authorization", basic(id, secret)); r.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		// A parameter of the endpoint's own is still refused when given twice or not in UTF-8.
		r := e.do("POST", "/v2/auth/token", form("grant_type", "client_credentials", "scope", "users:read", "scope", "users:read"),
			"Content-Type", formType, "Authorization", basic(id, secret))
		expectOAuthError(t, r, http.StatusBadRequest, "invalid_request", "validation_failed")
		if !hasFieldError(t, r, "/scope", "must be given at most once") {
			t.Fatalf("repeated scope: %s", r.body)
		}
		r = e.do("POST", "/v2/auth/introspect", "token=%FF", "Content-Type", formType, "Authorization", basic(id, secret))
		expectOAuthError(t, r, http.StatusBadRequest, "invalid_request", "validation_failed")
	})
}

// hasFieldError reports whether the problem in r names the body pointer with the detail.
func hasFieldError(t testing.TB, r resp, pointer, detail string) bool {
	t.Helper()
	errs, _ := r.obj(t)["errors"].([]any)
	for _, e := range errs {
		if m, ok := e.(map[string]any); ok && m["pointer"] == pointer && m["detail"] == detail {
			return true
		}
	}
	return false
}

// TestClientNameControlCharacters: a service client's name holds no control characters, on every database (found
// by Schemathesis: a name with NUL was stored on SQLite and was 400 without a pointer on PostgreSQL, which cannot
// store it), as for a user's name.
func TestClientNameControlCharacters(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		id, _ := e.serviceClient(admin, "users:read")
		for _, name := range []string{"a\x00b", "tab\there", "\u0085"} {
			r := e.do("POST", "/v2/clients", map[string]any{"name": name, "scopes": []string{}}, "Authorization", "Bearer "+admin)
			expectProblem(t, r, http.StatusBadRequest, "validation_failed")
			if !hasFieldError(t, r, "/name", "must not be blank or contain control characters") {
				t.Fatalf("create %q: %s", name, r.body)
			}
			r = e.do("PATCH", "/v2/clients/"+id, map[string]any{"name": name}, "Authorization", "Bearer "+admin)
			expectProblem(t, r, http.StatusBadRequest, "validation_failed")
			if !hasFieldError(t, r, "/name", "must not be blank or contain control characters") {
				t.Fatalf("update %q: %s", name, r.body)
			}
		}
		if r := e.do("PATCH", "/v2/clients/"+id, map[string]any{"name": " CRM sync \u00e9 "}, "Authorization", "Bearer "+admin); r.status != http.StatusOK || r.str(t, "name") != "CRM sync \u00e9" {
			t.Fatalf("a plain name: %d %s", r.status, r.body)
		}
	})
}
