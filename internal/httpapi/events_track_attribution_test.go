package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The tests of whom POST /v2/analytics/events attributes an event to: the user_id permissions and the
// organization taken from the token.

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
