package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The helpers shared by the tests of the analytics operations, which are split by operation and concern:
//   - events_track_test.go: POST /v2/analytics/events (receipts, idempotency, concurrent duplicates)
//   - events_track_validation_test.go: what it rejects (invalid fields, size limits)
//   - events_track_attribution_test.go: user_id permissions, organization from the token
//   - events_batch_test.go: POST /v2/analytics/events/batch
//   - events_list_test.go: GET /v2/analytics/events (filters, parameters, paging)
//   - events_summary_test.go: GET /v2/analytics/summary, the events part of a user's activity
//   - events_pipeline_test.go: backpressure, and the pipeline's state in /readyz and /metrics
// body_test.go, text_test.go, timestamps_test.go and parameters_test.go use these helpers too.

const (
	eventsPath  = "/v2/analytics/events"
	batchPath   = "/v2/analytics/events/batch"
	summaryPath = "/v2/analytics/summary"
	// countedWithin is how soon an event answered 202 must be counted in the summary and the user's activity.
	countedWithin = 2 * time.Second
)

// newEvent returns a valid event with a fresh event_id, named name, in the category "testing".
func newEvent(name string) map[string]any {
	return map[string]any{"event_id": uuid.NewString(), "event_name": name, "event_category": "testing"}
}

// postEvent sends one event with the access token.
func postEvent(e *env, token string, body any) resp {
	e.t.Helper()
	return e.do("POST", eventsPath, body, bearer(token)...)
}

// mustAccept fails unless r is a 202 receipt with the given duplicate flag, and returns it.
func mustAccept(t testing.TB, r resp, duplicate bool) map[string]any {
	t.Helper()
	if r.status != http.StatusAccepted {
		t.Fatalf("got %d %s, want 202", r.status, r.body)
	}
	b := r.obj(t)
	if b["status"] != "accepted" || b["duplicate"] != duplicate {
		t.Fatalf("receipt %s, want status accepted and duplicate %v", r.body, duplicate)
	}
	return b
}

