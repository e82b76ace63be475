package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The tests of the analytics operations: POST /v2/analytics/events (receipts, idempotency, validation, size
// limits, user_id permissions, organization from the token, backpressure), GET /v2/analytics/events, GET
// /v2/analytics/summary, the events part of a user's activity, and the pipeline's state in /readyz and
// /metrics. Batches are in events_batch_test.go.

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

func TestTrackEvent(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		now := e.clock.Now()
		eventID := uuid.NewString()
		props := map[string]any{"plan": "pro", "seats": 5, "ratio": 0.25, "html": "<b>&</b>", "tags": []any{"a", 1, nil, true},
			"nested": map[string]any{"deep": map[string]any{"ok": false}}, "unicode": "café 🚀"}
		body := map[string]any{"event_id": eventID, "event_name": "signup_completed", "event_category": "onboarding",
			"timestamp": "2026-11-25T08:14:03.120Z", "properties": props, "source": "web-app"}
		got := mustAccept(t, postEvent(e, admin, body), false)
		id, _ := got["id"].(string)
		if _, err := uuid.Parse(id); err != nil || id == eventID {
			t.Errorf("id = %q: want a server-made UUID other than the event_id", id)
		}
		if got["event_id"] != eventID {
			t.Errorf("event_id = %v, want %s", got["event_id"], eventID)
		}
		sameTime(t, "received_at", got["received_at"], now)
		sameTime(t, "timestamp", got["timestamp"], time.Date(2026, 11, 25, 8, 14, 3, 120e6, time.UTC))

		// 202 means committed: the event is listed at once, as sent, for the caller.
		list := listAllEvents(t, e, admin, "", 0)
		if len(list) != 1 {
			t.Fatalf("listing after one event: %d events", len(list))
		}
		ev := list[0]
		want := map[string]any{"id": id, "event_id": eventID, "event_name": "signup_completed", "event_category": "onboarding",
			"user_id": e.admin.ID, "source": "web-app"}
		for k, v := range want {
			if ev[k] != v {
				t.Errorf("listed %s = %v, want %v", k, ev[k], v)
			}
		}
		sameTime(t, "listed timestamp", ev["timestamp"], time.Date(2026, 11, 25, 8, 14, 3, 120e6, time.UTC))
		sameTime(t, "listed received_at", ev["received_at"], now)
		sameJSON(t, "listed properties", ev["properties"], props)

		// Only the required fields: the server makes the event_id, the timestamp is the receive time, the source is
		// null and the properties an empty object. Without an event_id the same body again is a new event.
		minimal := map[string]any{"event_name": "page_viewed", "event_category": "navigation"}
		first := mustAccept(t, postEvent(e, admin, minimal), false)
		second := mustAccept(t, postEvent(e, admin, minimal), false)
		for _, r := range []map[string]any{first, second} {
			if _, err := uuid.Parse(r["event_id"].(string)); err != nil {
				t.Errorf("generated event_id %v is not a UUID", r["event_id"])
			}
			sameTime(t, "timestamp of an event without one", r["timestamp"], now)
			sameTime(t, "received_at", r["received_at"], now)
		}
		if first["event_id"] == second["event_id"] || first["id"] == second["id"] {
			t.Errorf("two events without event_id share an id: %v %v", first, second)
		}
		e.clock.Advance(90 * time.Second)
		third := mustAccept(t, postEvent(e, admin, minimal), false)
		sameTime(t, "timestamp of an event without one, later", third["timestamp"], now.Add(90*time.Second))
		sameTime(t, "received_at, later", third["received_at"], now.Add(90*time.Second))

		// Newest first by timestamp, then by id: the later event, the two of 09:00 (the later id first), then 08:14.
		list = listAllEvents(t, e, admin, "", 0)
		ids := idsOf(list)
		tied := []string{first["id"].(string), second["id"].(string)}
		sort.Sort(sort.Reverse(sort.StringSlice(tied)))
		if wantIDs := []string{third["id"].(string), tied[0], tied[1], id}; !slices.Equal(ids, wantIDs) {
			t.Errorf("listing order %v, want %v", ids, wantIDs)
		}
		for _, ev := range list[:3] {
			if ev["source"] != nil {
				t.Errorf("source of an event without one = %v, want null", ev["source"])
			}
			sameJSON(t, "properties of an event without them", ev["properties"], map[string]any{})
			if ev["user_id"] != e.admin.ID {
				t.Errorf("user_id of an event without one = %v, want the caller %s", ev["user_id"], e.admin.ID)
			}
		}

		// Without a token: 401, nothing stored.
		r := e.do("POST", eventsPath, newEvent("anonymous"))
		expectProblem(t, r, http.StatusUnauthorized, "unauthenticated")
		if n := countEvents(t, e, admin); n != 4 {
			t.Errorf("%d events after an unauthenticated request, want 4", n)
		}
	})
}

func TestTrackEventDuplicate(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		other := e.user(e.orgA.ID, "dup-other@a.example", nexus.RoleMember, hash)
		received := e.clock.Now()

		eventID := uuid.NewString()
		raw := func(eventID, ts, props string) string {
			return fmt.Sprintf(`{"event_id":%q,"event_name":"checkout","event_category":"sales","timestamp":%q,"properties":%s,"source":"web"}`,
				eventID, ts, props)
		}
		original := raw(eventID, "2026-11-25T08:00:00Z", `{"b":1,"a":{"y":[1,2],"x":"é"}}`)
		first := mustAccept(t, postEvent(e, admin, original), false)
		e.clock.Advance(time.Minute)

		// The same event again, also spelled differently (the same instant in another zone, members in another
		// order, the event_id in upper case): 202 with the first event's receipt, nothing new stored.
		for name, body := range map[string]string{
			"identical":            original,
			"other zone":           raw(eventID, "2026-11-25T09:00:00+01:00", `{"b":1,"a":{"y":[1,2],"x":"é"}}`),
			"members reordered":    raw(eventID, "2026-11-25T08:00:00.000Z", `{"a":{"x":"\u00e9","y":[1,2]},"b":1}`),
			"upper-case event_id":  raw(strings.ToUpper(eventID), "2026-11-25T08:00:00Z", `{"b":1,"a":{"y":[1,2],"x":"é"}}`),
			"insignificant spaces": strings.ReplaceAll(original, ",", " ,\n "),
		} {
			dup := mustAccept(t, postEvent(e, admin, body), true)
			for _, k := range []string{"id", "event_id", "received_at", "timestamp"} {
				if dup[k] != first[k] {
					t.Errorf("%s: duplicate's %s = %v, want the first event's %v", name, k, dup[k], first[k])
				}
			}
		}
		sameTime(t, "duplicate's received_at", first["received_at"], received)
		if n := countEvents(t, e, admin); n != 1 {
			t.Fatalf("%d events stored after duplicates, want 1", n)
		}

		// Without a timestamp, a retry after the clock moved on is the same event, with the first timestamp.
		noTS := newEvent("no_timestamp")
		firstNoTS := mustAccept(t, postEvent(e, admin, noTS), false)
		e.clock.Advance(time.Minute)
		again := mustAccept(t, postEvent(e, admin, noTS), true)
		if again["id"] != firstNoTS["id"] || again["timestamp"] != firstNoTS["timestamp"] {
			t.Errorf("retry without timestamp: %v, want the first receipt %v", again, firstNoTS)
		}

		// The same event_id with another event: 409 conflict on /event_id, and the stored event is unchanged.
		var stored map[string]any
		must(t, json.Unmarshal([]byte(original), &stored))
		with := func(k string, v any) map[string]any {
			b := map[string]any{}
			for key, val := range stored {
				b[key] = val
			}
			if v == nil {
				delete(b, k)
			} else {
				b[k] = v
			}
			return b
		}
		for name, body := range map[string]map[string]any{
			"name":              with("event_name", "checkout2"),
			"category":          with("event_category", "Sales"),
			"timestamp":         with("timestamp", "2026-11-25T08:00:00.001Z"),
			"no timestamp":      with("timestamp", nil),
			"properties":        with("properties", map[string]any{"b": 2, "a": map[string]any{"y": []any{1, 2}, "x": "é"}}),
			"properties number": with("properties", map[string]any{"b": "1", "a": map[string]any{"y": []any{1, 2}, "x": "é"}}),
			"no properties":     with("properties", nil),
			"source":            with("source", "ios"),
			"no source":         with("source", nil),
			"user":              with("user_id", other.ID),
		} {
			r := postEvent(e, admin, body)
			expectProblem(t, r, http.StatusConflict, "conflict")
			if got := failingFields(t, r); !slices.Equal(got, []string{"/event_id"}) {
				t.Errorf("%s: conflict names %v, want /event_id", name, got)
			}
		}
		// The caller's own user_id spelled out is the same event as no user_id.
		mustAccept(t, postEvent(e, admin, with("user_id", e.admin.ID)), true)
		list := listAllEvents(t, e, admin, "", 0)
		if len(list) != 2 {
			t.Fatalf("%d events after conflicts, want 2", len(list))
		}
		for _, ev := range list {
			if ev["event_id"] == eventID && (ev["event_name"] != "checkout" || ev["source"] != "web" || ev["id"] != first["id"]) {
				t.Errorf("stored event changed by a conflict: %v", ev)
			}
		}

		// event_ids are per organization: org B may use the same one for its own event.
		bob, _ := e.loginAs(e.bob.Email, adminPassword)
		inB := mustAccept(t, postEvent(e, bob, original), false)
		if inB["id"] == first["id"] {
			t.Errorf("org B's event got org A's id")
		}
		if n := countEvents(t, e, admin); n != 2 {
			t.Errorf("org A has %d events after org B reused an event_id, want 2", n)
		}
		if n := countEvents(t, e, bob); n != 1 {
			t.Errorf("org B has %d events, want 1", n)
		}
	})
}

