package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The tests of POST /v2/analytics/events: receipts, idempotency by event_id, concurrent duplicates. What it
// rejects is in events_track_validation_test.go, user_id and the organization in events_track_attribution_test.go,
// backpressure in events_pipeline_test.go, batches in events_batch_test.go; the shared helpers are in
// helpers_events_test.go.

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
