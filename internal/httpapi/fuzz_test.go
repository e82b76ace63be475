package httpapi

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// Fuzz targets for what clients send: login and refresh bodies, the Authorization header, the /v2/users query
// and event bodies, single and batched. Each target builds one server on SQLite in a temporary directory and
// sends every input through the real handler, as net/http's server would hand it over. Whatever the input,
// the answer is never a 5xx, always matches openapi.yaml (checkResponse), and a 4xx is problem+json.
//
// `make test` runs the seed corpus (testdata/fuzz/<target>/ and the seeds added here); `make fuzz` runs each
// target for FUZZTIME.

// fuzzEnv returns a server over a fresh SQLite database, shared by every input of one fuzz target.
func fuzzEnv(f *testing.F) *env {
	f.Helper()
	return newEnv(f, storetest.Open(f, store.SQLite))
}

// wireRequest parses a request from the bytes a client would send, the way net/http's server does; ok is
// false when that server would have refused the request itself, before any handler ran.
func wireRequest(method, target string, body []byte, header ...string) (req *http.Request, ok bool) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: api.nexus.test\r\n", method, target)
	for i := 0; i+1 < len(header); i += 2 {
		if strings.ContainsAny(header[i+1], "\r\n") {
			return nil, false // a line break would end the header: another request, not this one
		}
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	req, err := http.ReadRequest(bufio.NewReader(&b))
	if err != nil {
		return nil, false
	}
	// The server also refuses header values with control characters (other than tab).
	for _, vs := range req.Header {
		for _, v := range vs {
			for _, c := range []byte(v) {
				if c < ' ' && c != '\t' || c == 0x7f {
					return nil, false
				}
			}
		}
	}
	req.RemoteAddr = "192.0.2.10:40000"
	return req, true
}

// fuzzSend sends req through the handler and fails on a 5xx, a response that openapi.yaml does not allow, or
// a 4xx that is not problem+json.
func fuzzSend(t *testing.T, h http.Handler, req *http.Request) resp {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if r.status >= 500 {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, r.status, r.body)
	}
	checkResponse(t, req, r)
	if r.status >= 400 {
		if ct := r.header.Get("Content-Type"); ct != problemContentType {
			t.Fatalf("%s %s: %d with Content-Type %q, want %s: %s", req.Method, req.URL, r.status, ct, problemContentType, r.body)
		}
	}
	return r
}

// fuzzBody sends body to path with the given header pairs.
func fuzzBody(t *testing.T, e *env, path string, body []byte, header ...string) {
	t.Helper()
	req, ok := wireRequest("POST", path, body, header...)
	if !ok {
		t.Fatalf("a body alone cannot make a request unreadable: %q", body)
	}
	fuzzSend(t, e.h, req)
}

func FuzzLogin(f *testing.F) {
	e := fuzzEnv(f)
	for _, s := range []string{
		fmt.Sprintf(`{"email":%q,"password":%q,"client_id":%q}`, adminEmail, adminPassword, webClient),
		fmt.Sprintf(`{"email":%q,"password":"wrong password","client_id":%q}`, adminEmail, webClient),
		fmt.Sprintf(`{"email":%q,"password":%q,"client_id":%q}`, strings.ToUpper(adminEmail), adminPassword, orgBClient),
		fmt.Sprintf(`{"email":%q,"password":%q,"client_id":%q,"ip_address":"203.0.113.7"}`, adminEmail, adminPassword, offClient),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, e, "/v2/auth/login", body)
	})
}

func FuzzRefresh(f *testing.F) {
	e := fuzzEnv(f)
	_, refresh := e.tokens(webClient)
	f.Add([]byte(fmt.Sprintf(`{"refresh_token":%q,"client_id":%q}`, refresh, webClient)))
	f.Add([]byte(fmt.Sprintf(`{"refresh_token":%q,"client_id":%q,"device_id":"laptop-1"}`, refresh, orgAClient)))
	f.Add([]byte(fmt.Sprintf(`{"refresh_token":%q,"client_id":%q}`, refresh[:len(refresh)-1], webClient)))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, e, "/v2/auth/refresh", body)
	})
}

