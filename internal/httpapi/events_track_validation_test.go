package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The tests of what POST /v2/analytics/events rejects: invalid fields and the body size limit.

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