// TestTrackEventConcurrentDuplicates sends fifty identical requests at once: all are answered 202 with the same
// id, exactly one stores the event, and it is counted once. Then fifty requests with one event_id and two
// different bodies: one body wins, its requests get 202, the others 409, and nothing is a 5xx. Then fifty
// requests of two organizations with one event_id: each organization stores its own event once.
func TestTrackEventConcurrentDuplicates(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		const n = 50
		// concurrently sends the bodies at once, body i with token i mod len(tokens).
		concurrently := func(bodies [][]byte, tokens ...string) []resp {
			reqs := make([]*http.Request, len(bodies))
			out := make([]resp, len(bodies))
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, b := range bodies {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					reqs[i], out[i] = exchange(t, e.h, "POST", eventsPath, b, bearer(tokens[i%len(tokens)])...)
				}()
			}
			close(start)
			wg.Wait()
			for i := range out {
				checkResponse(t, reqs[i], out[i])
			}
			return out
		}

		same := newEvent("concurrent")
		raw, err := json.Marshal(same)
		must(t, err)
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = raw
		}
		out := concurrently(bodies, admin)
		ids := map[any]int{}
		fresh := 0
		for i, r := range out {
			if r.status != http.StatusAccepted {
				t.Fatalf("request %d: %d %s", i, r.status, r.body)
			}
			b := r.obj(t)
			ids[b["id"]]++
			if b["duplicate"] == false {
				fresh++
			}
		}
		if len(ids) != 1 || fresh != 1 {
			t.Errorf("%d concurrent identical requests: ids %v, %d not duplicate; want one id and exactly one stored", n, ids, fresh)
		}
		if c := eventIDCount(t, e, admin, same["event_id"].(string)); c != 1 {
			t.Errorf("%d rows for one event_id sent %d times at once", c, n)
		}

		// Counted once.
		waitUntil(t, countedWithin, "the event counted in the summary", func() (bool, string) {
			r := e.do("GET", summaryPath, nil, bearer(admin)...)
			return r.status == http.StatusOK && r.obj(t)["total"] == float64(1), string(r.body)
		})

		// Two bodies racing for one event_id.
		contested := uuid.NewString()
		a, err := json.Marshal(map[string]any{"event_id": contested, "event_name": "race_a", "event_category": "testing"})
		must(t, err)
		b, err := json.Marshal(map[string]any{"event_id": contested, "event_name": "race_b", "event_category": "testing"})
		must(t, err)
		for i := range bodies {
			bodies[i] = a
			if i%2 == 1 {
				bodies[i] = b
			}
		}
		out = concurrently(bodies, admin)
		list := listAllEvents(t, e, admin, "event_category=testing", 0)
		var winner map[string]any
		for _, ev := range list {
			if ev["event_id"] == contested {
				if winner != nil {
					t.Fatalf("event_id %s stored twice", contested)
				}
				winner = ev
			}
		}
		if winner == nil {
			t.Fatalf("contested event_id not stored at all")
		}
		fresh = 0
		for i, r := range out {
			wins := (i%2 == 0) == (winner["event_name"] == "race_a")
			switch {
			case wins && r.status == http.StatusAccepted:
				if r.obj(t)["id"] != winner["id"] {
					t.Errorf("request %d: receipt %s, want the stored event %v", i, r.body, winner["id"])
				}
				if r.obj(t)["duplicate"] == false {
					fresh++
				}
			case !wins && r.status == http.StatusConflict:
			default:
				t.Errorf("request %d (the %s body): %d %s", i, map[bool]string{true: "stored", false: "other"}[wins], r.status, r.body)
			}
		}
		if fresh != 1 {
			t.Errorf("%d receipts say they stored the contested event, want 1", fresh)
		}

		// Two organizations using one event_id at once: both events are stored, each once, even when their
		// requests share a transaction.
		bob, _ := e.loginAs(e.bob.Email, adminPassword)
		shared := newEvent("shared")
		raw, err = json.Marshal(shared)
		must(t, err)
		for i := range bodies {
			bodies[i] = raw
		}
		out = concurrently(bodies, admin, bob)
		ids = map[any]int{}
		for i, r := range out {
			if r.status != http.StatusAccepted {
				t.Fatalf("request %d of org %s: %d %s", i, map[bool]string{true: "A", false: "B"}[i%2 == 0], r.status, r.body)
			}
			ids[r.obj(t)["id"]]++
		}
		if len(ids) != 2 {
			t.Errorf("two organizations, one event_id: ids %v, want one per organization", ids)
		}
		for _, token := range []string{admin, bob} {
			if c := eventIDCount(t, e, token, shared["event_id"].(string)); c != 1 {
				t.Errorf("an organization has %d events with the shared event_id, want 1", c)
			}
		}
	})
}

