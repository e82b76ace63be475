package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// The tests of text and numbers in requests, through the real handler: JSON bodies must be UTF-8 without
// escaped lone surrogates and with numbers a double can hold (checkJSON, before anything else looks at the
// body), and query and path parameters must be UTF-8 once percent-decoded. Nothing is rewritten to U+FFFD or
// ±Infinity on the way in.

// Text that is not UTF-8, each kind once, and escaped UTF-16 surrogates without their other half, as they
// appear between the quotes of a JSON string.
var (
	invalidUTF8 = map[string]string{
		"byte ff":           "\xff",
		"byte fe":           "a\xfeb",
		"continuation byte": "\x80",
		"overlong slash":    "\xc0\xaf",
		"overlong NUL":      "\xc0\x80",
		"encoded surrogate": "\xed\xa0\x80",
		"cut short":         "\xe2\x82",
		"beyond U+10FFFF":   "\xf4\x90\x80\x80",
		"Latin-1 e acute":   "caf\xe9",
	}
	loneSurrogates = map[string]string{
		"lone high":              `\ud800`,
		"lone low":               `\udc00`,
		"high then text":         `\ud83dx`,
		"high then other escape": `\ud83d\u0041`,
		"high then high":         `\ud83d\ud83d\ude00`,
		"low then high":          `\ude00\ud83d`,
	}
)

const (
	detailSurrogate     = "must not contain an unpaired UTF-16 surrogate escape"
	detailNameNotUTF8   = "has a member name that is not valid UTF-8"
	detailNameSurrogate = "has a member name with an unpaired UTF-16 surrogate escape"
	detailDouble        = "must be a number within the range of a double (about ±1.8e308)"
)

// rawEvent is an event as JSON text: name and properties are JSON as sent (properties "" for none).
func rawEvent(eventID, name, properties string) string {
	b := fmt.Sprintf(`{"event_id":%q,"event_name":%s,"event_category":"text"`, eventID, name)
	if properties != "" {
		b += `,"properties":` + properties
	}
	return b + "}"
}

// TestJSONBodyText: every kind of text that is not UTF-8, and every escaped lone surrogate, in an event name, a
// property name, a property value and an item of a batch, is 400 validation_failed naming the place, and nothing
// is stored (for a batch, nothing of any item: the whole document is checked first). So are numbers beyond a
// double; underflow to zero and the largest double are accepted, as sent.
func TestJSONBodyText(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		type place struct {
			name, path  string
			body        func(text string) string // text: JSON string contents as sent
			pointer     string
			valueDetail bool // the text is a value (else a member name)
		}
		valid := rawEvent(uuid.NewString(), `"fine"`, "")
		places := []place{
			{"event name", eventsPath, func(x string) string { return rawEvent(uuid.NewString(), `"`+x+`"`, "") }, "/event_name", true},
			{"property name", eventsPath, func(x string) string { return rawEvent(uuid.NewString(), `"n"`, `{"ok":1,"`+x+`":1}`) },
				"/properties", false},
			{"nested property name", eventsPath, func(x string) string {
				return rawEvent(uuid.NewString(), `"n"`, `{"a":[{"`+x+`":true}]}`)
			}, "/properties/a/0", false},
			{"property value", eventsPath, func(x string) string { return rawEvent(uuid.NewString(), `"n"`, `{"k":"`+x+`"}`) },
				"/properties/k", true},
			{"property in an array", eventsPath, func(x string) string {
				return rawEvent(uuid.NewString(), `"n"`, `{"k":["ok","`+x+`"]}`)
			}, "/properties/k/1", true},
			{"batch item name", batchPath, func(x string) string {
				return `{"events":[` + valid + `,` + rawEvent(uuid.NewString(), `"`+x+`"`, "") + `]}`
			}, "/events/1/event_name", true},
			{"batch item property name", batchPath, func(x string) string {
				return `{"events":[` + valid + `,` + rawEvent(uuid.NewString(), `"n"`, `{"`+x+`":1}`) + `]}`
			}, "/events/1/properties", false},
			{"login password", "/v2/auth/login", func(x string) string {
				return fmt.Sprintf(`{"email":%q,"password":"%s","client_id":%q}`, adminEmail, x, webClient)
			}, "/password", true},
		}
		check := func(t *testing.T, p place, text, detail string) {
			r := e.do("POST", p.path, p.body(text), bearer(admin)...)
			expectInvalid(t, r, p.pointer)
			if d := problemFieldDetail(t, r, p.pointer); d != detail {
				t.Errorf("detail %q, want %q", d, detail)
			}
			if strings.Contains(string(r.body), text) || strings.Contains(string(r.body), "\ufffd") {
				t.Errorf("the problem repeats the text: %s", r.body)
			}
		}
		for _, p := range places {
			for kind, text := range invalidUTF8 {
				t.Run(p.name+"/"+kind, func(t *testing.T) {
					detail := detailNotUTF8
					if !p.valueDetail {
						detail = detailNameNotUTF8
					}
					check(t, p, text, detail)
				})
			}
			for kind, text := range loneSurrogates {
				t.Run(p.name+"/"+kind, func(t *testing.T) {
					detail := detailSurrogate
					if !p.valueDetail {
						detail = detailNameSurrogate
					}
					check(t, p, text, detail)
				})
			}
		}

		t.Run("numbers beyond a double", func(t *testing.T) {
			for _, n := range []string{"1e400", "-1e400", "1E+309", "1.7976931348623159e308", "-0.1e310", strings.Repeat("9", 310)} {
				r := postEvent(e, admin, rawEvent(uuid.NewString(), `"n"`, `{"a":{"n":`+n+`}}`))
				expectInvalid(t, r, "/properties/a/n")
				if d := problemFieldDetail(t, r, "/properties/a/n"); d != detailDouble {
					t.Errorf("%s: detail %q, want %q", n, d, detailDouble)
				}
				r = e.do("POST", batchPath, `{"events":[`+valid+`,`+rawEvent(uuid.NewString(), `"n"`, `{"n":[`+n+`]}`)+`]}`, bearer(admin)...)
				expectInvalid(t, r, "/events/1/properties/n/0")
			}
			// Not even where the schema wants a string: the document is refused first.
			r := e.do("POST", "/v2/auth/login", fmt.Sprintf(`{"email":%q,"password":1e400,"client_id":%q}`, adminEmail, webClient))
			expectInvalid(t, r, "/password")
		})
		if n := countEvents(t, e, admin); n != 0 {
			t.Fatalf("%d events stored by refused requests", n)
		}

		t.Run("numbers a double holds, as sent", func(t *testing.T) {
			props := `{"tiny":1e-400,"max":1.7976931348623157e308,"min":-1.7976931348623157e308,"zero":0e999,"denormal":5e-324}`
			id := uuid.NewString()
			mustAccept(t, postEvent(e, admin, rawEvent(id, `"numbers"`, props)), false)
			r := e.do("GET", eventsPath+"?event_name=numbers", nil, bearer(admin)...)
			for _, n := range []string{`"tiny":1e-400`, `"max":1.7976931348623157e308`, `"min":-1.7976931348623157e308`, `"zero":0e999`} {
				if !strings.Contains(string(r.body), n) {
					t.Errorf("listed event without %s: %s", n, r.body)
				}
			}
		})
	})
}