func FuzzBearer(f *testing.F) {
	e := fuzzEnv(f)
	access, _ := e.tokens(webClient)
	other, _ := e.tokens(orgAClient)
	for _, s := range []string{"Bearer " + access, "bearer " + access, "Bearer  " + access, "Bearer " + access + " x",
		"Bearer " + other[:len(other)-2], "Bearer " + strings.Replace(access, ".", "..", 1), "Basic " + access} {
		f.Add(s)
	}
	// Other spellings of the issued tokens, and tokens signed with the server's key that only the canonical form
	// refuses (testdata holds the same shapes under an unknown key).
	header := `{"alg":"ES256","kid":"` + e.kid + `","typ":"at+jwt"}`
	payload := string(mustDecode(f, strings.Split(access, ".")[1]))
	for _, s := range []string{
		segment(f, access, 2, padSegment), segment(f, other, 0, padSegment),
		segment(f, access, 2, trailingBitsSegment), segment(f, access, 1, trailingBitsSegment),
		signJSON(f, e.signKey, jsonMember(header, `"crit":["exp"]`), payload),
		signJSON(f, e.signKey, jsonMember(header, `"kid":"`+e.kid+`"`), payload),
		signJSON(f, e.signKey, header, regexp.MustCompile(`"exp":(\d+)`).ReplaceAllString(payload, `"exp":"$1"`)),
		signJSON(f, e.signKey, header, jsonMember(strings.Replace(payload, `"role":"admin"`, `"role":"member"`, 1), `"role":"admin"`)),
	} {
		f.Add("Bearer " + s)
	}
	if std := stdSegment(access); std != access {
		f.Add("Bearer " + std)
	}
	// The standard alphabet: a token signed here with the server's key (valid, but not one the server issued, so
	// it is not a seed itself), written with '+' and '/'.
	for {
		if s := signJSON(f, e.signKey, header, payload); stdSegment(s) != s {
			f.Add("Bearer " + stdSegment(s))
			break
		}
	}
	f.Fuzz(func(t *testing.T, authorization string) {
		req, ok := wireRequest("GET", "/v2/users?limit=1", nil, "Authorization", authorization)
		if !ok {
			return // net/http would have answered 400 itself
		}
		r := fuzzSend(t, e.h, req)
		// One spelling per token: only the very tokens the server issued are accepted, never another spelling
		// of them. (The token is what follows the scheme, spaces around it trimmed.)
		_, token, _ := strings.Cut(req.Header.Get("Authorization"), " ")
		if token = strings.TrimSpace(token); r.status == http.StatusOK && token != access && token != other {
			t.Fatalf("Authorization %q was accepted, and its token %q is not one the server issued", authorization, token)
		}
	})
}

func FuzzUsersQuery(f *testing.F) {
	e := fuzzEnv(f)
	access, _ := e.tokens(webClient)
	f.Fuzz(func(t *testing.T, query string) {
		req, ok := wireRequest("GET", "/v2/users?"+query, nil, bearer(access)...)
		if !ok {
			return // net/http would have answered 400 itself
		}
		fuzzSend(t, e.h, req)
	})
}

func FuzzTrackEvent(f *testing.F) {
	e := fuzzEnv(f)
	access, _ := e.tokens(webClient)
	f.Add([]byte(fmt.Sprintf(`{"event_name":"signup","event_category":"onboarding","user_id":%q,"properties":{"plan":"pro"}}`, e.admin.ID)))
	f.Add([]byte(fmt.Sprintf(`{"event_name":"signup","event_category":"onboarding","user_id":%q}`, e.bob.ID)))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, e, eventsPath, body, bearer(access)...)
	})
}

func FuzzTrackEventBatch(f *testing.F) {
	e := fuzzEnv(f)
	access, _ := e.tokens(webClient)
	f.Add([]byte(fmt.Sprintf(`{"events":[{"event_name":"a","event_category":"b","user_id":%q},{"event_name":"a","event_category":"b","user_id":%q}]}`,
		e.admin.ID, e.bob.ID)))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzBody(t, e, batchPath, body, bearer(access)...)
	})
}
