package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// lcPost sends a POST with exactly the header given (several values of a field stay several fields) through the
// handler, and checks the answer against openapi.yaml.
func (e *env) lcPost(path string, body []byte, header http.Header) resp {
	e.t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(string(body)))
	req.Header = header.Clone()
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	checkResponse(e.t, req, r)
	return r
}

// lcFields returns the JSON Pointers (or header names) an error's errors name, sorted.
func lcFields(t testing.TB, r resp) []string {
	t.Helper()
	var out []string
	list, _ := r.obj(t)["errors"].([]any)
	for _, f := range list {
		m := f.(map[string]any)
		switch {
		case m["pointer"] != nil:
			out = append(out, m["pointer"].(string))
		case m["header"] != nil:
			out = append(out, "header:"+m["header"].(string))
		default:
			out = append(out, "?")
		}
	}
	sort.Strings(out)
	return out
}

// lcComparable is what two answers of invalid_client must share: the status, every header field but the request
// id and the rate limit's, and the body but its request_id.
func lcComparable(t testing.TB, r resp) (int, http.Header, string) {
	t.Helper()
	h := r.header.Clone()
	for name := range h {
		if name == "X-Request-Id" || strings.HasPrefix(name, "Ratelimit") || strings.HasPrefix(name, "RateLimit") {
			delete(h, name)
		}
	}
	return r.status, h, withoutRequestID(t, r)
}

// TestInvalidClientIndistinguishable: an unknown client, a wrong secret, a disabled client, a revoked secret, an
// expired secret and a login client presenting a secret all get the same answer at every OAuth endpoint, by
// HTTP Basic and in the body: same status and header fields, the same body but its request_id.
func TestInvalidClientIndistinguishable(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		id, s := e.serviceClient(admin, "users:list", "tokens:introspect")
		dis, disSecret := e.serviceClient(admin, "users:list")
		e.lcPatch(admin, dis, map[string]any{"status": "disabled"})
		rev, revSecret := e.serviceClient(admin, "users:list")
		var revSecretID string
		for sid := range e.lcSecrets(admin, rev) {
			revSecretID = sid
		}
		e.lcNewSecret(admin, rev, map[string]any{})
		if r := e.do("DELETE", "/v2/clients/"+rev+"/secrets/"+revSecretID, nil, bearer(admin)...); r.status != http.StatusNoContent {
			t.Fatalf("revoke secret: %d %s", r.status, r.body)
		}
		exp, _ := e.serviceClient(admin, "users:list") // its first secret lives on; the one presented expires
		_, shortSecret := e.lcNewSecret(admin, exp, map[string]any{"expires_at": e.clock.Now().Add(time.Minute).Format(time.RFC3339)})
		e.clock.Advance(time.Minute)

		cases := []struct{ name, id, secret string }{
			{"unknown client", "nxc_" + strings.Repeat("a", 26), s},
			{"unknown client, no secret", "nxc_" + strings.Repeat("b", 26), ""},
			{"wrong secret", id, s[:len(s)-1] + "x"},
			{"no secret", id, ""},
			{"disabled client", dis, disSecret},
			{"revoked secret", rev, revSecret},
			{"expired secret", exp, shortSecret},
			{"login client with a secret", webClient, s},
			{"disabled login client", offClient, ""},
		}
		tok := e.serviceToken(id, s, "")
		for _, ep := range []struct{ path, params string }{
			{"/v2/auth/token", form("grant_type", "client_credentials")},
			{"/v2/auth/revoke", form("token", tok)},
			{"/v2/auth/introspect", form("token", tok)},
		} {
			t.Run(ep.path, func(t *testing.T) {
				var want struct {
					status int
					header http.Header
					body   string
					name   string
				}
				for i, c := range cases {
					for _, how := range []string{"basic", "post"} {
						h := http.Header{"Content-Type": {formType}}
						body := ep.params
						if how == "basic" {
							h.Set("Authorization", basic(c.id, c.secret))
						} else {
							body += "&" + form("client_id", c.id)
							if c.secret != "" {
								body += "&" + form("client_secret", c.secret)
							}
						}
						r := e.lcPost(ep.path, []byte(body), h)
						expectOAuthError(t, r, http.StatusUnauthorized, "invalid_client", "invalid_client")
						if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Basic") {
							t.Errorf("%s %s: WWW-Authenticate %q", c.name, how, got)
						}
						status, header, b := lcComparable(t, r)
						if i == 0 && how == "basic" {
							want.status, want.header, want.body, want.name = status, header, b, c.name+" "+how
							continue
						}
						if status != want.status || b != want.body {
							t.Errorf("%s %s answers %d %s; %s answers %d %s", c.name, how, status, b, want.name, want.status, want.body)
						}
						if d := cmp.Diff(want.header, header); d != "" {
							t.Errorf("%s %s: header fields differ from %s (-%s +%s):\n%s", c.name, how, want.name, want.name, c.name, d)
						}
					}
				}
			})
		}
		// And the right secret still works: the refusals above are the credentials'.
		e.serviceToken(id, s, "")
	})
}

