package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The tests of POST /v2/analytics/events/batch.

// postBatch sends a batch with the access token.
func postBatch(e *env, token string, body any) resp {
	e.t.Helper()
	return e.do("POST", batchPath, body, bearer(token)...)
}

// batchItem is one event of a batch with what must become of it.
type batchItem struct {
	body   any
	status string   // accepted, duplicate or rejected
	code   string   // the error code of a rejected event
	fields []string // the pointers its error names, from the body's root
	sameAs string   // a duplicate's receipt: the id it must carry
}

// checkBatch fails unless r is a 202 batch result that says, at every index, what items says.
func checkBatch(t testing.TB, r resp, items []batchItem) []map[string]any {
	t.Helper()
	if r.status != http.StatusAccepted {
		t.Fatalf("batch: %d %s", r.status, r.body)
	}
	b := r.obj(t)
	results := b["results"].([]any)
	if len(results) != len(items) {
		t.Fatalf("%d results for %d events: %s", len(results), len(items), r.body)
	}
	counts := map[string]float64{}
	out := make([]map[string]any, len(results))
	for i, x := range results {
		res := x.(map[string]any)
		out[i] = res
		it := items[i]
		counts[it.status]++
		if res["index"] != float64(i) || res["status"] != it.status {
			t.Errorf("result %d: %v, want index %d status %s", i, res, i, it.status)
			continue
		}
		if it.status == "rejected" {
			e, _ := res["error"].(map[string]any)
			if e == nil || e["code"] != it.code {
				t.Errorf("result %d: %v, want error %s", i, res, it.code)
				continue
			}
			var got []string
			errs, _ := e["errors"].([]any)
			for _, fe := range errs {
				got = append(got, fe.(map[string]any)["pointer"].(string))
			}
			sort.Strings(got)
			want := slices.Clone(it.fields)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("result %d: error names %q, want %q", i, got, want)
			}
			if it.code == "validation_failed" {
				noun := "fields"
				if len(it.fields) == 1 {
					noun = "field"
				}
				if d := fmt.Sprintf("The event has %d invalid %s.", len(it.fields), noun); e["detail"] != d {
					t.Errorf("result %d: detail %q, want %q", i, e["detail"], d)
				}
			}
			for _, k := range []string{"id", "event_id", "received_at", "timestamp"} {
				if _, ok := res[k]; ok {
					t.Errorf("rejected result %d has %s: %v", i, k, res)
				}
			}
			continue
		}
		if _, ok := res["error"]; ok {
			t.Errorf("result %d (%s) has an error: %v", i, it.status, res)
		}
		for _, k := range []string{"id", "event_id", "received_at", "timestamp"} {
			if _, ok := res[k]; !ok {
				t.Errorf("result %d (%s) without %s: %v", i, it.status, k, res)
			}
		}
		if m, ok := it.body.(map[string]any); ok && m["event_id"] != nil && res["event_id"] != strings.ToLower(m["event_id"].(string)) {
			t.Errorf("result %d: event_id %v, want %v", i, res["event_id"], m["event_id"])
		}
		if it.sameAs != "" && res["id"] != it.sameAs {
			t.Errorf("result %d: id %v, want the stored event's %s", i, res["id"], it.sameAs)
		}
	}
	for k, name := range map[string]string{"accepted": "accepted", "duplicate": "duplicates", "rejected": "rejected"} {
		if b[name] != counts[k] {
			t.Errorf("%s = %v, want %v", name, b[name], counts[k])
		}
	}
	return out
}

func eventsOf(items []batchItem) []any {
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = it.body
	}
	return out
}

