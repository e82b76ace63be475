package apitest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/httpapi/apitest"
)

// recorder collects what Transport reports instead of failing the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Error(args ...any) {
	r.errs = append(r.errs, strings.TrimSpace(strings.Repeat("%v ", len(args))))
}

// TestTransport shows that Transport passes a documented response and refuses an undocumented header, an
// undocumented field, an undocumented status and a response without X-Request-Id.
func TestTransport(t *testing.T) {
	problem := `{"type":"about:blank","title":"Unauthorized","status":401,"code":"unauthenticated","detail":"Missing bearer token.","request_id":"r1"}`
	cases := []struct {
		name   string
		status int
		header map[string]string
		body   string
		ok     bool
	}{
		{"documented 401", 401, map[string]string{"WWW-Authenticate": `Bearer realm="nexus"`}, problem, true},
		{"undocumented header", 401, map[string]string{"WWW-Authenticate": `Bearer realm="nexus"`, "X-Secret": "1"}, problem, false},
		{"undocumented field", 401, map[string]string{"WWW-Authenticate": `Bearer realm="nexus"`}, strings.Replace(problem, `"r1"`, `"r1","extra":1`, 1), false},
		{"undocumented status", 418, nil, problem, false},
		{"no request id", 401, map[string]string{"WWW-Authenticate": `Bearer realm="nexus"`, "X-Request-Id": ""}, problem, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json")
				w.Header().Set("X-Request-Id", "r1")
				for k, v := range c.header {
					if v == "" {
						w.Header().Del(k)
					} else {
						w.Header().Set(k, v)
					}
				}
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			defer srv.Close()
			rec := &recorder{TB: t}
			client := &http.Client{Transport: apitest.Transport{T: rec}}
			resp, err := client.Get(srv.URL + apitest.BasePath + "/users")
			if resp != nil {
				resp.Body.Close()
			}
			if ok := err == nil && len(rec.errs) == 0; ok != c.ok {
				t.Fatalf("accepted = %v (err %v), want %v", ok, err, c.ok)
			}
		})
	}
}