func TestTrackEventValidation(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		valid := func() map[string]any { return map[string]any{"event_name": "n", "event_category": "c"} }
		with := func(kv ...any) map[string]any {
			b := valid()
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(b, kv[i].(string))
				} else {
					b[kv[i].(string)] = kv[i+1]
				}
			}
			return b
		}
		nest := func(levels int) map[string]any { // an object of the given depth: {"l2": {"l3": ...}}
			obj := map[string]any{}
			for l := levels; l > 1; l-- {
				obj = map[string]any{fmt.Sprintf("l%d", l): obj}
			}
			return obj
		}
		keys := func(n int) map[string]any {
			obj := map[string]any{}
			for i := range n {
				obj[fmt.Sprintf("k%03d", i)] = i
			}
			return obj
		}
		sized := func(n int) map[string]any { return map[string]any{"s": strings.Repeat("x", n-8)} } // {"s":"…"} is n bytes
		long := strings.Repeat("n", 129)
		deepPointer := "/properties/l2/l3/l4/l5/l6"

		cases := []struct {
			name string
			body any
			want []string
		}{
			{"no event_name and no event_category", map[string]any{"source": "web"}, []string{"/event_name", "/event_category"}},
			{"empty object", map[string]any{}, []string{"/event_name", "/event_category"}},
			{"empty event_name", with("event_name", ""), []string{"/event_name"}},
			{"129-character event_name", with("event_name", long), []string{"/event_name"}},
			{"129-character event_name of two-byte characters", with("event_name", strings.Repeat("é", 129)), []string{"/event_name"}},
			{"129-character event_category", with("event_category", long), []string{"/event_category"}},
			{"newline in event_name", with("event_name", "a\nb"), []string{"/event_name"}},
			{"NUL in event_name", with("event_name", "a\x00b"), []string{"/event_name"}},
			{"DEL in event_category", with("event_category", "a\x7fb"), []string{"/event_category"}},
			{"C1 control in event_name", with("event_name", "a\u0085b"), []string{"/event_name"}},
			{"tab in event_category", with("event_category", "a\tb"), []string{"/event_category"}},
			{"white space only event_name", with("event_name", "   "), []string{"/event_name"}},
			{"no-break spaces only event_category", with("event_category", "\u00a0\u3000"), []string{"/event_category"}},
			{"event_name not a string", with("event_name", 42), []string{"/event_name"}},
			{"event_name null", with("event_name", json.RawMessage("null")), []string{"/event_name"}},
			{"timestamp without zone", with("timestamp", "2026-11-25T08:00:00"), []string{"/timestamp"}},
			{"timestamp a date", with("timestamp", "2026-11-25"), []string{"/timestamp"}},
			{"timestamp a number", with("timestamp", 1764057600), []string{"/timestamp"}},
			{"timestamp not a time", with("timestamp", "yesterday"), []string{"/timestamp"}},
			{"timestamp before 2000", with("timestamp", "1999-12-31T23:59:59.999999Z"), []string{"/timestamp"}},
			{"timestamp before 2000 by its zone", with("timestamp", "2000-01-01T00:30:00+01:00"), []string{"/timestamp"}},
			{"timestamp more than 1 hour ahead", with("timestamp", "2026-11-25T10:00:00.001Z"), []string{"/timestamp"}},
			{"timestamp far ahead", with("timestamp", "2036-01-01T00:00:00Z"), []string{"/timestamp"}},
			{"properties a string", with("properties", "x"), []string{"/properties"}},
			{"properties an array", with("properties", []any{1}), []string{"/properties"}},
			{"properties a number", with("properties", 5), []string{"/properties"}},
			{"properties null", with("properties", json.RawMessage("null")), []string{"/properties"}},
			{"properties 6 levels deep", with("properties", nest(6)), []string{deepPointer}},
			{"properties 6 levels deep through arrays", with("properties", map[string]any{"a": []any{[]any{[]any{[]any{[]any{}}}}}}),
				[]string{"/properties/a/0/0/0/0"}},
			{"256 keys", with("properties", keys(256)), []string{"/properties"}},
			{"256 keys in a nested object", with("properties", map[string]any{"inner": keys(256)}), []string{"/properties/inner"}},
			{"properties over 32 KiB", with("properties", sized(32<<10+1)), []string{"/properties"}},
			{"NUL in a property value", with("properties", map[string]any{"a": "x\x00y"}), []string{"/properties/a"}},
			{"NUL in a nested property value", with("properties", map[string]any{"a": []any{"ok", "x\x00"}}), []string{"/properties/a/1"}},
			{"NUL in a property name", with("properties", map[string]any{"a\x00b": 1}), []string{"/properties"}},
			{"129-character source", with("source", long), []string{"/source"}},
			{"empty source", with("source", ""), []string{"/source"}},
			{"control character in source", with("source", "we\rb"), []string{"/source"}},
			{"unknown field", with("foo", "bar"), []string{"/foo"}},
			{"field in another case", with("Event_Name", "x"), []string{"/Event_Name"}},
			{"server-owned id", with("id", uuid.NewString()), []string{"/id"}},
			{"server-owned received_at", with("received_at", "2026-11-25T08:00:00Z"), []string{"/received_at"}},
			{"server-owned organization_id", with("organization_id", e.orgB.ID), []string{"/organization_id"}},
			{"server-owned organization", with("organization", map[string]any{"id": e.orgB.ID}), []string{"/organization"}},
			{"user_id not a UUID", with("user_id", "ada"), []string{"/user_id"}},
			{"user_id a number", with("user_id", 7), []string{"/user_id"}},
			{"event_id not a UUID", with("event_id", "not-a-uuid"), []string{"/event_id"}},
			{"event_id without dashes", with("event_id", strings.ReplaceAll(uuid.NewString(), "-", "")), []string{"/event_id"}},
			{"every schema failure at once", with("event_name", long, "event_category", " ", "timestamp", "2026-11-25 08:00",
				"properties", "x", "source", long, "user_id", "x", "event_id", "y", "id", "z", "received_at", "now", "organization_id", "o"),
				[]string{"/event_name", "/event_category", "/timestamp", "/properties", "/source", "/user_id", "/event_id", "/id",
					"/received_at", "/organization_id"}},
			{"every rule beyond the schema at once", with("timestamp", "1999-01-01T00:00:00Z",
				"properties", map[string]any{"deep": nest(5), "nul": "\x00", "many": keys(256)}),
				[]string{"/timestamp", "/properties/deep/l2/l3/l4/l5", "/properties/nul", "/properties/many"}},
			// A client must learn every failing field at once, also when some fail the schema and others the rules
			// beyond it.
			{"schema failures and rules beyond the schema together", with("event_name", long, "timestamp", "1999-01-01T00:00:00Z",
				"properties", nest(6)), []string{"/event_name", "/timestamp", deepPointer}},
			{"not an object", []any{valid()}, []string{""}},
			{"not JSON", "{event_name: x}", []string{""}},
			{"two JSON values", `{"event_name":"n","event_category":"c"} {}`, []string{""}},
			{"no body", nil, []string{""}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				expectInvalid(t, postEvent(e, admin, c.body), c.want...)
			})
		}
		if n := countEvents(t, e, admin); n != 0 {
			t.Fatalf("%d events stored by invalid requests", n)
		}

		// The limits themselves are accepted.
		now := e.clock.Now()
		ok := []struct {
			name string
			body map[string]any
		}{
			{"128-character event_name", with("event_name", strings.Repeat("n", 128))},
			{"128-character event_name of two-byte characters", with("event_name", strings.Repeat("é", 128))},
			{"128-character event_category", with("event_category", strings.Repeat("c", 128))},
			{"128-character source", with("source", strings.Repeat("s", 128))},
			{"inner and surrounding spaces", with("event_name", " signed up ", "event_category", " x ")},
			{"emoji and other scripts", with("event_name", "🚀 起動", "event_category", "ünïcödé")},
			{"timestamp 2000-01-01T00:00:00Z", with("timestamp", "2000-01-01T00:00:00Z")},
			{"timestamp exactly 1 hour ahead", with("timestamp", now.Add(time.Hour).Format(time.RFC3339Nano))},
			{"timestamp 1 hour ahead in another zone", with("timestamp", "2026-11-25T12:00:00+02:00")},
			{"timestamp with nanoseconds", with("timestamp", "2026-11-25T08:00:00.123456789Z")},
			{"properties 5 levels deep", with("properties", nest(5))},
			{"properties 5 levels deep through arrays", with("properties", map[string]any{"a": []any{[]any{[]any{[]any{}}}}})},
			{"255 keys", with("properties", keys(255))},
			{"255 keys in a nested object", with("properties", map[string]any{"inner": keys(255)})},
			{"properties of exactly 32 KiB", with("properties", sized(32<<10))},
			{"empty properties", with("properties", map[string]any{})},
			{"every optional field", with("event_id", uuid.NewString(), "timestamp", "2026-11-25T08:00:00Z",
				"properties", map[string]any{"k": "v"}, "user_id", e.admin.ID, "source", "s")},
		}
		for _, c := range ok {
			t.Run("accepts "+c.name, func(t *testing.T) {
				mustAccept(t, postEvent(e, admin, c.body), false)
			})
		}
		if n := countEvents(t, e, admin); n != len(ok) {
			t.Errorf("%d events stored, want %d", n, len(ok))
		}
	})
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

