package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The tests of the contract's time formats through the real handler: every date-time (an event's timestamp, in
// a single event and in a batch item, and listEvents' from and to) and every date (the summary's from and to)
// is RFC 3339 strictly, by nexus.ParseTime and nexus.ParseDate.

// dateTimes are date-times as a client may send them, with the instant each means, or the zero time for one
// RFC 3339 (as this contract reads it) refuses. All are within the range an event's timestamp may have at the
// harness clock's 2026-11-25T09:00:00Z.
var dateTimes = []struct {
	name, value string
	want        time.Time
}{
	{"Z", "2026-11-24T08:00:00Z", time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)},
	{"an offset", "2026-11-24T09:30:00+01:30", time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)},
	{"offset -00:00", "2026-11-24T08:00:00-00:00", time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)},
	{"offset +23:59", "2026-11-24T23:59:00+23:59", time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)},
	{"a fraction", "2026-11-24T08:00:00.5Z", time.Date(2026, 11, 24, 8, 0, 0, 500e6, time.UTC)},
	{"a 10-digit fraction", "2026-11-24T08:00:00.1234567891Z", time.Date(2026, 11, 24, 8, 0, 0, 123456000, time.UTC)}, // stored to the µs
	{"a comma fraction", "2026-11-24T08:00:00,5Z", time.Time{}},
	{"a dot without digits", "2026-11-24T08:00:00.Z", time.Time{}},
	{"offset +24:00", "2026-11-24T08:00:00+24:00", time.Time{}},
	{"offset +23:60", "2026-11-24T08:00:00+23:60", time.Time{}},
	{"offset without colon", "2026-11-24T08:00:00+0100", time.Time{}},
	{"offset hours only", "2026-11-24T08:00:00+01", time.Time{}},
	{"lower-case t", "2026-11-24t08:00:00Z", time.Time{}},
	{"lower-case z", "2026-11-24T08:00:00z", time.Time{}},
	{"a space for T", "2026-11-24 08:00:00Z", time.Time{}},
	{"no seconds", "2026-11-24T08:00Z", time.Time{}},
	{"no offset", "2026-11-24T08:00:00", time.Time{}},
	{"a one-digit hour", "2026-11-24T8:00:00Z", time.Time{}},
	{"hour 24", "2026-11-24T24:00:00Z", time.Time{}},
	{"a leap second", "2016-12-31T23:59:60Z", time.Time{}},
	{"February 30th", "2026-02-30T00:00:00Z", time.Time{}},
	{"a date", "2026-11-24", time.Time{}},
}

// dateTimeDetail is what a refused date-time is told.
const dateTimeDetail = "must be an RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS, optionally a fraction after a dot, then Z or ±HH:MM"

func TestTimestampsStrict(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		accepted := 0
		for _, c := range dateTimes {
			t.Run("trackEvent/"+c.name, func(t *testing.T) {
				r := postEvent(e, admin, map[string]any{"event_id": uuid.NewString(), "event_name": "timed", "event_category": "t",
					"timestamp": c.value})
				if c.want.IsZero() {
					expectInvalid(t, r, "/timestamp")
					if d := problemFieldDetail(t, r, "/timestamp"); d != dateTimeDetail {
						t.Errorf("detail %q, want %q", d, dateTimeDetail)
					}
					return
				}
				accepted++
				sameTime(t, "timestamp", mustAccept(t, r, false)["timestamp"], c.want)
			})
			t.Run("trackEventBatch/"+c.name, func(t *testing.T) {
				r := postBatch(e, admin, map[string]any{"events": []any{
					map[string]any{"event_name": "timed", "event_category": "t", "timestamp": c.value},
					map[string]any{"event_name": "untimed", "event_category": "t"},
				}})
				if r.status != http.StatusAccepted {
					t.Fatalf("batch: %d %s", r.status, r.body)
				}
				results := r.obj(t)["results"].([]any)
				first, second := results[0].(map[string]any), results[1].(map[string]any)
				if second["status"] != "accepted" {
					t.Errorf("the other item: %v", second)
				}
				accepted++
				if c.want.IsZero() {
					if first["status"] != "rejected" || !strings.Contains(string(r.body), `"pointer":"/events/0/timestamp"`) {
						t.Errorf("item with timestamp %s: %v", c.value, first)
					}
					return
				}
				accepted++
				sameTime(t, "batched timestamp", first["timestamp"], c.want)
			})
			for _, param := range []string{"from", "to"} {
				t.Run("listEvents "+param+"/"+c.name, func(t *testing.T) {
					r := e.do("GET", eventsPath+"?"+param+"="+url.QueryEscape(c.value), nil, bearer(admin)...)
					if c.want.IsZero() {
						expectInvalid(t, r, "?"+param)
						if d := parameterDetail(t, r, param); d != dateTimeDetail {
							t.Errorf("detail %q, want %q", d, dateTimeDetail)
						}
						return
					}
					if r.status != http.StatusOK {
						t.Fatalf("%d %s", r.status, r.body)
					}
				})
			}
		}
		if n := countEvents(t, e, admin); n != accepted {
			t.Errorf("%d events stored, want the %d accepted", n, accepted)
		}
	})
}

// TestDatesStrict: the summary's from and to are RFC 3339 full-dates, YYYY-MM-DD, of days that exist.
func TestDatesStrict(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		const detail = "must be an RFC 3339 date (YYYY-MM-DD)"
		for _, param := range []string{"from", "to"} {
			for _, v := range []string{"2026-11-24", "2024-02-29"} {
				if r := e.do("GET", summaryPath+"?"+param+"="+v+"&"+map[string]string{"from": "to", "to": "from"}[param]+"="+v, nil, bearer(admin)...); r.status != http.StatusOK {
					t.Errorf("%s=%s: %d %s", param, v, r.status, r.body)
				}
			}
			for _, v := range []string{"2026-02-30", "2025-02-29", "2026-13-01", "2026-1-01", "2026-11-4", "+2026-11-24", "20261124",
				"2026-11-24T00:00:00Z", "2026-11-24 ", " 2026-11-24", "2026/11/24", "2026-11-24x"} {
				t.Run(param+"="+v, func(t *testing.T) {
					r := e.do("GET", summaryPath+"?"+param+"="+url.QueryEscape(v), nil, bearer(admin)...)
					expectInvalid(t, r, "?"+param)
					if d := parameterDetail(t, r, param); d != detail {
						t.Errorf("detail %q, want %q", d, detail)
					}
				})
			}
		}
	})
}
