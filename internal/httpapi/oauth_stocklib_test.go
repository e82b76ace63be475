package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// recordingServer is a real HTTP server (httptest.NewServer) over the handler that records every exchange, so that
// the test can check each response against openapi.yaml on its own goroutine (checkResponse may not fail the
// test from the server's goroutines).
type recordingServer struct {
	*httptest.Server
	mu        sync.Mutex
	exchanges []exchanged
}

type exchanged struct {
	req *http.Request
	r   resp
}

func newRecordingServer(t *testing.T, h http.Handler) *recordingServer {
	s := &recordingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		s.mu.Lock()
		s.exchanges = append(s.exchanges, exchanged{req: req, r: resp{status: rec.Code, header: rec.Header().Clone(), body: rec.Body.Bytes()}})
		s.mu.Unlock()
	}))
	t.Cleanup(s.Close)
	return s
}

// take checks every response recorded since the last call against openapi.yaml and returns the exchanges.
func (s *recordingServer) take(t *testing.T) []exchanged {
	t.Helper()
	s.mu.Lock()
	got := s.exchanges
	s.exchanges = nil
	s.mu.Unlock()
	for _, x := range got {
		checkResponse(t, x.req, x.r)
	}
	return got
}

// String describes an exchange in a failure message.
func (x exchanged) String() string {
	return fmt.Sprintf("%s %s (Authorization %.6q…) → %d %s", x.req.Method, x.req.URL.Path, x.req.Header.Get("Authorization"), x.r.status, x.r.body)
}

// TestStockGoClientCredentials: golang.org/x/oauth2/clientcredentials, as an integrator would use it with no custom
// code, obtains a token from a real server with each of its client authentication styles and calls GET /v2/users
// and POST /v2/analytics/events/batch through the http.Client it returns; a wrong secret surfaces as the library's
// parsed *oauth2.RetrieveError with ErrorCode "invalid_client".
func TestStockGoClientCredentials(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		srv := newRecordingServer(t, e.h)
		admin, _ := e.tokens(webClient)
		id, secret := e.serviceClient(admin, "users:list", "events:write", "events:write_any_user")
		// The library's own requests (the token endpoint) go through the test server's client.
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, srv.Client())

		for _, tc := range []struct {
			name   string
			style  oauth2.AuthStyle
			scopes []string
			basic  bool // whether the secret must travel in the Authorization header (else in the body)
		}{
			{"InHeader", oauth2.AuthStyleInHeader, nil, true},
			{"InParams", oauth2.AuthStyleInParams, []string{"users:list", "events:write", "events:write_any_user"}, false},
			// The library's default: it tries the header first and remembers what worked.
			{"AutoDetect", oauth2.AuthStyleAutoDetect, []string{"users:list"}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				srv.take(t) // what an earlier subtest left, had it failed
				cfg := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: srv.URL + "/v2/auth/token",
					Scopes: tc.scopes, AuthStyle: tc.style}
				tok, err := cfg.Token(ctx)
				if err != nil {
					t.Fatalf("Token: %v", err)
				}
				if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.RefreshToken != "" || tok.Expiry.IsZero() {
					t.Fatalf("token %+v", tok)
				}
				wantScope := "users:list events:write events:write_any_user"
				if tc.scopes != nil {
					wantScope = strings.Join(tc.scopes, " ")
				}
				if got, _ := tok.Extra("scope").(string); got != wantScope {
					t.Fatalf("scope %q, want %q", got, wantScope)
				}
				x := srv.take(t)
				if len(x) != 1 || x[0].req.URL.Path != "/v2/auth/token" || x[0].r.status != http.StatusOK {
					t.Fatalf("token exchanges: %v", x)
				}
				if got := strings.HasPrefix(x[0].req.Header.Get("Authorization"), "Basic "); got != tc.basic {
					t.Fatalf("the library sent Authorization %q; want Basic: %v", x[0].req.Header.Get("Authorization"), tc.basic)
				}

				client := cfg.Client(ctx)
				r, err := client.Get(srv.URL + "/v2/users")
				if err != nil {
					t.Fatal(err)
				}
				var list struct {
					Data []struct {
						ID    string `json:"id"`
						Email string `json:"email"`
					} `json:"data"`
				}
				err = json.NewDecoder(r.Body).Decode(&list)
				_ = r.Body.Close()
				if err != nil || r.StatusCode != http.StatusOK {
					t.Fatalf("GET /v2/users: %d %v", r.StatusCode, err)
				}
				found := false
				for _, u := range list.Data {
					found = found || u.ID == e.admin.ID && u.Email == adminEmail
				}
				if !found {
					t.Fatalf("GET /v2/users does not list the admin: %+v", list.Data)
				}
				x = srv.take(t)
				// One token request at most (a new Client may ask for a token of its own), then the call with it.
				last := x[len(x)-1]
				if last.req.URL.Path != "/v2/users" || !strings.HasPrefix(last.req.Header.Get("Authorization"), "Bearer ") {
					t.Fatalf("GET /v2/users went out as %s with Authorization %q", last.req.URL.Path, last.req.Header.Get("Authorization"))
				}

				body := `{"events":[{"event_name":"crm_synced","event_category":"integration","user_id":"` + e.admin.ID + `"},` +
					`{"event_name":"crm_synced","event_category":"integration","user_id":"` + e.admin.ID + `","properties":{"records":2}}]}`
				r, err = client.Post(srv.URL+"/v2/analytics/events/batch", "application/json", bytes.NewBufferString(body))
				if err != nil {
					t.Fatal(err)
				}
				var batch struct {
					Accepted int `json:"accepted"`
					Rejected int `json:"rejected"`
					Results  []struct {
						Status string `json:"status"`
					} `json:"results"`
				}
				err = json.NewDecoder(r.Body).Decode(&batch)
				_ = r.Body.Close()
				// AutoDetect asked for users:list only: its token may not send events.
				if tc.style == oauth2.AuthStyleAutoDetect {
					if r.StatusCode != http.StatusForbidden {
						t.Fatalf("batch with a users:list token: %d", r.StatusCode)
					}
				} else if err != nil || r.StatusCode != http.StatusAccepted || batch.Accepted != 2 || batch.Rejected != 0 || len(batch.Results) != 2 ||
					batch.Results[0].Status != "accepted" || batch.Results[1].Status != "accepted" {
					t.Fatalf("POST /v2/analytics/events/batch: %d %+v %v", r.StatusCode, batch, err)
				}
				srv.take(t)

				// A wrong secret: the library parses the RFC 6749 §5.2 error, both from Token and through the client.
				bad := cfg
				bad.ClientSecret = secret + "x"
				_, err = bad.Token(ctx)
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.ErrorDescription == "" ||
					re.Response == nil || re.Response.StatusCode != http.StatusUnauthorized {
					t.Fatalf("wrong secret: %T %v", err, err)
				}
				_, err = bad.Client(ctx).Get(srv.URL + "/v2/users")
				re = nil
				if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
					t.Fatalf("wrong secret through the client: %T %v", err, err)
				}
				for _, x := range srv.take(t) {
					if x.req.URL.Path != "/v2/auth/token" || x.r.status != http.StatusUnauthorized {
						t.Fatalf("with a wrong secret, %s answered %d", x.req.URL.Path, x.r.status)
					}
				}
			})
		}
	})
}