func TestTrackEventBodyLimit(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		const limit = 64 << 10
		// Exactly 64 KiB is accepted, with or without Content-Length.
		mustAccept(t, postEvent(e, admin, paddedEvent(t, limit)), false)
		mustAccept(t, postChunked(t, e, eventsPath, paddedEvent(t, limit), admin), false)

		// One byte more is 413, whether the size is declared or only found while reading.
		over := [][]byte{paddedEvent(t, limit+1)}
		big, err := json.Marshal(map[string]any{"event_id": uuid.NewString(), "event_name": "big", "event_category": "limits",
			"properties": map[string]any{"blob": strings.Repeat("x", 70<<10)}})
		must(t, err)
		over = append(over, big, bytes.Repeat([]byte("x"), 10<<20))
		for _, body := range over {
			expectProblem(t, postEvent(e, admin, body), http.StatusRequestEntityTooLarge, "payload_too_large")
			expectProblem(t, postChunked(t, e, eventsPath, body, admin), http.StatusRequestEntityTooLarge, "payload_too_large")
		}
		if n := countEvents(t, e, admin); n != 2 {
			t.Errorf("%d events stored, want the 2 of exactly 64 KiB", n)
		}
	})
}

// TestTrackEventUserID checks who may record events about whom: everyone about themselves, admins and analysts
// (events:write_any_user) about any user of their organization, managers and members about nobody else (403);
// a user_id outside the organization, or of no user, is 422 unknown_user for those allowed to name one.
func TestTrackEventUserID(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		us, tokens := roleUsers(t, e, "uid")
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		target := e.user(e.orgA.ID, "uid-target@a.example", nexus.RoleMember, hash)
		anyUser := map[nexus.Role]bool{nexus.RoleAdmin: true, nexus.RoleAnalyst: true}
		want := map[string]int{} // stored events per user

		for _, role := range []nexus.Role{nexus.RoleAdmin, nexus.RoleManager, nexus.RoleAnalyst, nexus.RoleMember} {
			tok, self := tokens[role], us[role].ID
			// Themselves: with no user_id, their own, or their own in upper case.
			for _, uid := range []any{nil, self, strings.ToUpper(self)} {
				body := newEvent("self")
				if uid != nil {
					body["user_id"] = uid
				}
				mustAccept(t, postEvent(e, tok, body), false)
				want[self]++
			}
			// Another user of the organization (also in upper case), the inactive one too.
			for _, uid := range []string{target.ID, strings.ToUpper(target.ID), e.idle.ID} {
				body := newEvent("other")
				body["user_id"] = uid
				r := postEvent(e, tok, body)
				if !anyUser[role] {
					expectProblem(t, r, http.StatusForbidden, "insufficient_permission")
					continue
				}
				mustAccept(t, r, false)
				want[strings.ToLower(uid)]++
			}
			// A user of org B, and no user at all.
			for _, uid := range []string{e.bob.ID, uuid.NewString()} {
				body := newEvent("unknown")
				body["user_id"] = uid
				r := postEvent(e, tok, body)
				if !anyUser[role] {
					expectProblem(t, r, http.StatusForbidden, "insufficient_permission")
					continue
				}
				expectProblem(t, r, http.StatusUnprocessableEntity, "unknown_user")
				if got := failingFields(t, r); !slices.Equal(got, []string{"/user_id"}) {
					t.Errorf("unknown_user names %v, want /user_id", got)
				}
				if strings.Contains(string(r.body), e.orgB.ID) {
					t.Errorf("unknown_user reveals org B: %s", r.body)
				}
			}
		}

		// Exactly the allowed events are stored, about the right users.
		got := map[string]int{}
		for _, ev := range listAllEvents(t, e, tokens[nexus.RoleAdmin], "", analytics.MaxListLimit) {
			got[ev["user_id"].(string)]++
			if ev["event_name"] == "unknown" {
				t.Errorf("an event about an unknown user was stored: %v", ev)
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("stored events per user (-want +got):\n%s", d)
		}
		bob, _ := e.loginAs(e.bob.Email, adminPassword)
		if n := countEvents(t, e, bob); n != 0 {
			t.Errorf("org B has %d events after org A named its user", n)
		}
	})
}

// TestEventsOrganizationFromToken checks that the organization of an event, of a listing and of a summary is
// always the token's: org A never sees org B's events, whatever it asks for.
func TestEventsOrganizationFromToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		bob, _ := e.loginAs(e.bob.Email, adminPassword)
		var aIDs, bIDs []string
		for i := range 3 {
			aIDs = append(aIDs, mustAccept(t, postEvent(e, admin, newEvent(fmt.Sprintf("a%d", i))), false)["id"].(string))
		}
		for i := range 2 {
			bIDs = append(bIDs, mustAccept(t, postEvent(e, bob, newEvent(fmt.Sprintf("b%d", i))), false)["id"].(string))
		}
		sort.Strings(aIDs)
		sort.Strings(bIDs)
		listed := func(token, query string) []string {
			ids := idsOf(listAllEvents(t, e, token, query, 0))
			sort.Strings(ids)
			return ids
		}
		if got := listed(admin, ""); !slices.Equal(got, aIDs) {
			t.Errorf("org A lists %v, want %v", got, aIDs)
		}
		if got := listed(bob, ""); !slices.Equal(got, bIDs) {
			t.Errorf("org B lists %v, want %v", got, bIDs)
		}
		// Filters naming org B's user, or org-like parameters, show nothing of org B.
		if got := listed(admin, "user_id="+e.bob.ID); len(got) != 0 {
			t.Errorf("org A listing by org B's user: %v", got)
		}
		if got := listed(admin, "organization_id="+e.orgB.ID); !slices.Equal(got, aIDs) {
			t.Errorf("org A listing with organization_id of org B: %v", got)
		}
		// A cursor of org A's listing used by org B pages org B's events only.
		r := e.do("GET", eventsPath+"?limit=1", nil, bearer(admin)...)
		cursor, _ := r.obj(t)["next_cursor"].(string)
		r = e.do("GET", eventsPath+"?cursor="+url.QueryEscape(cursor), nil, bearer(bob)...)
		if r.status != http.StatusOK {
			t.Fatalf("org B with org A's cursor: %d %s", r.status, r.body)
		}
		for _, d := range r.obj(t)["data"].([]any) {
			if !slices.Contains(bIDs, d.(map[string]any)["id"].(string)) {
				t.Errorf("org B with org A's cursor lists %v", d)
			}
		}
		// The summaries count each organization's own events.
		for token, want := range map[string]float64{admin: 3, bob: 2} {
			waitUntil(t, countedWithin, "summary of the token's organization", func() (bool, string) {
				r := e.do("GET", summaryPath, nil, bearer(token)...)
				return r.status == http.StatusOK && r.obj(t)["total"] == want, string(r.body)
			})
		}
		// Settled: processing again changes nothing.
		_, err := e.pipe.Processor.Drain(context.Background())
		must(t, err)
		for token, want := range map[string]float64{admin: 3, bob: 2} {
			if r := e.do("GET", summaryPath, nil, bearer(token)...); r.obj(t)["total"] != want {
				t.Errorf("summary total %v, want %v: %s", r.obj(t)["total"], want, r.body)
			}
		}
	})
}

