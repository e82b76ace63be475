package httpapi

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// serveGuarded serves h on a loopback listener as cmd/nexus does, behind GuardFraming.
func serveGuarded(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = GuardFraming(srv.Config, srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// rawConn is a client connection that writes bytes as given and reads the answers one by one.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func dialRaw(t *testing.T, srv *httptest.Server) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	must(t, err)
	t.Cleanup(func() { _ = c.Close() })
	must(t, c.SetDeadline(time.Now().Add(30*time.Second)))
	return &rawConn{t: t, c: c, rd: bufio.NewReader(c)}
}

func (r *rawConn) send(raw string) {
	r.t.Helper()
	_, err := io.WriteString(r.c, strings.ReplaceAll(raw, "\n", "\r\n"))
	must(r.t, err)
}

// answer reads the next response, checks it against the contract as the answer to a request of method and path,
// and returns it.
func (r *rawConn) answer(method, path string) resp {
	r.t.Helper()
	req := httptest.NewRequest(method, path, nil)
	res, err := http.ReadResponse(r.rd, req)
	if err != nil {
		r.t.Fatalf("%s %s: no answer: %v", method, path, err)
	}
	body, err := io.ReadAll(res.Body)
	must(r.t, err)
	out := resp{status: res.StatusCode, header: res.Header, body: body}
	if res.Close {
		out.header = out.header.Clone()
		out.header.Set("Connection", "close") // net/http moves it into res.Close
	}
	checkResponse(r.t, req, out)
	return out
}

// closed fails unless the server has closed the connection.
func (r *rawConn) closed() {
	r.t.Helper()
	must(r.t, r.c.SetReadDeadline(time.Now().Add(10*time.Second)))
	if n, err := r.rd.Read(make([]byte, 1)); err != io.EOF {
		r.t.Fatalf("the connection is still open: read %d bytes, %v", n, err)
	}
}

const loginBody = `{"email":"nobody@example.com","password":"not the password","client_id":"nexus-web"}`

// TestTransferEncodingWithContentLength: a request with both Transfer-Encoding and Content-Length is 400, and its
// connection is closed after the answer (RFC 9112 section 6.1), whatever the order, case or HTTP version of the
// fields, on every route; the requests before it on the connection are served as usual, pipelined or not.
func TestTransferEncodingWithContentLength(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	srv := serveGuarded(t, e.h)
	chunked := fmt.Sprintf("%x\n%s\n0\n\n", len(loginBody), loginBody)
	length := strconv.Itoa(len(loginBody))
	smuggling := func(t *testing.T, c *rawConn, method, path string) {
		t.Helper()
		r := c.answer(method, path)
		expectProblem(t, r, http.StatusBadRequest, "validation_failed")
		if got := r.obj(t)["errors"]; !strings.Contains(string(r.body), `"header":"Content-Length"`) {
			t.Errorf("errors = %v, want the Content-Length header named", got)
		}
		if r.header.Get("Connection") != "close" {
			t.Errorf("Connection = %q, want close", r.header.Get("Connection"))
		}
		c.closed()
	}
	for name, head := range map[string]string{
		"CL then TE":          "POST /v2/auth/login HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 4\nTransfer-Encoding: chunked\n\n",
		"TE then CL":          "POST /v2/auth/login HTTP/1.1\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked\nContent-Length: 200\n\n",
		"lower case, CHUNKED": "POST /v2/auth/login HTTP/1.1\nhost: x\ncontent-type: application/json\ntransfer-encoding: CHUNKED\ncontent-length: 3\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, srv)
			c.send(head + chunked)
			smuggling(t, c, "POST", "/v2/auth/login")
		})
	}
	t.Run("a request hidden in the body is never served", func(t *testing.T) {
		// Framed by Content-Length, the body would end after "0\n\n" and the GET would be a request of its own.
		c := dialRaw(t, srv)
		c.send("POST /v2/auth/login HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 5\nTransfer-Encoding: chunked\n\n" +
			"0\n\nGET /v2/.well-known/jwks.json HTTP/1.1\nHost: x\n\n")
		smuggling(t, c, "POST", "/v2/auth/login")
	})
	t.Run("on a GET operation", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.send("GET /v2/.well-known/jwks.json HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\nContent-Length: 0\n\n0\n\n")
		smuggling(t, c, "GET", "/v2/.well-known/jwks.json")
	})
	t.Run("HTTP/1.0", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.send("POST /v2/auth/login HTTP/1.0\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked\nContent-Length: " + length + "\n\n" + loginBody)
		smuggling(t, c, "POST", "/v2/auth/login")
	})
	t.Run("after ordinary requests on one connection", func(t *testing.T) {
		c := dialRaw(t, srv)
		// By Content-Length, chunked, without a body, one with trailer fields: each answered, the connection open.
		c.send("POST /v2/auth/login HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: " + length + "\n\n" + loginBody)
		expectProblem(t, c.answer("POST", "/v2/auth/login"), http.StatusUnauthorized, "invalid_credentials")
		c.send("POST /v2/auth/login HTTP/1.1\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked\n\n" + chunked)
		expectProblem(t, c.answer("POST", "/v2/auth/login"), http.StatusUnauthorized, "invalid_credentials")
		c.send("GET /v2/.well-known/jwks.json HTTP/1.1\nHost: x\n\n")
		if r := c.answer("GET", "/v2/.well-known/jwks.json"); r.status != http.StatusOK {
			t.Fatalf("jwks: %d %s", r.status, r.body)
		}
		c.send("POST /v2/auth/login HTTP/1.1\nHost: x\nContent-Type: application/json\nTransfer-Encoding: chunked\n\n" +
			"10;ext=1\n" + loginBody[:16] + fmt.Sprintf("\n%x\n", len(loginBody)-16) + loginBody[16:] + "\n0\nX-Trailer: 1\n\n")
		expectProblem(t, c.answer("POST", "/v2/auth/login"), http.StatusUnauthorized, "invalid_credentials")
		// Pipelined: an ordinary request and one with both fields, sent at once.
		c.send("GET /v2/.well-known/jwks.json HTTP/1.1\nHost: x\n\n" +
			"POST /v2/auth/login HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 4\nTransfer-Encoding: chunked\n\n" + chunked)
		if r := c.answer("GET", "/v2/.well-known/jwks.json"); r.status != http.StatusOK {
			t.Fatalf("pipelined jwks: %d %s", r.status, r.body)
		}
		smuggling(t, c, "POST", "/v2/auth/login")
	})
}

