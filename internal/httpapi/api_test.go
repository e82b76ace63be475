package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

func TestTransport(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	big := `{"email":"a@b.co","password":"` + strings.Repeat("x", 70<<10) + `","client_id":"a"}`

	t.Run("unknown route", func(t *testing.T) {
		expectProblem(t, e.do("GET", "/v2/nope", nil), 404, "not_found")
		expectProblem(t, e.do("GET", "/", nil), 404, "not_found")
	})
	t.Run("wrong method", func(t *testing.T) {
		for _, m := range []string{"GET", "PUT", "DELETE", "PATCH"} {
			r := e.do(m, "/v2/auth/login", nil)
			expectProblem(t, r, 405, "method_not_allowed")
			if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") {
				t.Errorf("%s: Allow = %q", m, allow)
			}
		}
		r := e.do("POST", "/v2/.well-known/jwks.json", nil)
		expectProblem(t, r, 405, "method_not_allowed")
		if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") {
			t.Errorf("Allow = %q", allow)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		r := e.do("POST", "/v2/auth/login", big)
		expectProblem(t, r, 413, "payload_too_large")
	})
	t.Run("chunked body too large", func(t *testing.T) {
		// No Content-Length: the limit is enforced while reading.
		req := httptest.NewRequest("POST", "/v2/auth/login", io.MultiReader(strings.NewReader(big)))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		checkResponse(t, req, r)
		expectProblem(t, r, 413, "payload_too_large")
	})
	t.Run("media type", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "application/jsonx", "garbage;;"} {
			r := e.do("POST", "/v2/auth/login", `{"email":"a@b.co"}`, "Content-Type", ct)
			expectProblem(t, r, 415, "unsupported_media_type")
		}
		r := e.do("POST", "/v2/auth/login", `{}`, "Content-Type", "application/json; charset=utf-8")
		expectProblem(t, r, 400, "validation_failed")
	})
	t.Run("content negotiation", func(t *testing.T) {
		for accept, want := range map[string]int{
			"application/json": 200, "application/*": 200, "*/*": 200, "text/html, application/json;q=0.1": 200,
			"text/html": 406, "application/xml": 406, "application/json;q=0": 406, "*/*;q=0": 406,
		} {
			r := e.do("GET", "/v2/.well-known/jwks.json", nil, "Accept", accept)
			if r.status != want {
				t.Errorf("Accept %q: %d, want %d", accept, r.status, want)
			}
			if want == 406 {
				expectProblem(t, r, 406, "not_acceptable")
			}
		}
		expectProblem(t, e.do("GET", "/v2/openapi.json", nil, "Accept", "application/yaml"), 406, "not_acceptable")
	})
	t.Run("missing body", func(t *testing.T) {
		r := e.do("POST", "/v2/auth/login", nil)
		expectProblem(t, r, 400, "validation_failed")
	})
	t.Run("request id", func(t *testing.T) {
		r := e.do("GET", "/v2/.well-known/jwks.json", nil, "X-Request-Id", "client-id.1:2_3")
		if got := r.header.Get("X-Request-Id"); got != "client-id.1:2_3" {
			t.Errorf("sane request id not echoed: %q", got)
		}
		for _, bad := range []string{"has space", strings.Repeat("a", 129), "<script>", "a\u00e9"} {
			r := e.do("GET", "/v2/.well-known/jwks.json", nil, "X-Request-Id", bad)
			if got := r.header.Get("X-Request-Id"); got == bad || len(got) != 26 {
				t.Errorf("insane request id %q: got %q", bad, got)
			}
		}
		r = e.do("POST", "/v2/auth/login", map[string]any{}, "X-Request-Id", "trace-42")
		if r.str(t, "request_id") != "trace-42" {
			t.Errorf("problem request_id = %q", r.str(t, "request_id"))
		}
	})
	t.Run("security headers", func(t *testing.T) {
		r := e.do("POST", "/v2/auth/login", map[string]any{})
		for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
			if got := r.header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		if r.header.Get("Strict-Transport-Security") != "" {
			t.Errorf("HSTS sent over plain HTTP")
		}
	})
	t.Run("health", func(t *testing.T) {
		if r := e.do("GET", "/healthz", nil); r.status != 200 {
			t.Errorf("healthz: %d", r.status)
		}
		if r := e.do("GET", "/readyz", nil); r.status != 200 {
			t.Errorf("readyz: %d %s", r.status, r.body)
		}
	})
}

func TestHTTPSAndProxies(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	build := func(o Options) http.Handler {
		o.Auth, o.Ready = e.svc, e.db.Ping
		_, h, err := New(o)
		must(t, err)
		return h
	}
	loginFrom := func(h http.Handler, peer string, header ...string) {
		e.clock.Advance(time.Second) // the audit log is ordered by time
		req := httptest.NewRequest("POST", "/v2/auth/login", strings.NewReader(
			`{"email":"nobody@example.com","password":"x","client_id":"`+webClient+`"}`))
		req.RemoteAddr = peer
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 401 {
			t.Fatalf("login: %d %s", rec.Code, rec.Body)
		}
	}
	lastIP := func() string {
		events, err := e.audit.AuthEvents(context.Background())
		must(t, err)
		return events[len(events)-1].SocketIP
	}

	direct := build(Options{HTTPS: true})
	r := send(t, direct, "GET", "/v2/.well-known/jwks.json", nil)
	if got := r.header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Errorf("HSTS in HTTPS mode = %q", got)
	}
	// Without trusted proxies, forwarding headers from any peer, even loopback or private, are ignored.
	for _, peer := range []string{"127.0.0.1:5000", "10.1.2.3:5000", "198.51.100.9:5000"} {
		loginFrom(direct, peer, "X-Forwarded-For", "203.0.113.99", "X-Real-IP", "203.0.113.98")
		if got, want := lastIP(), strings.Split(peer, ":")[0]; got != want {
			t.Errorf("peer %s: audited IP %s, want the socket peer", peer, got)
		}
	}
	// With a trusted proxy range, X-Forwarded-For is believed only from inside it.
	proxied := build(Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	loginFrom(proxied, "10.1.2.3:5000", "X-Forwarded-For", "203.0.113.99")
	if got := lastIP(); got != "203.0.113.99" {
		t.Errorf("behind a trusted proxy: audited IP %s", got)
	}
	loginFrom(proxied, "192.168.1.1:5000", "X-Forwarded-For", "203.0.113.99")
	if got := lastIP(); got != "192.168.1.1" {
		t.Errorf("untrusted peer: audited IP %s", got)
	}
}

func TestDatabaseGoneGivesGenericErrors(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		access, _ := e.tokens(webClient)
		must(t, e.db.Close())
		for name, r := range map[string]resp{
			"login":  e.login(adminEmail, adminPassword, webClient),
			"logout": e.logout(access),
		} {
			if r.status < 500 {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
			// Without the request id: 26 random letters and digits spell "pgx" or "sql" now and then.
			body := strings.ToLower(strings.ReplaceAll(string(r.body), r.header.Get("X-Request-Id"), ""))
			for _, leak := range []string{"sql", "database", "gorm", "pgx", "sqlite", ".go", "closed"} {
				if strings.Contains(body, leak) {
					t.Errorf("%s: 5xx body mentions %q: %s", name, leak, r.body)
				}
			}
		}
		if r := e.do("GET", "/readyz", nil); r.status != http.StatusServiceUnavailable {
			t.Errorf("readyz with the database closed: %d", r.status)
		}
	})
}