// seededEvent is an event a test stored, as the listing must show it.
type seededEvent struct {
	id, eventID, name, category, source, user string
	ts                                        time.Time
}

// newestFirst sorts events as the listing does: by timestamp, then id, descending.
func newestFirst(evs []seededEvent) {
	sort.Slice(evs, func(i, j int) bool {
		if !evs[i].ts.Equal(evs[j].ts) {
			return evs[i].ts.After(evs[j].ts)
		}
		return evs[i].id > evs[j].id
	})
}

func seededIDs(evs []seededEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.id
	}
	return out
}

func TestListEventsFilters(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		us, tokens := roleUsers(t, e, "list")
		admin, member := tokens[nexus.RoleAdmin], us[nexus.RoleMember]
		base := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
		names := []string{"signup", "page_viewed", "purchase"}
		categories := []string{"onboarding", "navigation"}
		sources := []string{"web", "ios", ""}
		var events []any
		var seeded []seededEvent
		for i := range 60 {
			ev := seededEvent{eventID: uuid.NewString(), name: names[i%3], category: categories[i%2], source: sources[(i/3)%3],
				user: e.admin.ID, ts: base.Add(-time.Duration(i/2) * time.Minute)}
			body := map[string]any{"event_id": ev.eventID, "event_name": ev.name, "event_category": ev.category,
				"timestamp": ev.ts.Format(time.RFC3339Nano)}
			if ev.source != "" {
				body["source"] = ev.source
			}
			if i%4 == 0 {
				ev.user = member.ID
				body["user_id"] = member.ID
			}
			events = append(events, body)
			seeded = append(seeded, ev)
		}
		r := e.do("POST", batchPath, map[string]any{"events": events}, bearer(admin)...)
		if r.status != http.StatusAccepted || r.obj(t)["accepted"] != float64(60) {
			t.Fatalf("seed batch: %d %s", r.status, r.body)
		}
		for i, res := range r.obj(t)["results"].([]any) {
			seeded[i].id = res.(map[string]any)["id"].(string)
		}
		newestFirst(seeded)
		from, to := base.Add(-20*time.Minute), base.Add(-5*time.Minute)
		where := func(keep func(seededEvent) bool) []string {
			var out []seededEvent
			for _, ev := range seeded {
				if keep(ev) {
					out = append(out, ev)
				}
			}
			return seededIDs(out)
		}
		cases := []struct {
			query string
			want  []string
		}{
			{"", seededIDs(seeded)},
			{"event_name=signup", where(func(ev seededEvent) bool { return ev.name == "signup" })},
			{"event_category=navigation", where(func(ev seededEvent) bool { return ev.category == "navigation" })},
			{"user_id=" + member.ID, where(func(ev seededEvent) bool { return ev.user == member.ID })},
			{"user_id=" + strings.ToUpper(member.ID), where(func(ev seededEvent) bool { return ev.user == member.ID })},
			{"source=ios", where(func(ev seededEvent) bool { return ev.source == "ios" })},
			{"from=" + url.QueryEscape(from.Format(time.RFC3339)), where(func(ev seededEvent) bool { return !ev.ts.Before(from) })},
			{"to=" + url.QueryEscape(to.Format(time.RFC3339)), where(func(ev seededEvent) bool { return ev.ts.Before(to) })},
			{"from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339)),
				where(func(ev seededEvent) bool { return !ev.ts.Before(from) && ev.ts.Before(to) })},
			{"from=" + url.QueryEscape(from.In(time.FixedZone("", 5*3600+30*60)).Format(time.RFC3339)), // the same instant in another zone
				where(func(ev seededEvent) bool { return !ev.ts.Before(from) })},
			{"event_name=purchase&event_category=onboarding&source=web&user_id=" + e.admin.ID + "&from=" + url.QueryEscape(from.Format(time.RFC3339)),
				where(func(ev seededEvent) bool {
					return ev.name == "purchase" && ev.category == "onboarding" && ev.source == "web" && ev.user == e.admin.ID && !ev.ts.Before(from)
				})},
			{"event_name=nothing", nil},
			{"event_name=Signup", nil},
			{"user_id=" + uuid.NewString(), nil},
			{"from=" + url.QueryEscape(to.Format(time.RFC3339)) + "&to=" + url.QueryEscape(from.Format(time.RFC3339)), nil},
		}
		for _, c := range cases {
			for _, limit := range []int{0, 7, 500} {
				if got := idsOf(listAllEvents(t, e, admin, c.query, limit)); !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
					t.Errorf("?%s with limit %d: %d events %v\nwant %d %v", c.query, limit, len(got), got, len(c.want), c.want)
				}
			}
		}
		// The listed events carry what was sent.
		for _, ev := range listAllEvents(t, e, admin, "", 500) {
			var s seededEvent
			for _, x := range seeded {
				if x.id == ev["id"] {
					s = x
				}
			}
			var source any
			if s.source != "" {
				source = s.source
			}
			got := []any{ev["event_id"], ev["event_name"], ev["event_category"], ev["source"], ev["user_id"]}
			if want := []any{s.eventID, s.name, s.category, source, s.user}; !cmp.Equal(got, want) {
				t.Errorf("listed %v, want %v", got, want)
			}
			sameTime(t, "listed timestamp", ev["timestamp"], s.ts)
		}
	})
}

func TestListEventsParameters(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		_, tokens := roleUsers(t, e, "params")
		admin := tokens[nexus.RoleAdmin]
		for i := range 3 {
			mustAccept(t, postEvent(e, admin, newEvent(fmt.Sprintf("p%d", i))), false)
		}
		enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		valid := listAllEvents(t, e, admin, "", 1)
		if len(valid) != 3 {
			t.Fatalf("%d events", len(valid))
		}
		for name, query := range map[string]string{
			"limit 0":                    "limit=0",
			"limit 501":                  "limit=501",
			"limit -1":                   "limit=-1",
			"limit not a number":         "limit=ten",
			"limit a fraction":           "limit=1.5",
			"limit twice":                "limit=1&limit=2",
			"cursor empty":               "cursor=",
			"cursor not base64":          "cursor=" + url.QueryEscape("!!not a cursor!!"),
			"cursor of garbage":          "cursor=" + enc("garbage"),
			"cursor without an id":       "cursor=" + enc("1764057600000000_"),
			"cursor with a bad id":       "cursor=" + enc("1764057600000000_not-a-uuid"),
			"cursor with a bad time":     "cursor=" + enc("soon_"+uuid.NewString()),
			"cursor before 2000":         "cursor=" + enc("-5_"+uuid.NewString()),
			"cursor with padding":        "cursor=" + url.QueryEscape(enc("1764057600000000_"+uuid.NewString())+"=="),
			"cursor over 200 characters": "cursor=" + strings.Repeat("A", 201),
		} {
			field := "?limit"
			if strings.HasPrefix(name, "cursor") {
				field = "?cursor"
			}
			t.Run(name, func(t *testing.T) {
				expectInvalid(t, e.do("GET", eventsPath+"?"+query, nil, bearer(admin)...), field)
			})
		}
		for name, c := range map[string]struct{ query, field string }{
			"user_id not a UUID":           {"user_id=ada", "?user_id"},
			"from not a time":              {"from=yesterday", "?from"},
			"from without zone":            {"from=2026-11-25T08:00:00", "?from"},
			"to a date":                    {"to=2026-11-25", "?to"},
			"event_name of 129 characters": {"event_name=" + strings.Repeat("n", 129), "?event_name"},
			"event_category empty":         {"event_category=", "?event_category"},
			"source with a control":        {"source=a%0Ab", "?source"},
		} {
			t.Run(name, func(t *testing.T) {
				expectInvalid(t, e.do("GET", eventsPath+"?"+c.query, nil, bearer(admin)...), c.field)
			})
		}
		// Several failing parameters are all named.
		expectInvalid(t, e.do("GET", eventsPath+"?limit=0&user_id=x&from=never", nil, bearer(admin)...), "?limit", "?user_id", "?from")

		// The bounds themselves are accepted.
		for _, limit := range []int{1, 500} {
			if r := e.do("GET", eventsPath+"?limit="+strconv.Itoa(limit), nil, bearer(admin)...); r.status != http.StatusOK {
				t.Errorf("limit=%d: %d %s", limit, r.status, r.body)
			}
		}

		// analytics:read is needed: admins, managers and analysts list; members get 403; no token 401.
		for role, status := range map[nexus.Role]int{nexus.RoleAdmin: 200, nexus.RoleManager: 200, nexus.RoleAnalyst: 200, nexus.RoleMember: 403} {
			for _, path := range []string{eventsPath, eventsPath + "?limit=0", summaryPath, summaryPath + "?from=x"} {
				r := e.do("GET", path, nil, bearer(tokens[role])...)
				switch {
				case status == 403:
					expectProblem(t, r, http.StatusForbidden, "insufficient_permission")
				case strings.Contains(path, "="):
					expectProblem(t, r, http.StatusBadRequest, "validation_failed")
				case r.status != http.StatusOK:
					t.Errorf("%s as %s: %d %s", path, role, r.status, r.body)
				}
			}
		}
		for _, path := range []string{eventsPath, summaryPath} {
			expectProblem(t, e.do("GET", path, nil), http.StatusUnauthorized, "unauthenticated")
		}
	})
}