// BenchmarkInvalidClient compares client authentication at the token endpoint through the handler (SQLite): an
// unknown client_id and a wrong secret (both invalid_client), and the right secret, which then asks for a scope
// that does not exist (invalid_scope, answered before any write), so that the three differ only in the
// authentication. The response must not tell the first two apart, nor their times.
func BenchmarkInvalidClient(b *testing.B) {
	e := newEnv(b, storetest.Open(b, "sqlite"))
	admin, _ := e.tokens(webClient)
	id, s := e.serviceClient(admin, "users:list")
	e.lcNewSecret(admin, id, map[string]any{}) // two secrets, as during a rotation
	for _, c := range []struct {
		name, id, secret string
		status           int
	}{
		{"unknown", "nxc_" + strings.Repeat("a", 26), s, http.StatusUnauthorized},
		{"wrong-secret", id, s[:len(s)-1] + "x", http.StatusUnauthorized},
		{"right-secret", id, s, http.StatusBadRequest},
	} {
		b.Run(c.name, func(b *testing.B) {
			body := form("grant_type", "client_credentials", "scope", "no:such")
			auth := basic(c.id, c.secret)
			b.ReportAllocs()
			for b.Loop() {
				if _, r := exchange(b, e.h, "POST", "/v2/auth/token", body, "Content-Type", formType, "Authorization", auth); r.status != c.status {
					b.Fatalf("%d %s", r.status, r.body)
				}
			}
		})
	}
}