// TestContentTypeStrict: the body's media type is given once, and is JSON in UTF-8.
func TestContentTypeStrict(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	post := func(types ...string) resp {
		req := httptest.NewRequest("POST", "/v2/auth/login", strings.NewReader(loginBody))
		for _, ct := range types {
			req.Header.Add("Content-Type", ct)
		}
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		checkResponse(t, req, r)
		return r
	}
	tests := []struct {
		types  []string
		status int
		code   string
	}{
		{[]string{"application/json", "application/json"}, 400, "validation_failed"},
		{[]string{"application/json", "text/plain"}, 400, "validation_failed"},
		{[]string{"application/json; charset=utf-16"}, 415, "unsupported_media_type"},
		{[]string{"application/json; charset=iso-8859-1"}, 415, "unsupported_media_type"},
		{[]string{"application/json; charset=utf8"}, 415, "unsupported_media_type"},
		{[]string{"application/json; charset=UTF-8"}, 401, "invalid_credentials"},
		{[]string{`application/json; charset="utf-8"`}, 401, "invalid_credentials"},
		{[]string{"Application/JSON"}, 401, "invalid_credentials"},
	}
	for _, tt := range tests {
		r := post(tt.types...)
		if r.status != tt.status || r.str(t, "code") != tt.code {
			t.Errorf("Content-Type %q: %d %s, want %d %s", tt.types, r.status, r.body, tt.status, tt.code)
		}
		if tt.status != 401 && !bytes.Contains(r.body, []byte(`"header":"Content-Type"`)) {
			t.Errorf("Content-Type %q: the header is not named: %s", tt.types, r.body)
		}
	}
}