// TestJSONBodySurrogatePairs: an escaped surrogate pair is the character it encodes, stored as its UTF-8: the
// same event sent with the character as UTF-8 is a duplicate of it, and both read back alike.
func TestJSONBodySurrogatePairs(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		id := uuid.NewString()
		escaped := rawEvent(id, `"\ud83d\ude00 launch"`, `{"\ud83d\ude00":"\uD83D\uDE00","max":"\udbff\udfff"}`)
		literal := rawEvent(id, `"😀 launch"`, `{"😀":"😀","max":"`+"\U0010ffff"+`"}`)
		first := mustAccept(t, postEvent(e, admin, escaped), false)
		again := mustAccept(t, postEvent(e, admin, literal), true)
		if again["id"] != first["id"] {
			t.Errorf("the literal spelling got id %v, want the escaped one's %v", again["id"], first["id"])
		}
		list := listAllEvents(t, e, admin, "", 0)
		if len(list) != 1 {
			t.Fatalf("%d events, want 1", len(list))
		}
		sameJSON(t, "stored event", map[string]any{"name": list[0]["event_name"], "properties": list[0]["properties"]},
			map[string]any{"name": "😀 launch", "properties": map[string]any{"😀": "😀", "max": "\U0010ffff"}})
		r := e.do("GET", eventsPath+"?event_name="+"%F0%9F%98%80%20launch", nil, bearer(admin)...)
		if r.status != http.StatusOK || !strings.Contains(string(r.body), first["id"].(string)) {
			t.Errorf("listing by the UTF-8 name: %d %s", r.status, r.body)
		}
	})
}

// TestJSONBodyTextIdempotency is the scenario: text that used to be rewritten to U+FFFD made a
// different event look like a duplicate of one with a literal U+FFFD. It is refused now; and an event that
// really differs from the stored one, by one valid character, is 409.
func TestJSONBodyTextIdempotency(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		id := uuid.NewString()
		const fffd = "\xef\xbf\xbd" // U+FFFD as UTF-8: a valid character
		stored := mustAccept(t, postEvent(e, admin, rawEvent(id, `"caf`+fffd+`"`, `{"k":"`+fffd+`"}`)), false)
		mustAccept(t, postEvent(e, admin, rawEvent(id, `"caf\ufffd"`, `{"k":"\uFFFD"}`)), true) // the same, escaped

		for name, body := range map[string]string{
			"Latin-1 byte in the name":     rawEvent(id, `"caf`+"\xe9"+`"`, `{"k":"`+fffd+`"}`),
			"byte ff in the name":          rawEvent(id, `"caf`+"\xff"+`"`, `{"k":"`+fffd+`"}`),
			"lone surrogate in the name":   rawEvent(id, `"caf\ud800"`, `{"k":"`+fffd+`"}`),
			"overlong in a property value": rawEvent(id, `"caf`+fffd+`"`, `{"k":"`+"\xc0\xaf"+`"}`),
			"lone surrogate in a value":    rawEvent(id, `"caf`+fffd+`"`, `{"k":"\udc00"}`),
		} {
			t.Run(name, func(t *testing.T) {
				expectProblem(t, postEvent(e, admin, body), http.StatusBadRequest, "validation_failed")
			})
		}
		for name, body := range map[string]string{
			"another character in the name":  rawEvent(id, `"café"`, `{"k":"`+fffd+`"}`),
			"another character in the value": rawEvent(id, `"caf`+fffd+`"`, `{"k":"?"}`),
		} {
			t.Run(name, func(t *testing.T) {
				r := postEvent(e, admin, body)
				expectProblem(t, r, http.StatusConflict, "conflict")
			})
		}
		list := listAllEvents(t, e, admin, "", 0)
		if len(list) != 1 || list[0]["id"] != stored["id"] || list[0]["event_name"] != "caf\ufffd" {
			t.Fatalf("stored events %v, want only the first", list)
		}
	})
}