// failingFields returns the failing fields a problem names, sorted and without repeats: body members by
// pointer, query parameters as "?name", headers as "header:name".
func failingFields(t testing.TB, r resp) []string {
	t.Helper()
	var out []string
	errs, _ := r.obj(t)["errors"].([]any)
	for _, x := range errs {
		fe := x.(map[string]any)
		switch {
		case fe["pointer"] != nil:
			out = append(out, fe["pointer"].(string))
		case fe["parameter"] != nil:
			out = append(out, "?"+fe["parameter"].(string))
		case fe["header"] != nil:
			out = append(out, "header:"+fe["header"].(string))
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// expectInvalid fails unless r is 400 validation_failed naming exactly the given fields.
func expectInvalid(t testing.TB, r resp, fields ...string) {
	t.Helper()
	expectProblem(t, r, http.StatusBadRequest, "validation_failed")
	want := slices.Clone(fields)
	sort.Strings(want)
	if got := failingFields(t, r); !slices.Equal(got, want) {
		t.Fatalf("failing fields %q, want exactly %q: %s", got, want, r.body)
	}
}

// listAllEvents pages through GET /v2/analytics/events?query with pages of limit events (0: the default
// page size), checking every page's size, has_more and next_cursor, and returns the events in order.
func listAllEvents(t testing.TB, e *env, token, query string, limit int) []map[string]any {
	t.Helper()
	size := limit
	if size == 0 {
		size = analytics.DefaultListLimit
	}
	var out []map[string]any
	cursor := ""
	for page := 0; ; page++ {
		q, err := url.ParseQuery(query)
		must(t, err)
		if limit > 0 {
			q.Set("limit", strconv.Itoa(limit))
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := e.do("GET", eventsPath+"?"+q.Encode(), nil, bearer(token)...)
		if r.status != http.StatusOK {
			t.Fatalf("list %s page %d: %d %s", q.Encode(), page, r.status, r.body)
		}
		if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("listing Cache-Control = %q", cc)
		}
		b := r.obj(t)
		data := b["data"].([]any)
		more := b["has_more"].(bool)
		next, _ := b["next_cursor"].(string)
		switch {
		case more != (next != ""):
			t.Fatalf("page %d: has_more %v with next_cursor %q", page, more, next)
		case more && len(data) != size:
			t.Fatalf("page %d: %d events with has_more, want a full page of %d", page, len(data), size)
		case len(data) > size:
			t.Fatalf("page %d: %d events, more than the page size %d", page, len(data), size)
		case page > 0 && len(data) == 0:
			t.Fatalf("page %d is empty although the previous page had has_more", page)
		}
		for _, d := range data {
			out = append(out, d.(map[string]any))
		}
		if !more {
			return out
		}
		if page > 2000 {
			t.Fatal("the listing does not end")
		}
		cursor = next
	}
}

// idsOf returns the "id" member of every event or result.
func idsOf(events []map[string]any) []string {
	out := make([]string, len(events))
	for i, ev := range events {
		out[i], _ = ev["id"].(string)
	}
	return out
}

// countEvents returns how many events the organization of the token has.
func countEvents(t testing.TB, e *env, token string) int {
	t.Helper()
	return len(listAllEvents(t, e, token, "", analytics.MaxListLimit))
}

// eventIDCount returns how many listed events have the event_id.
func eventIDCount(t testing.TB, e *env, token, eventID string) int {
	t.Helper()
	n := 0
	for _, ev := range listAllEvents(t, e, token, "", analytics.MaxListLimit) {
		if ev["event_id"] == eventID {
			n++
		}
	}
	return n
}

// waitUntil polls cond until it reports done, and fails with its last state if that takes longer than within.
func waitUntil(t testing.TB, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		done, state := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last state: %s", what, within, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sameTime fails unless the RFC 3339 time s is the instant want.
func sameTime(t testing.TB, what string, s any, want time.Time) {
	t.Helper()
	str, _ := s.(string)
	got, err := time.Parse(time.RFC3339Nano, str)
	if err != nil || !got.Equal(want) {
		t.Errorf("%s = %v, want %s", what, s, want.Format(time.RFC3339Nano))
	}
}

// sameJSON fails unless got and want are the same JSON value.
func sameJSON(t testing.TB, what string, got, want any) {
	t.Helper()
	norm := func(v any) any {
		raw, err := json.Marshal(v)
		must(t, err)
		var out any
		must(t, json.Unmarshal(raw, &out))
		return out
	}
	if d := cmp.Diff(norm(want), norm(got)); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

// roleUsers creates an active user of org A for each role but admin and returns them with their access tokens.
func roleUsers(t testing.TB, e *env, prefix string) (map[nexus.Role]nexus.User, map[nexus.Role]string) {
	t.Helper()
	hash, err := auth.HashPassword(adminPassword)
	must(t, err)
	us := map[nexus.Role]nexus.User{nexus.RoleAdmin: e.admin}
	tokens := map[nexus.Role]string{}
	tokens[nexus.RoleAdmin], _ = e.tokens(webClient)
	for _, role := range []nexus.Role{nexus.RoleManager, nexus.RoleAnalyst, nexus.RoleMember} {
		u := e.user(e.orgA.ID, fmt.Sprintf("%s-%s@a.example", prefix, role), role, hash)
		us[role] = u
		tokens[role], _ = e.loginAs(u.Email, adminPassword)
	}
	return us, tokens
}

// postChunked sends body as a request without Content-Length (chunked transfer), so that only reading the
// body can tell its size.
func postChunked(t testing.TB, e *env, path string, body []byte, token string) resp {
	t.Helper()
	req := httptest.NewRequest("POST", path, nil)
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	checkResponse(t, req, r)
	return r
}

// paddedEvent returns a valid event of exactly size bytes: white space fills it up.
func paddedEvent(t testing.TB, size int) []byte {
	t.Helper()
	ev := []byte(fmt.Sprintf(`{"event_id":%q,"event_name":"padded","event_category":"limits"`, uuid.NewString()))
	if size < len(ev)+1 {
		t.Fatalf("padded event of %d bytes is too small", size)
	}
	return append(append(ev, bytes.Repeat([]byte(" "), size-len(ev)-1)...), '}')
}
