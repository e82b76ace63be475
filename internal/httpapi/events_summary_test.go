package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The tests of GET /v2/analytics/summary and of the events part of a user's activity.

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