// TestOAuthBadInput sends malformed requests to the token endpoint (and the form rules to the other two): each
// is a 4xx OAuth error naming what is wrong, never a 5xx.
func TestOAuthBadInput(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		id, s := e.serviceClient(admin, "users:list", "users:read")
		_, refresh := e.tokens(webClient)
		b64 := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
		cc := form("grant_type", "client_credentials")
		type tc struct {
			name    string
			path    string // "" for the token endpoint
			body    string
			header  http.Header // Content-Type defaults to the form type; nil Authorization: none
			gzipped bool
			status  int
			err     string // the RFC 6749 error
			code    string
			fields  []string // nil: not checked
		}
		pad := func(n int) string { // a token request of exactly n bytes (unknown parameters are ignored)
			base := cc + "&" + form("client_id", id, "client_secret", s) + "&pad="
			return base + strings.Repeat("p", n-len(base))
		}
		cases := []tc{
			{name: "Basic not base64", body: cc, header: http.Header{"Authorization": {"Basic !!!not-base64"}},
				status: 401, err: "invalid_client", code: "invalid_client"},
			{name: "Basic without a colon", body: cc, header: http.Header{"Authorization": {b64(id + s)}},
				status: 401, err: "invalid_client", code: "invalid_client"},
			{name: "Basic with bad percent-encoding", body: cc, header: http.Header{"Authorization": {b64(id + ":%zz" + s)}},
				status: 401, err: "invalid_client", code: "invalid_client"},
			{name: "Basic with an empty client_id", body: cc, header: http.Header{"Authorization": {b64(":" + s)}},
				status: 401, err: "invalid_client", code: "invalid_client"},
			{name: "Basic scheme alone", body: cc, header: http.Header{"Authorization": {"Basic"}},
				status: 401, err: "invalid_client", code: "invalid_client"},
			{name: "Bearer scheme", body: cc, header: http.Header{"Authorization": {"Bearer " + admin}},
				status: 401, err: "invalid_client", code: "invalid_client"},
			{name: "two Authorization headers", body: cc, header: http.Header{"Authorization": {basic(id, s), basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"header:Authorization"}},
			{name: "Basic and client_secret in the body", body: cc + "&" + form("client_secret", s),
				header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/client_secret"}},
			{name: "client_id not the Basic one", body: cc + "&" + form("client_id", webClient),
				header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/client_id"}},
			{name: "no client authentication", body: cc,
				status: 401, err: "invalid_client", code: "invalid_client"},
			{name: "grant_type twice", body: cc + "&" + cc + "&" + form("client_id", id, "client_secret", s),
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/grant_type"}},
			{name: "grant_type twice, differing", body: cc + "&grant_type=refresh_token&" + form("client_id", id, "client_secret", s),
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/grant_type"}},
			{name: "client_secret twice", body: cc + "&" + form("client_id", id, "client_secret", s, "client_secret", s),
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/client_secret"}},
			{name: "unknown grant_type", body: form("grant_type", "password", "client_id", id, "client_secret", s),
				status: 400, err: "unsupported_grant_type", code: "unsupported_grant_type"},
			{name: "missing grant_type", body: form("client_id", id, "client_secret", s),
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/grant_type"}},
			{name: "empty grant_type", body: form("grant_type", "", "client_id", id, "client_secret", s),
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/grant_type"}},
			{name: "login client asks client_credentials", body: cc + "&" + form("client_id", webClient),
				status: 400, err: "unauthorized_client", code: "unauthorized_client"},
			{name: "service client asks refresh_token", body: form("grant_type", "refresh_token", "refresh_token", refresh),
				header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "unauthorized_client", code: "unauthorized_client"},
			{name: "refresh_token grant without a refresh_token", body: form("grant_type", "refresh_token", "client_id", webClient),
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/refresh_token"}},
			{name: "refresh_token grant with a garbage token", body: form("grant_type", "refresh_token", "client_id", webClient, "refresh_token", "nxr_junk"),
				status: 400, err: "invalid_grant", code: "invalid_grant"},
			{name: "refresh_token of another login client", body: form("grant_type", "refresh_token", "client_id", orgAClient, "refresh_token", refresh),
				status: 400, err: "invalid_grant", code: "invalid_grant"},
			{name: "unknown scope", body: cc + "&" + form("scope", "users:list no:such"),
				header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_scope", code: "invalid_scope"},
			{name: "scope with two spaces", body: cc + "&" + form("scope", "users:list  users:read"),
				header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_scope", code: "invalid_scope"},
			{name: "scope with a leading space", body: cc + "&" + form("scope", " users:list"),
				header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_scope", code: "invalid_scope"},
			{name: "scope too long", body: cc + "&" + form("scope", strings.Repeat("users:list ", 50)+"users:list"),
				header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/scope"}},
			{name: "body over 8192 bytes", body: pad(8193),
				status: 413, err: "invalid_request", code: "payload_too_large"},
			{name: "gzip body over 8192 bytes once decompressed", body: pad(8193), gzipped: true,
				status: 413, err: "invalid_request", code: "payload_too_large"},
			{name: "huge gzip body", body: pad(1 << 20), gzipped: true,
				status: 413, err: "invalid_request", code: "payload_too_large"},
			{name: "JSON body", body: `{"grant_type":"client_credentials"}`, header: http.Header{"Content-Type": {"application/json"}, "Authorization": {basic(id, s)}},
				status: 415, err: "invalid_request", code: "unsupported_media_type"},
			{name: "no Content-Type", body: cc, header: http.Header{"Content-Type": nil, "Authorization": {basic(id, s)}},
				status: 415, err: "invalid_request", code: "unsupported_media_type"},
			{name: "charset latin-1", body: cc, header: http.Header{"Content-Type": {formType + "; charset=iso-8859-1"}, "Authorization": {basic(id, s)}},
				status: 415, err: "invalid_request", code: "unsupported_media_type"},
			{name: "two Content-Types", body: cc, header: http.Header{"Content-Type": {formType, formType}, "Authorization": {basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"header:Content-Type"}},
			{name: "value not UTF-8", body: cc + "&scope=users%3Alist%FF", header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/scope"}},
			{name: "raw byte not UTF-8", body: cc + "&scope=\xff", header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/scope"}},
			{name: "bad percent-encoding in the body", body: cc + "&scope=%zz", header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{""}},
			// An empty body is a missing body, which the contract requires (the pointer "" is the body).
			{name: "empty body", body: "", header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{""}},
			{name: "revoke: token twice", path: "/v2/auth/revoke", body: form("token", "a", "token", "b"),
				header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/token"}},
			{name: "revoke: no token", path: "/v2/auth/revoke", body: form("token_type_hint", "access_token"),
				header: http.Header{"Authorization": {basic(id, s)}},
				status: 400, err: "invalid_request", code: "validation_failed", fields: []string{"/token"}},
			{name: "revoke: malformed Basic", path: "/v2/auth/revoke", body: form("token", "a"),
				header: http.Header{"Authorization": {"Basic %%%"}},
				status: 401, err: "invalid_client", code: "invalid_client"},
			{name: "introspect: JSON body", path: "/v2/auth/introspect", body: `{"token":"a"}`,
				header: http.Header{"Content-Type": {"application/json"}, "Authorization": {basic(id, s)}},
				status: 415, err: "invalid_request", code: "unsupported_media_type"},
			{name: "introspect: body over 8192 bytes", path: "/v2/auth/introspect", body: form("token", strings.Repeat("t", 8200)),
				header: http.Header{"Authorization": {basic(id, s)}},
				status: 413, err: "invalid_request", code: "payload_too_large"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := http.Header{"Content-Type": {formType}}
				for k, v := range c.header {
					if v == nil {
						h.Del(k)
					} else {
						h[k] = v
					}
				}
				body := []byte(c.body)
				if c.gzipped {
					body = gzipBytes(t, body)
					h.Set("Content-Encoding", "gzip")
				}
				path := c.path
				if path == "" {
					path = "/v2/auth/token"
				}
				r := e.lcPost(path, body, h)
				expectOAuthError(t, r, c.status, c.err, c.code)
				if c.fields != nil {
					if got := lcFields(t, r); !slices.Equal(got, c.fields) {
						t.Fatalf("errors name %q, want %q: %s", got, c.fields, r.body)
					}
				}
			})
		}
		// A parameter whose name is not UTF-8 is no parameter of the endpoint: ignored, as RFC 6749 §3.2 says.
		if r := e.lcPost("/v2/auth/token", []byte(cc+"&%FF=1&%FF=2"), http.Header{"Content-Type": {formType}, "Authorization": {basic(id, s)}}); r.status != http.StatusOK {
			t.Fatalf("an unknown parameter named in bytes that are not UTF-8: %d %s", r.status, r.body)
		}
		// The size limit is 8192 bytes: a body of exactly that is served.
		if r := e.lcPost("/v2/auth/token", []byte(pad(8192)), http.Header{"Content-Type": {formType}}); r.status != http.StatusOK {
			t.Fatalf("a body of 8192 bytes: %d %s", r.status, r.body)
		}
		if r := e.lcPost("/v2/auth/token", gzipBytes(t, []byte(pad(8192))), http.Header{"Content-Type": {formType}, "Content-Encoding": {"gzip"}}); r.status != http.StatusOK {
			t.Fatalf("a gzip body of 8192 bytes: %d %s", r.status, r.body)
		}
		// charset=utf-8, in any case, is the form type.
		if r := e.lcPost("/v2/auth/token", []byte(cc), http.Header{"Content-Type": {formType + "; charset=UTF-8"}, "Authorization": {basic(id, s)}}); r.status != http.StatusOK {
			t.Fatalf("charset=UTF-8: %d %s", r.status, r.body)
		}
	})
}

// TestOAuthRefreshGrant: a login client refreshes at the token endpoint as at /auth/refresh, public (client_id
// in the body) or by HTTP Basic with an empty password: the refresh token rotates, the new one works at both
// endpoints, the old one is refused after the grace period (and that revokes the session).
func TestOAuthRefreshGrant(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		grant := func(rt string, basicAuth bool) resp {
			if basicAuth {
				return e.do("POST", "/v2/auth/token", form("grant_type", "refresh_token", "refresh_token", rt),
					"Content-Type", formType, "Authorization", basic(webClient, ""))
			}
			return e.do("POST", "/v2/auth/token", form("grant_type", "refresh_token", "refresh_token", rt, "client_id", webClient),
				"Content-Type", formType)
		}
		for _, basicAuth := range []bool{false, true} {
			_, rt0 := e.tokens(webClient)
			r := grant(rt0, basicAuth)
			if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
				t.Fatalf("basic %v: refresh grant: %d %v %s", basicAuth, r.status, r.header, r.body)
			}
			m := r.obj(t)
			rt1, access := m["refresh_token"].(string), m["access_token"].(string)
			if rt1 == "" || rt1 == rt0 || m["token_type"] != "Bearer" || m["expires_in"] != float64(900) || m["refresh_expires_in"] == nil || m["scope"] != nil {
				t.Fatalf("basic %v: refresh grant answer %s", basicAuth, r.body)
			}
			if u := e.lcUsers(access); u.status != http.StatusOK {
				t.Fatalf("basic %v: the new access token: %d %s", basicAuth, u.status, u.body)
			}
			if c := lcClaimsOf(t, access); c["sub"] != e.admin.ID || c["role"] != "admin" || c["client_id"] != webClient {
				t.Fatalf("basic %v: claims %v", basicAuth, c)
			}
			// The new refresh token rotates again at /auth/refresh.
			r2 := e.refresh(rt1, webClient)
			if r2.status != http.StatusOK {
				t.Fatalf("basic %v: /auth/refresh with the rotated token: %d %s", basicAuth, r2.status, r2.body)
			}
			rt2 := r2.str(t, "refresh_token")
			// After the grace period, the old token is reuse: refused, and the session is revoked.
			e.clock.Advance(11 * time.Second)
			expectOAuthError(t, grant(rt0, basicAuth), http.StatusBadRequest, "invalid_grant", "refresh_token_reused")
			expectOAuthError(t, grant(rt2, basicAuth), http.StatusBadRequest, "invalid_grant", "invalid_grant")
		}
		// A login client with a secret is no login client: invalid_client.
		expectOAuthError(t, e.do("POST", "/v2/auth/token", form("grant_type", "refresh_token", "refresh_token", "x"),
			"Content-Type", formType, "Authorization", basic(webClient, "secret")), http.StatusUnauthorized, "invalid_client", "invalid_client")
	})
}