// TestTrackEventBatch sends a batch of every kind of event: each is judged on its own, the valid ones are
// stored, and the results say per index what became of each. Sent again, nothing new is stored.
func TestTrackEventBatch(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		member := e.user(e.orgA.ID, "batch-member@a.example", nexus.RoleMember, hash)
		prior := map[string]any{"event_id": uuid.NewString(), "event_name": "prior", "event_category": "testing",
			"timestamp": "2026-11-25T07:00:00Z"}
		priorID := mustAccept(t, postEvent(e, admin, prior), false)["id"].(string)

		ev := func(kv ...any) map[string]any {
			b := newEvent("batched")
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] == nil {
					delete(b, kv[i].(string))
				} else {
					b[kv[i].(string)] = kv[i+1]
				}
			}
			return b
		}
		deep := map[string]any{"l2": map[string]any{"l3": map[string]any{"l4": map[string]any{"l5": map[string]any{"l6": map[string]any{}}}}}}
		twice := uuid.NewString()
		conflicting := map[string]any{}
		for k, v := range prior {
			conflicting[k] = v
		}
		conflicting["event_name"] = "not prior"
		items := []batchItem{
			{body: ev(), status: "accepted"},
			{body: prior, status: "duplicate", sameAs: priorID},
			{body: ev("event_name", nil, "source", strings.Repeat("s", 129)), status: "rejected", code: "validation_failed",
				fields: []string{"/events/2/event_name", "/events/2/source"}},
			{body: ev("timestamp", "1999-01-01T00:00:00Z", "properties", deep), status: "rejected", code: "validation_failed",
				fields: []string{"/events/3/timestamp", "/events/3/properties/l2/l3/l4/l5/l6"}},
			{body: ev("user_id", uuid.NewString()), status: "rejected", code: "unknown_user", fields: []string{"/events/4/user_id"}},
			{body: conflicting, status: "rejected", code: "conflict", fields: []string{"/events/5/event_id"}},
			{body: ev("event_id", twice, "event_name", "first"), status: "accepted"},
			{body: ev("event_id", twice, "event_name", "second"), status: "rejected", code: "conflict", fields: []string{"/events/7/event_id"}},
			{body: ev("event_id", strings.ToUpper(twice), "event_name", "first"), status: "duplicate"},
			{body: 42, status: "rejected", code: "validation_failed", fields: []string{"/events/9"}},
			{body: ev("id", uuid.NewString(), "received_at", "2026-11-25T09:00:00Z"), status: "rejected", code: "validation_failed",
				fields: []string{"/events/10/id", "/events/10/received_at"}},
			{body: ev("user_id", member.ID, "properties", map[string]any{"k": "v"}), status: "accepted"},
			{body: ev("user_id", e.bob.ID), status: "rejected", code: "unknown_user", fields: []string{"/events/12/user_id"}},
			{body: ev("event_name", "a\x00b", "event_category", "   "), status: "rejected", code: "validation_failed",
				fields: []string{"/events/13/event_name", "/events/13/event_category"}},
			{body: ev("timestamp", "2026-11-25T10:30:00Z"), status: "rejected", code: "validation_failed", fields: []string{"/events/14/timestamp"}},
			{body: map[string]any{"event_name": "no_event_id", "event_category": "testing"}, status: "accepted"},
		}
		results := checkBatch(t, postBatch(e, admin, map[string]any{"events": eventsOf(items)}), items)
		if results[8]["id"] != results[6]["id"] {
			t.Errorf("the repeat of an event in the batch has id %v, want the first's %v", results[8]["id"], results[6]["id"])
		}
		if results[0]["received_at"] != results[15]["received_at"] {
			t.Errorf("events of one batch received at different times: %v %v", results[0], results[15])
		}
		sameTime(t, "timestamp of a batched event without one", results[15]["timestamp"], e.clock.Now())

		// Stored: the prior event and the accepted ones, as sent; nothing of the rejected ones.
		stored := map[string]map[string]any{}
		for _, ev := range listAllEvents(t, e, admin, "", 0) {
			stored[ev["id"].(string)] = ev
		}
		wantIDs := []string{priorID}
		for i, it := range items {
			if it.status == "accepted" {
				wantIDs = append(wantIDs, results[i]["id"].(string))
			}
		}
		if len(stored) != len(wantIDs) {
			t.Errorf("%d events stored, want %d", len(stored), len(wantIDs))
		}
		for _, id := range wantIDs {
			if stored[id] == nil {
				t.Errorf("accepted event %s not listed", id)
			}
		}
		if got := stored[results[6]["id"].(string)]; got == nil || got["event_name"] != "first" {
			t.Errorf("event_id used twice: stored %v, want the first", got)
		}
		if got := stored[results[11]["id"].(string)]; got == nil || got["user_id"] != member.ID {
			t.Errorf("event about the member: stored %v", got)
		}
		if got := stored[priorID]; got == nil || got["event_name"] != "prior" {
			t.Errorf("prior event changed: %v", got)
		}

		// The same batch again, later: every event stored before is a duplicate with the same receipt (the one
		// without event_id is a new event, as documented), and the rejected ones are rejected again.
		e.clock.Advance(time.Minute)
		again := slices.Clone(items)
		for i := range again {
			if again[i].status == "accepted" {
				again[i].status, again[i].sameAs = "duplicate", results[i]["id"].(string)
			}
		}
		again[15].status, again[15].sameAs = "accepted", ""
		results2 := checkBatch(t, postBatch(e, admin, map[string]any{"events": eventsOf(again)}), again)
		for i, it := range again {
			if it.status == "duplicate" && results2[i]["received_at"] != results[i]["received_at"] {
				t.Errorf("result %d sent again: received_at %v, want the first %v", i, results2[i]["received_at"], results[i]["received_at"])
			}
		}
		if n := countEvents(t, e, admin); n != len(wantIDs)+1 {
			t.Errorf("%d events after the batch was sent again, want %d", n, len(wantIDs)+1)
		}

		// Only rejected events: still 202, nothing stored.
		bad := []batchItem{
			{body: "x", status: "rejected", code: "validation_failed", fields: []string{"/events/0"}},
			{body: map[string]any{}, status: "rejected", code: "validation_failed", fields: []string{"/events/1/event_name", "/events/1/event_category"}},
			{body: ev("user_id", e.bob.ID), status: "rejected", code: "unknown_user", fields: []string{"/events/2/user_id"}},
		}
		checkBatch(t, postBatch(e, admin, map[string]any{"events": eventsOf(bad)}), bad)
		if n := countEvents(t, e, admin); n != len(wantIDs)+1 {
			t.Errorf("%d events after a batch of rejected events, want %d", n, len(wantIDs)+1)
		}

		// Batches are processed like single events.
		waitUntil(t, countedWithin, "the batched events counted", func() (bool, string) {
			r := e.do("GET", summaryPath, nil, bearer(admin)...)
			return r.obj(t)["total"] == float64(len(wantIDs)+1), string(r.body)
		})
	})
}