func TestAnalyticsSummary(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		_, tokens := roleUsers(t, e, "sum")
		admin := tokens[nexus.RoleAdmin]
		bob, _ := e.loginAs(e.bob.Email, adminPassword)
		type sent struct {
			ts, name, category string
			n                  int
		}
		var events []any
		for _, s := range []sent{
			{"2026-11-25T08:00:00Z", "signup", "onboarding", 3},
			{"2026-11-25T08:30:00Z", "signup", "marketing", 1},
			{"2026-11-25T09:30:00Z", "page_viewed", "navigation", 1},      // ahead of the clock, still today
			{"2026-11-24T23:59:59.999Z", "page_viewed", "navigation", 2},  // the last instant of yesterday
			{"2026-11-24T12:00:00+14:00", "page_viewed", "navigation", 1}, // 2026-11-23T22:00Z: counted by its UTC day
			{"2026-10-27T00:00:00Z", "signup", "onboarding", 1},           // the first day of the default range
			{"2026-10-26T23:59:59Z", "signup", "onboarding", 1},           // the day before it
			{"2025-11-25T00:00:00Z", "purchase", "sales", 1},              // 366 days before today, inclusive
			{"2025-11-24T12:00:00Z", "purchase", "sales", 1},              // 367 days
		} {
			for range s.n {
				events = append(events, map[string]any{"event_id": uuid.NewString(), "event_name": s.name, "event_category": s.category,
					"timestamp": s.ts})
			}
		}
		r := e.do("POST", batchPath, map[string]any{"events": events}, bearer(admin)...)
		if r.status != http.StatusAccepted || r.obj(t)["accepted"] != float64(len(events)) {
			t.Fatalf("batch: %d %s", r.status, r.body)
		}
		// One event sent alone, and org B's events, which org A never counts.
		mustAccept(t, postEvent(e, admin, map[string]any{"event_name": "signup", "event_category": "onboarding"}), false)
		for range 4 {
			mustAccept(t, postEvent(e, bob, map[string]any{"event_name": "signup", "event_category": "onboarding"}), false)
		}
		accepted := time.Now()
		const total = 13

		summary := func(query string) map[string]any {
			t.Helper()
			r := e.do("GET", summaryPath+"?"+query, nil, bearer(admin)...)
			if r.status != http.StatusOK {
				t.Fatalf("summary ?%s: %d %s", query, r.status, r.body)
			}
			if cc := r.header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("summary Cache-Control = %q", cc)
			}
			return r.obj(t)
		}
		// Every event is counted within 2 s of its 202.
		waitUntil(t, countedWithin-time.Since(accepted), "every event counted in the summary", func() (bool, string) {
			year, before := summary("from=2025-11-25&to=2026-11-25"), summary("from=2025-11-24&to=2025-11-24")
			return year["total"] == float64(total-1) && before["total"] == float64(1), fmt.Sprint(year, before)
		})
		_, err := e.pipe.Processor.Drain(context.Background())
		must(t, err)

		row := func(date, name, category string, count int) map[string]any {
			return map[string]any{"date": date, "event_name": name, "event_category": category, "count": count}
		}
		defaultRows := []any{
			row("2026-10-27", "signup", "onboarding", 1),
			row("2026-11-23", "page_viewed", "navigation", 1),
			row("2026-11-24", "page_viewed", "navigation", 2),
			row("2026-11-25", "page_viewed", "navigation", 1),
			row("2026-11-25", "signup", "marketing", 1),
			row("2026-11-25", "signup", "onboarding", 4),
		}
		cases := []struct {
			query    string
			from, to string
			data     []any
		}{
			{"", "2026-10-27", "2026-11-25", defaultRows},
			{"to=2026-11-25", "2026-10-27", "2026-11-25", defaultRows},
			{"from=2026-10-27", "2026-10-27", "2026-11-25", defaultRows},
			{"to=2026-11-24", "2026-10-26", "2026-11-24", []any{
				row("2026-10-26", "signup", "onboarding", 1),
				row("2026-10-27", "signup", "onboarding", 1),
				row("2026-11-23", "page_viewed", "navigation", 1),
				row("2026-11-24", "page_viewed", "navigation", 2),
			}},
			{"from=2026-11-24&to=2026-11-24", "2026-11-24", "2026-11-24", []any{row("2026-11-24", "page_viewed", "navigation", 2)}},
			{"from=2025-11-25&to=2026-11-25", "2025-11-25", "2026-11-25", append([]any{
				row("2025-11-25", "purchase", "sales", 1),
				row("2026-10-26", "signup", "onboarding", 1),
			}, defaultRows...)},
			{"event_name=signup", "2026-10-27", "2026-11-25", []any{
				row("2026-10-27", "signup", "onboarding", 1),
				row("2026-11-25", "signup", "marketing", 1),
				row("2026-11-25", "signup", "onboarding", 4),
			}},
			{"event_category=navigation&from=2026-11-24", "2026-11-24", "2026-11-25", []any{
				row("2026-11-24", "page_viewed", "navigation", 2),
				row("2026-11-25", "page_viewed", "navigation", 1),
			}},
			{"event_name=signup&event_category=onboarding&from=2026-11-25", "2026-11-25", "2026-11-25", []any{
				row("2026-11-25", "signup", "onboarding", 4),
			}},
			{"event_name=Signup", "2026-10-27", "2026-11-25", []any{}},
			{"from=2027-01-01&to=2027-01-31", "2027-01-01", "2027-01-31", []any{}},
		}
		for _, c := range cases {
			got := summary(c.query)
			sum := 0
			for _, d := range c.data {
				sum += d.(map[string]any)["count"].(int)
			}
			want := map[string]any{"from": c.from, "to": c.to, "total": sum, "data": c.data}
			sameJSON(t, "summary ?"+c.query, got, want)
		}

		// Ranges: from after to, more than 366 days, and dates that are not dates.
		for query, field := range map[string]string{
			"from=2026-11-25&to=2026-11-24": "?from",
			"from=2025-11-24&to=2026-11-25": "?from",
			"from=2024-01-01":               "?from",
			"to=2026-12-01&from=2000-01-01": "?from",
			"from=2026-13-01":               "?from",
			"from=2026-11-25T00:00:00Z":     "?from",
			"to=yesterday":                  "?to",
			"event_name=":                   "?event_name",
		} {
			expectInvalid(t, e.do("GET", summaryPath+"?"+query, nil, bearer(admin)...), field)
		}
		// 366 days inclusive is the most.
		if s := summary("from=2025-11-25&to=2026-11-25"); s["total"] != float64(total-1) {
			t.Errorf("366-day summary total %v, want %d", s["total"], total-1)
		}
	})
}

