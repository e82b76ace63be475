package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const formType = "application/x-www-form-urlencoded"

// form encodes name/value pairs as a form body, in the order given (a name may repeat).
func form(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]) + "=" + url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

// basic returns an HTTP Basic Authorization value for a client as RFC 6749 §2.3.1 spells it.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// serviceClient creates a service client in the organization of the admin whose access token is given, with the
// scopes given, and returns its client_id and secret.
func (e *env) serviceClient(adminAccess string, scopes ...string) (id, secret string) {
	e.t.Helper()
	if scopes == nil {
		scopes = []string{}
	}
	r := e.do("POST", "/v2/clients", map[string]any{"name": "svc", "scopes": scopes}, "Authorization", "Bearer "+adminAccess)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create client: %d %s", r.status, r.body)
	}
	m := r.obj(e.t)
	return m["client"].(map[string]any)["client_id"].(string), m["client_secret"].(string)
}

// clientToken asks the token endpoint for a client credentials token with HTTP Basic; scope "" asks for all.
func (e *env) clientToken(id, secret, scope string) resp {
	e.t.Helper()
	kv := []string{"grant_type", "client_credentials"}
	if scope != "" {
		kv = append(kv, "scope", scope)
	}
	return e.do("POST", "/v2/auth/token", form(kv...), "Content-Type", formType, "Authorization", basic(id, secret))
}

// serviceToken returns an access token of the client, failing the test otherwise.
func (e *env) serviceToken(id, secret, scope string) string {
	e.t.Helper()
	r := e.clientToken(id, secret, scope)
	if r.status != http.StatusOK {
		e.t.Fatalf("client credentials: %d %s", r.status, r.body)
	}
	return r.str(e.t, "access_token")
}

// expectOAuthError fails unless r is an OAuth error of the given status, RFC 6749 error and problem code.
func expectOAuthError(t testing.TB, r resp, status int, oauthErr, code string) {
	t.Helper()
	if r.status != status || r.str(t, "error") != oauthErr || r.str(t, "code") != code ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || r.str(t, "error_description") == "" {
		t.Fatalf("got %d %s %s, want %d error %s code %s", r.status, r.header.Get("Content-Type"), r.body, status, oauthErr, code)
	}
}
