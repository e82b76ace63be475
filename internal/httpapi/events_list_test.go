package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The tests of GET /v2/analytics/events: filters, parameters and paging.

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

// TestListEventsPaging pages through 250 events, many with the same timestamp, at several page sizes: every
// event exactly once, newest first; events stored while paging do not shift the pages.
func TestListEventsPaging(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		base := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
		var events []any
		var seeded []seededEvent
		for i := range 250 {
			ev := seededEvent{eventID: uuid.NewString(), name: []string{"a", "b"}[i%2], category: "paging", ts: base.Add(-time.Duration(i/3) * time.Second)}
			seeded = append(seeded, ev)
			events = append(events, map[string]any{"event_id": ev.eventID, "event_name": ev.name, "event_category": ev.category,
				"timestamp": ev.ts.Format(time.RFC3339Nano)})
		}
		r := postBatch(e, admin, map[string]any{"events": events})
		if r.status != http.StatusAccepted || r.obj(t)["accepted"] != float64(250) {
			t.Fatalf("seed: %d %.300s", r.status, r.body)
		}
		for i, res := range r.obj(t)["results"].([]any) {
			seeded[i].id = res.(map[string]any)["id"].(string)
		}
		newestFirst(seeded)
		want := seededIDs(seeded)
		for _, size := range []int{0, 1, 2, 7, 50, 83, 249, 250, 251, 500} {
			if got := idsOf(listAllEvents(t, e, admin, "", size)); !slices.Equal(got, want) {
				t.Errorf("pages of %d: %d events, want the %d in order\n got %v\nwant %v", size, len(got), len(want), got, want)
			}
		}
		var onlyB []string
		for _, ev := range seeded {
			if ev.name == "b" {
				onlyB = append(onlyB, ev.id)
			}
		}
		if got := idsOf(listAllEvents(t, e, admin, "event_name=b", 9)); !slices.Equal(got, onlyB) {
			t.Errorf("filtered pages of 9: %v, want %v", got, onlyB)
		}

		// Newer events stored between pages do not shift the pages that follow.
		var got []string
		cursor := ""
		for page := 0; page < 100; page++ {
			q := "limit=25"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			r := e.do("GET", eventsPath+"?"+q, nil, bearer(admin)...)
			if r.status != http.StatusOK {
				t.Fatalf("page %d: %d %s", page, r.status, r.body)
			}
			b := r.obj(t)
			for _, d := range b["data"].([]any) {
				got = append(got, d.(map[string]any)["id"].(string))
			}
			mustAccept(t, postEvent(e, admin, newEvent("while_paging")), false)
			next, _ := b["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if !slices.Equal(got, want) {
			t.Errorf("paging while events arrive: %d events, want the %d in order", len(got), len(want))
		}
	})
}