// TestPathsOnlyLookLikeRoutes: a trailing slash, an empty segment or an extra segment is 404, alike for every
// route, never a 400 about the parameter it seems to carry.
func TestPathsOnlyLookLikeRoutes(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	access, _ := e.tokens(webClient)
	var first string
	for _, p := range []struct{ method, path string }{
		{"GET", "/v2/users/"},
		{"GET", "/v2/users/" + e.admin.ID + "/"},
		{"GET", "/v2/users/" + e.admin.ID + "/x"},
		{"PATCH", "/v2/users/" + e.admin.ID + "/"},
		{"GET", "/v2/users//"},
		{"GET", "/v2//users"},
		{"GET", "/v2/users/x/y"},
		{"POST", "/v2/auth/login/"},
		{"GET", "/v2/analytics/events/"},
		{"GET", "/v2/.well-known/jwks.json/"},
		{"GET", "/healthz/"},
	} {
		r := e.do(p.method, p.path, nil, bearer(access)...)
		expectProblem(t, r, http.StatusNotFound, "not_found")
		body := withoutRequestID(t, r)
		if first == "" {
			first = body
		} else if body != first {
			t.Errorf("%s %s: a 404 unlike the others: %s", p.method, p.path, r.body)
		}
	}
}

// TestHead: every GET operation (and every other GET route) answers HEAD as it answers GET, status and header
// fields, without a body; Allow names HEAD where GET is allowed, and nowhere else.
func TestHead(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		srv := serveGuarded(t, e.h)
		access, _ := e.tokens(webClient)
		do := func(method, path string, auth bool) resp {
			t.Helper()
			req, err := http.NewRequest(method, srv.URL+path, nil)
			must(t, err)
			if auth {
				req.Header.Set("Authorization", "Bearer "+access)
			}
			res, err := srv.Client().Do(req)
			must(t, err)
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			must(t, err)
			r := resp{status: res.StatusCode, header: res.Header, body: body}
			checkResponse(t, httptest.NewRequest(method, path, nil), r)
			return r
		}
		// Header fields whose values differ from one answer to the next.
		varying := map[string]bool{"Date": true, "X-Request-Id": true, "Content-Length": true, "Ratelimit": true}
		for _, g := range []struct {
			path string
			auth bool
		}{
			{"/v2/users?limit=2", true}, {"/v2/users/" + e.admin.ID + "?include_permissions=true", true},
			{"/v2/users", false}, {"/v2/users/" + e.admin.ID, false},
			{"/v2/analytics/events?limit=1", true}, {"/v2/analytics/summary", true},
			{"/v2/.well-known/jwks.json", false}, {"/v2/openapi.json", false},
			{"/v2/users?limit=0", true}, {"/v2/users/not-a-uuid", true},
			{"/healthz", false}, {"/readyz", false}, {"/docs", false}, {"/v2/openapi.yaml", false},
		} {
			get, head := do("GET", g.path, g.auth), do("HEAD", g.path, g.auth)
			if head.status != get.status || len(head.body) != 0 {
				t.Errorf("HEAD %s: %d with %d bytes, want %d without a body", g.path, head.status, len(head.body), get.status)
			}
			for k := range get.header {
				if !varying[k] && head.header.Get(k) != get.header.Get(k) {
					t.Errorf("HEAD %s: %s = %q, GET has %q", g.path, k, head.header.Get(k), get.header.Get(k))
				}
			}
		}
		r := do("HEAD", "/v2/auth/login", false)
		if r.status != http.StatusMethodNotAllowed || strings.Contains(r.header.Get("Allow"), "HEAD") || len(r.body) != 0 {
			t.Errorf("HEAD on a POST-only path: %d, Allow %q, %d bytes", r.status, r.header.Get("Allow"), len(r.body))
		}
		if allow := do("DELETE", "/v2/users", true).header.Get("Allow"); allow != "OPTIONS, GET, HEAD, POST" {
			t.Errorf("Allow = %q", allow)
		}
	})
}