// TestTrackEventBatchUserID checks the per-event permission in a batch: another user's event without
// events:write_any_user is rejected on its own with insufficient_permission, the others are stored.
func TestTrackEventBatchUserID(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		us, tokens := roleUsers(t, e, "bperm")
		for _, role := range []nexus.Role{nexus.RoleAdmin, nexus.RoleManager, nexus.RoleAnalyst, nexus.RoleMember} {
			self := us[role].ID
			other := us[nexus.RoleMember].ID
			if role == nexus.RoleMember {
				other = us[nexus.RoleManager].ID
			}
			otherItem := batchItem{body: map[string]any{"event_name": "other", "event_category": "c", "user_id": other}, status: "accepted"}
			if role == nexus.RoleManager || role == nexus.RoleMember {
				otherItem.status, otherItem.code = "rejected", "insufficient_permission"
			}
			items := []batchItem{
				{body: map[string]any{"event_name": "own", "event_category": "c"}, status: "accepted"},
				otherItem,
				{body: map[string]any{"event_name": "own", "event_category": "c", "user_id": strings.ToUpper(self)}, status: "accepted"},
				{body: map[string]any{"event_name": "org_b", "event_category": "c", "user_id": e.bob.ID}, status: "rejected",
					code: map[bool]string{true: "unknown_user", false: "insufficient_permission"}[otherItem.status == "accepted"]},
			}
			if items[3].code == "unknown_user" {
				items[3].fields = []string{"/events/3/user_id"}
			}
			if otherItem.status == "rejected" {
				// The permission error names no field.
				items[1].fields = nil
			}
			r := postBatch(e, tokens[role], map[string]any{"events": eventsOf(items)})
			t.Run(string(role), func(t *testing.T) { checkBatch(t, r, items) })
		}
		byUser := map[string]int{}
		for _, ev := range listAllEvents(t, e, tokens[nexus.RoleAdmin], "", 500) {
			byUser[ev["user_id"].(string)]++
			if ev["event_name"] == "org_b" {
				t.Errorf("an event about org B's user was stored: %v", ev)
			}
		}
		want := map[string]int{
			us[nexus.RoleAdmin].ID:   2,
			us[nexus.RoleManager].ID: 2,
			us[nexus.RoleAnalyst].ID: 2,
			us[nexus.RoleMember].ID:  2 + 2, // the admin's and the analyst's events about the member
		}
		for id, n := range want {
			if byUser[id] != n {
				t.Errorf("user %s has %d events, want %d (all: %v)", id, byUser[id], n, byUser)
			}
		}
	})
}

// paddedBatch returns a batch of one valid event, exactly size bytes long.
func paddedBatch(t testing.TB, size int) []byte {
	t.Helper()
	b := []byte(fmt.Sprintf(`{"events":[{"event_id":%q,"event_name":"padded","event_category":"limits"}]`, uuid.NewString()))
	return append(append(b, bytes.Repeat([]byte(" "), size-len(b)-1)...), '}')
}