func TestUserActivityEvents(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		us, tokens := roleUsers(t, e, "act")
		admin, member := tokens[nexus.RoleAdmin], us[nexus.RoleMember]
		activity := func(token, userID string) map[string]any {
			t.Helper()
			r := e.do("GET", "/v2/users/"+userID+"?include_activity=true", nil, bearer(token)...)
			if r.status != http.StatusOK {
				t.Fatalf("user with activity: %d %s", r.status, r.body)
			}
			return r.obj(t)["activity"].(map[string]any)["events"].(map[string]any)
		}
		sameJSON(t, "events of a user without any", activity(admin, member.ID),
			map[string]any{"total": 0, "last_event_at": nil, "last_30_days": []any{}})

		// The member's latest event first, counted before older ones arrive: the latest stays the latest.
		latest := map[string]any{"event_id": uuid.NewString(), "event_name": "n", "event_category": "c", "timestamp": "2026-11-25T08:00:00Z"}
		mustAccept(t, postEvent(e, tokens[nexus.RoleMember], latest), false)
		waitUntil(t, countedWithin, "the first event in the user's activity", func() (bool, string) {
			a := activity(admin, member.ID)
			return a["total"] == float64(1), fmt.Sprint(a)
		})

		send := func(token string, ts string, forMember bool) {
			body := map[string]any{"event_id": uuid.NewString(), "event_name": "n", "event_category": "c", "timestamp": ts}
			if forMember {
				body["user_id"] = member.ID
			}
			mustAccept(t, postEvent(e, token, body), false)
		}
		send(tokens[nexus.RoleMember], "2026-11-25T07:00:00Z", false)
		send(tokens[nexus.RoleMember], "2026-11-20T10:00:00Z", false)
		send(admin, "2026-10-27T00:00:00Z", true) // the first of the 30 days
		send(admin, "2026-10-26T23:59:59Z", true) // the day before: in the total only
		send(tokens[nexus.RoleAnalyst], "2026-09-01T00:00:00Z", true)
		send(admin, "2026-11-25T08:30:00Z", false) // the admin's own events are not the member's
		send(admin, "2026-11-25T08:45:00Z", false)
		mustAccept(t, postEvent(e, tokens[nexus.RoleMember], latest), true) // a duplicate counts once
		accepted := time.Now()

		want := map[string]any{"total": 6, "last_event_at": "2026-11-25T08:00:00Z", "last_30_days": []any{
			map[string]any{"date": "2026-10-27", "count": 1},
			map[string]any{"date": "2026-11-20", "count": 1},
			map[string]any{"date": "2026-11-25", "count": 2},
		}}
		waitUntil(t, countedWithin-time.Since(accepted), "every event in the user's activity", func() (bool, string) {
			a, own := activity(admin, member.ID), activity(admin, e.admin.ID)
			return a["total"] == float64(6) && own["total"] == float64(2), fmt.Sprint(a, own)
		})
		_, err := e.pipe.Processor.Drain(context.Background())
		must(t, err)
		for name, a := range map[string]map[string]any{
			"read by an admin":  activity(admin, member.ID),
			"read by a manager": activity(tokens[nexus.RoleManager], member.ID),
			"read by the user":  activity(tokens[nexus.RoleMember], member.ID),
		} {
			got := map[string]any{"total": a["total"], "last_30_days": a["last_30_days"]}
			sameJSON(t, name, got, map[string]any{"total": want["total"], "last_30_days": want["last_30_days"]})
			sameTime(t, name+": last_event_at", a["last_event_at"], time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC))
		}
		a := activity(admin, e.admin.ID)
		if a["total"] != float64(2) {
			t.Errorf("admin's own events: %v", a)
		}
		sameTime(t, "admin's last_event_at", a["last_event_at"], time.Date(2026, 11, 25, 8, 45, 0, 0, time.UTC))
		if a := activity(admin, e.idle.ID); a["total"] != float64(0) {
			t.Errorf("a user without events: %v", a)
		}

		// The 30 days move with the clock: two days on, 2026-10-27 has left the window.
		e.clock.Advance(48 * time.Hour)
		admin, _ = e.tokens(webClient)
		a = activity(admin, member.ID)
		sameJSON(t, "events 2 days later", a["last_30_days"], []any{
			map[string]any{"date": "2026-11-20", "count": 1},
			map[string]any{"date": "2026-11-25", "count": 2},
		})
		if a["total"] != float64(6) {
			t.Errorf("total 2 days later %v, want 6", a["total"])
		}
	})
}

// readyEvents returns the events member of the /readyz body of e.
func readyEvents(t testing.TB, e *env) map[string]any {
	t.Helper()
	r := e.do("GET", "/readyz", nil)
	if r.status != http.StatusOK {
		t.Fatalf("/readyz: %d %s", r.status, r.body)
	}
	ev, ok := r.obj(t)["events"].(map[string]any)
	if !ok {
		t.Fatalf("/readyz without events: %s", r.body)
	}
	return ev
}

// metricValues returns the nexus_events_* samples of /metrics, checking that each has HELP and TYPE lines.
func metricValues(t testing.TB, e *env) map[string]float64 {
	t.Helper()
	r := e.do("GET", "/metrics", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	out := map[string]float64{}
	described := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(r.body)), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			described[strings.Fields(rest)[0]] = true
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "nexus_events_") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		if !described[name] {
			t.Errorf("metric %s has no TYPE line", name)
		}
		out[name] = v
	}
	return out
}

func TestEventsReadinessAndMetrics(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		ev := readyEvents(t, e)
		for _, k := range []string{"write_queue", "backlog", "lag_seconds", "processor_failing", "stored_total", "processed_total",
			"refused_total", "duplicates_total", "commits_total"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("/readyz events without %s: %v", k, ev)
			}
		}
		m := metricValues(t, e)
		for _, name := range []string{"nexus_events_write_queue", "nexus_events_backlog", "nexus_events_processing_lag_seconds",
			"nexus_events_stored_total", "nexus_events_duplicates_total", "nexus_events_refused_total", "nexus_events_commits_total",
			"nexus_events_processed_total", "nexus_events_processor_failing"} {
			if _, ok := m[name]; !ok {
				t.Errorf("/metrics without %s", name)
			}
		}

		dup := newEvent("counted")
		mustAccept(t, postEvent(e, admin, dup), false)
		mustAccept(t, postEvent(e, admin, dup), true)
		mustAccept(t, postEvent(e, admin, newEvent("counted")), false)
		waitUntil(t, countedWithin, "the events processed, in /readyz and /metrics", func() (bool, string) {
			ev, m := readyEvents(t, e), metricValues(t, e)
			return ev["processed_total"] == float64(2) && ev["backlog"] == float64(0) && m["nexus_events_processed_total"] == 2,
				fmt.Sprint(ev, m)
		})
		ev, m = readyEvents(t, e), metricValues(t, e)
		want := map[string]float64{"write_queue": 0, "backlog": 0, "lag_seconds": 0, "stored_total": 2, "duplicates_total": 1,
			"refused_total": 0, "processed_total": 2}
		for k, v := range want {
			if ev[k] != v {
				t.Errorf("/readyz events.%s = %v, want %v", k, ev[k], v)
			}
			name := "nexus_events_" + strings.Replace(k, "lag_seconds", "processing_lag_seconds", 1)
			if m[name] != v {
				t.Errorf("%s = %v, want %v", name, m[name], v)
			}
		}
		if ev["processor_failing"] != false || m["nexus_events_processor_failing"] != 0 {
			t.Errorf("processor failing: %v %v", ev["processor_failing"], m["nexus_events_processor_failing"])
		}
		if c, _ := ev["commits_total"].(float64); c < 1 || c > 3 {
			t.Errorf("commits_total %v after 3 requests", ev["commits_total"])
		}
		sameTime(t, "processor_checked_at", ev["processor_checked_at"], e.clock.Now())
	})
}

