package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHeaderLimit runs the handler behind a real listener with the hard cap cmd/nexus gives http.Server
// (HeaderHardLimit): a request line and headers over the limit get 431 problem+json, under it they pass; past
// the hard cap net/http answers 431 itself.
func TestHeaderLimit(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		serve := func(h http.Handler, limit int) *httptest.Server {
			srv := httptest.NewUnstartedServer(h)
			srv.Config.MaxHeaderBytes = HeaderHardLimit(limit)
			srv.Config.ReadHeaderTimeout = time.Minute
			srv.Start()
			t.Cleanup(srv.Close)
			return srv
		}
		client := &http.Client{Timeout: time.Minute}
		get := func(srv *httptest.Server, path string, header http.Header) (*http.Request, resp) {
			t.Helper()
			req, err := http.NewRequest("GET", srv.URL+path, nil)
			must(t, err)
			req.Header = header
			res, err := client.Do(req)
			must(t, err)
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			must(t, err)
			return req, resp{status: res.StatusCode, header: res.Header, body: body}
		}
		padding := func(n int) http.Header { return http.Header{"X-Padding": {strings.Repeat("p", n)}} }
		const jwks = "/v2/.well-known/jwks.json"

		srv := serve(e.h, 0)
		for name, c := range map[string]struct {
			path   string
			header http.Header
			want   int
		}{
			"20 KiB header":           {jwks, padding(20 << 10), http.StatusOK},
			"30 headers of 1 KiB":     {jwks, manyHeaders(30, 1<<10), http.StatusOK},
			"40 KiB header":           {jwks, padding(40 << 10), http.StatusRequestHeaderFieldsTooLarge},
			"40 headers of 1 KiB":     {jwks, manyHeaders(40, 1<<10), http.StatusRequestHeaderFieldsTooLarge},
			"40 KiB request line":     {jwks + "?x=" + strings.Repeat("q", 40<<10), nil, http.StatusRequestHeaderFieldsTooLarge},
			"outside the contract":    {"/healthz", padding(40 << 10), http.StatusRequestHeaderFieldsTooLarge},
			"unknown route, 20 KiB":   {"/v2/nope", padding(20 << 10), http.StatusNotFound},
			"unknown route, 40 KiB":   {"/v2/nope", padding(40 << 10), http.StatusRequestHeaderFieldsTooLarge},
			"just under the hard cap": {jwks, padding(HeaderHardLimit(0) - 1<<10), http.StatusRequestHeaderFieldsTooLarge},
			"a 32 KiB value":          {jwks, padding(DefaultMaxHeaderBytes), http.StatusRequestHeaderFieldsTooLarge},
		} {
			t.Run(name, func(t *testing.T) {
				req, r := get(srv, c.path, c.header)
				if r.status != c.want {
					t.Fatalf("%d %.200s, want %d", r.status, r.body, c.want)
				}
				if c.want != http.StatusRequestHeaderFieldsTooLarge {
					return
				}
				expectProblem(t, r, c.want, "request_headers_too_large")
				if c.path != "/v2/nope" { // the harness knows only 404 and 405 outside the contract
					checkResponse(t, req, r)
				}
			})
		}

		t.Run("past the hard cap", func(t *testing.T) {
			_, r := get(srv, jwks, padding(HeaderHardLimit(0)+8<<10))
			if r.status != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("%d %.200s, want 431 from net/http", r.status, r.body)
			}
		})

		t.Run("configured limit", func(t *testing.T) {
			_, h, err := New(Options{Auth: e.svc, MaxHeaderBytes: 8 << 10})
			must(t, err)
			small := serve(h, 8<<10)
			if _, r := get(small, jwks, padding(6<<10)); r.status != http.StatusOK {
				t.Fatalf("6 KiB: %d %.200s", r.status, r.body)
			}
			req, r := get(small, jwks, padding(10<<10))
			expectProblem(t, r, http.StatusRequestHeaderFieldsTooLarge, "request_headers_too_large")
			checkResponse(t, req, r)
			if !strings.Contains(r.str(t, "detail"), "8192 bytes") {
				t.Errorf("detail %q does not name the limit", r.str(t, "detail"))
			}
		})
	})
}

// manyHeaders returns n headers of size bytes of value each.
func manyHeaders(n, size int) http.Header {
	h := http.Header{}
	for i := range n {
		h.Set("X-Padding-"+strconv.Itoa(i), strings.Repeat("p", size))
	}
	return h
}

func TestHeaderSize(t *testing.T) {
	req := httptest.NewRequest("GET", "/v2/x?y=1", nil)
	req.Host = "api.example.com"
	req.Header.Set("Accept", "application/json")
	req.Header.Add("X-A", "1")
	req.Header.Add("X-A", "22")
	// GET /v2/x?y=1 HTTP/1.1\r\n Host: api.example.com\r\n Accept: application/json\r\n X-A: 1\r\n X-A: 22\r\n \r\n
	want := len("GET /v2/x?y=1 HTTP/1.1\r\n") + len("Host: api.example.com\r\n") + len("Accept: application/json\r\n") +
		len("X-A: 1\r\n") + len("X-A: 22\r\n") + len("\r\n")
	if got := headerSize(req, 1<<20); got != want {
		t.Errorf("headerSize = %d, want %d", got, want)
	}
}