func TestTrackEventBatchLimits(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		many := func(n int) map[string]any {
			evs := make([]any, n)
			for i := range evs {
				evs[i] = newEvent(fmt.Sprintf("bulk%04d", i))
			}
			return map[string]any{"events": evs}
		}

		// 1,000 events: all stored.
		r := postBatch(e, admin, many(analytics.MaxBatch))
		if r.status != http.StatusAccepted || r.obj(t)["accepted"] != float64(1000) || len(r.obj(t)["results"].([]any)) != 1000 {
			t.Fatalf("1,000 events: %d %.300s", r.status, r.body)
		}
		if n := countEvents(t, e, admin); n != 1000 {
			t.Fatalf("%d events stored of 1,000", n)
		}

		// 1,001: 413 before any event is looked at (also when every event is invalid), nothing stored.
		r = postBatch(e, admin, many(analytics.MaxBatch+1))
		expectProblem(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
		if got := failingFields(t, r); !slices.Equal(got, []string{"/events"}) {
			t.Errorf("1,001 events: names %v, want /events", got)
		}
		invalid := make([]any, analytics.MaxBatch+1)
		for i := range invalid {
			invalid[i] = 0
		}
		expectProblem(t, postBatch(e, admin, map[string]any{"events": invalid}), http.StatusRequestEntityTooLarge, "payload_too_large")

		// 1 MiB is the most, whether the size is declared or only found while reading.
		const limit = 1 << 20
		r = postBatch(e, admin, paddedBatch(t, limit))
		if r.status != http.StatusAccepted || r.obj(t)["accepted"] != float64(1) {
			t.Errorf("batch of exactly 1 MiB: %d %s", r.status, r.body)
		}
		r = postChunked(t, e, batchPath, paddedBatch(t, limit), admin)
		if r.status != http.StatusAccepted || r.obj(t)["accepted"] != float64(1) {
			t.Errorf("chunked batch of exactly 1 MiB: %d %s", r.status, r.body)
		}
		big := make([]any, 40) // 40 valid events of 30 KiB: within 1,000 events, over 1 MiB
		for i := range big {
			ev := newEvent("heavy")
			ev["properties"] = map[string]any{"blob": strings.Repeat("x", 30<<10)}
			big[i] = ev
		}
		bigBody, err := json.Marshal(map[string]any{"events": big})
		must(t, err)
		for name, body := range map[string][]byte{"one byte over": paddedBatch(t, limit+1), "heavy events": bigBody} {
			expectProblem(t, postBatch(e, admin, body), http.StatusRequestEntityTooLarge, "payload_too_large")
			r := postChunked(t, e, batchPath, body, admin)
			if r.status != http.StatusRequestEntityTooLarge {
				t.Errorf("%s, chunked: %d %s", name, r.status, r.body)
			}
		}
		if n := countEvents(t, e, admin); n != 1002 {
			t.Errorf("%d events stored, want 1,002", n)
		}
	})
}

func TestTrackEventBatchEnvelope(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		valid := []any{newEvent("in_envelope")}
		for _, c := range []struct {
			name string
			body any
			want []string
		}{
			{"no events", map[string]any{}, []string{"/events"}},
			{"events an object", map[string]any{"events": map[string]any{"0": newEvent("x")}}, []string{"/events"}},
			{"events a string", map[string]any{"events": "x"}, []string{"/events"}},
			{"events null", map[string]any{"events": nil}, []string{"/events"}},
			{"events empty", map[string]any{"events": []any{}}, []string{"/events"}},
			{"extra member", map[string]any{"events": valid, "extra": 1}, []string{"/extra"}},
			{"organization_id member", map[string]any{"events": valid, "organization_id": e.orgB.ID}, []string{"/organization_id"}},
			{"events in another case", map[string]any{"Events": valid}, []string{"/events", "/Events"}},
			{"an array", valid, []string{""}},
			{"a single event", newEvent("alone"), []string{"/events", "/event_id", "/event_name", "/event_category"}},
			{"not JSON", `{"events": [`, []string{""}},
			{"no body", nil, []string{""}},
		} {
			t.Run(c.name, func(t *testing.T) {
				expectInvalid(t, postBatch(e, admin, c.body), c.want...)
			})
		}
		expectProblem(t, e.do("POST", batchPath, map[string]any{"events": valid}), http.StatusUnauthorized, "unauthenticated")
		r := e.do("POST", batchPath, `{"events":[]}`, "Authorization", "Bearer "+admin, "Content-Type", "text/plain")
		expectProblem(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
		if n := countEvents(t, e, admin); n != 0 {
			t.Errorf("%d events stored by refused batches", n)
		}
	})
}