// heldStore is an events store whose inserts can be held until released, as a slow database holds them, and
// whose processing can be made to fail.
type heldStore struct {
	analytics.Store
	holdInserts bool  // InsertEvents waits for open
	failProcess error // ProcessEvents fails with it, if set
	release     chan struct{}
	once        sync.Once
	mu          sync.Mutex
	calls, held int // inserts held so far, and their events
}

func newHeldStore(holdInserts bool, failProcess error) *heldStore {
	return &heldStore{holdInserts: holdInserts, failProcess: failProcess, release: make(chan struct{})}
}

// open releases the held inserts and holds no more.
func (h *heldStore) open() { h.once.Do(func() { close(h.release) }) }

func (h *heldStore) InsertEvents(ctx context.Context, events []analytics.Pending) ([]analytics.Outcome, error) {
	if h.holdInserts {
		h.mu.Lock()
		h.calls++
		h.held += len(events)
		h.mu.Unlock()
		select {
		case <-h.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return h.Store.InsertEvents(ctx, events)
}

func (h *heldStore) ProcessEvents(ctx context.Context, limit int) (int, error) {
	if h.failProcess != nil {
		return 0, h.failProcess
	}
	return h.Store.ProcessEvents(ctx, limit)
}

func (h *heldStore) state() (calls, held int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, h.held
}

// heldInstance returns a second server instance over e's database whose writer queues at most queue events
// (0: the default) and whose events store is h.
func heldInstance(t testing.TB, e *env, queue int, h *heldStore) *env {
	t.Helper()
	c := *e
	c.queue = queue
	c.wrapEvents = func(s analytics.Store) analytics.Store { h.Store = s; return h }
	n := c.instance()
	t.Cleanup(h.open) // before the instance's pipeline closes: cleanups run last first
	return n
}

// TestTrackEventQueueFull fills the write queue of an instance whose database is slow: the next event is
// answered 503 unavailable with Retry-After, stores nothing, shows in /readyz and /metrics, and its retry once
// the queue drains is stored exactly once.
func TestTrackEventQueueFull(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		h := newHeldStore(true, nil)
		small := heldInstance(t, e, 1, h)

		// Requests in flight until both workers are stuck in a transaction and one event waits in the queue.
		type flight struct {
			body map[string]any
			req  *http.Request
			r    resp
		}
		var flights []*flight
		var wg sync.WaitGroup
		for i := 0; ; i++ {
			if i == 10 {
				t.Fatal("the write queue does not fill")
			}
			f := &flight{body: newEvent(fmt.Sprintf("held%d", i))}
			raw, err := json.Marshal(f.body)
			must(t, err)
			flights = append(flights, f)
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.req, f.r = exchange(t, small.h, "POST", eventsPath, raw, bearer(admin)...)
			}()
			var queued int
			waitUntil(t, 2*time.Second, "the event held or queued", func() (bool, string) {
				calls, held := h.state()
				queued = small.pipe.WriterStats().Queued
				return held+queued == i+1 && (queued == 0 || calls == 2), fmt.Sprintf("calls %d, held %d, queued %d", calls, held, queued)
			})
			if queued == 1 {
				break
			}
		}

		// Refused at once, not after waiting for room.
		refused := newEvent("refused")
		asked := time.Now()
		r := small.do("POST", eventsPath, refused, bearer(admin)...)
		expectProblem(t, r, http.StatusServiceUnavailable, "unavailable")
		if d := time.Since(asked); d > time.Second {
			t.Errorf("a full queue was answered after %v, want at once", d)
		}
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("Retry-After = %q, want a number of seconds", r.header.Get("Retry-After"))
		}
		// A batch that does not fit is refused whole.
		rb := small.do("POST", batchPath, map[string]any{"events": []any{newEvent("refused_batch"), newEvent("refused_batch")}}, bearer(admin)...)
		expectProblem(t, rb, http.StatusServiceUnavailable, "unavailable")
		if rb.header.Get("Retry-After") == "" {
			t.Errorf("batch 503 without Retry-After")
		}
		// The queue and the refusals are visible.
		ev, m := readyEvents(t, small), metricValues(t, small)
		if ev["write_queue"] != float64(1) || m["nexus_events_write_queue"] != 1 {
			t.Errorf("write queue in /readyz %v and /metrics %v, want 1", ev["write_queue"], m["nexus_events_write_queue"])
		}
		if ev["refused_total"] != float64(3) || m["nexus_events_refused_total"] != 3 {
			t.Errorf("refused events in /readyz %v and /metrics %v, want 3", ev["refused_total"], m["nexus_events_refused_total"])
		}

		// The database catches up: every request in flight is stored, the refused ones are not.
		h.open()
		wg.Wait()
		for _, f := range flights {
			checkResponse(t, f.req, f.r)
			got := mustAccept(t, f.r, false)
			if got["event_id"] != f.body["event_id"] {
				t.Errorf("receipt %v for event %v", got, f.body["event_id"])
			}
		}
		list := listAllEvents(t, e, admin, "", 0)
		if len(list) != len(flights) {
			t.Errorf("%d events stored, want the %d in flight", len(list), len(flights))
		}
		for _, ev := range list {
			if ev["event_id"] == refused["event_id"] || ev["event_name"] == "refused_batch" {
				t.Errorf("a refused event was stored: %v", ev)
			}
		}

		// The retry is stored, exactly once.
		first := mustAccept(t, small.do("POST", eventsPath, refused, bearer(admin)...), false)
		again := mustAccept(t, small.do("POST", eventsPath, refused, bearer(admin)...), true)
		if again["id"] != first["id"] {
			t.Errorf("second retry %v, want the first %v", again, first)
		}
		if c := eventIDCount(t, e, admin, refused["event_id"].(string)); c != 1 {
			t.Errorf("refused then retried event stored %d times", c)
		}
		if ev := readyEvents(t, small); ev["write_queue"] != float64(0) {
			t.Errorf("write_queue after the queue drained: %v", ev["write_queue"])
		}
	})
}

// TestEventsLagWhileProcessingFails checks that /readyz and /metrics show the backlog and its age when the
// processor cannot process: that is when they matter.
func TestEventsLagWhileProcessingFails(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		e.pipe.Processor.Stop() // the failing instance's processor is the only one left
		h := newHeldStore(false, nexus.Unavailable(errors.New("rollups unavailable")))
		failing := heldInstance(t, e, 0, h)
		for range 3 {
			mustAccept(t, postEvent(failing, admin, newEvent("waiting")), false)
		}
		e.clock.Advance(2 * time.Minute)
		// The processor retries with a backoff of at most 5 s: within 6 s it has looked again.
		waitUntil(t, 6*time.Second, "/readyz and /metrics showing the 3 waiting events and their 120 s lag while processing fails "+
			"(backlog and lag must not freeze at their last good values)", func() (bool, string) {
			ev, m := readyEvents(t, failing), metricValues(t, failing)
			lag, _ := ev["lag_seconds"].(float64)
			return ev["processor_failing"] == true && m["nexus_events_processor_failing"] == 1 &&
				ev["backlog"] == float64(3) && m["nexus_events_backlog"] == 3 &&
				lag >= 120 && m["nexus_events_processing_lag_seconds"] >= 120, fmt.Sprint("/readyz ", ev, "; /metrics ", m)
		})
	})
}
