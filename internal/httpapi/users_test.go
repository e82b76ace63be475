package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// bearer returns the Authorization header pair for an access token.
func bearer(access string) []string { return []string{"Authorization", "Bearer " + access} }

// loginAs logs a user in through webClient and returns the access and refresh tokens.
func (e *env) loginAs(email, password string) (access, refresh string) {
	e.t.Helper()
	r := e.login(email, password, webClient)
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", email, r.status, r.body)
	}
	return r.str(e.t, "access_token"), r.str(e.t, "refresh_token")
}

// noSecrets fails if a users response carries anything that looks like credentials or token material.
func noSecrets(t *testing.T, r resp) {
	t.Helper()
	for _, s := range []string{"argon2", "password", "nxr_", "eyJ", "salt", "hash"} {
		if strings.Contains(string(r.body), s) {
			t.Fatalf("response carries %q: %s", s, r.body)
		}
	}
}

func TestCreateUser(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		r := e.do("POST", "/v2/users", map[string]any{"email": "Grace@Example.com", "name": "Grace Hopper",
			"role": "analyst", "password": "a long initial passphrase"}, bearer(admin)...)
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		noSecrets(t, r)
		body := r.obj(t)
		id, _ := body["id"].(string)
		if loc := r.header.Get("Location"); loc != "/v2/users/"+id {
			t.Errorf("Location = %q, want /v2/users/%s", loc, id)
		}
		want := map[string]any{"organization_id": e.orgA.ID, "email": "Grace@Example.com", "name": "Grace Hopper",
			"role": "analyst", "status": "active"}
		for k, v := range want {
			if body[k] != v {
				t.Errorf("%s = %v, want %v", k, body[k], v)
			}
		}
		if _, ok := body["permissions"]; ok {
			t.Errorf("permissions present without include_permissions: %s", r.body)
		}

		// The Location resolves, and the new user can log in with the initial password (email case-insensitively).
		if got := e.do("GET", r.header.Get("Location"), nil, bearer(admin)...); got.status != http.StatusOK || got.str(t, "id") != id {
			t.Fatalf("GET Location: %d %s", got.status, got.body)
		}
		grace, _ := e.loginAs("grace@example.com", "a long initial passphrase")
		if got := e.do("GET", "/v2/users/"+id, nil, bearer(grace)...); got.status != http.StatusOK {
			t.Fatalf("own record: %d %s", got.status, got.body)
		}

		// Stored as an Argon2id hash, never in plain text.
		cred, err := e.audit.UserByEmail(context.Background(), "grace@example.com")
		must(t, err)
		if !strings.HasPrefix(cred.PasswordHash, "$argon2id$") || strings.Contains(cred.PasswordHash, "passphrase") {
			t.Errorf("stored password hash %q", cred.PasswordHash)
		}

		// Inactive on creation if asked: the user cannot log in (after a correct password).
		r = e.do("POST", "/v2/users", map[string]any{"email": "dormant@example.com", "name": "Dormant", "role": "member",
			"password": "another passphrase", "status": "inactive"}, bearer(admin)...)
		if r.status != http.StatusCreated || r.str(t, "status") != "inactive" {
			t.Fatalf("create inactive: %d %s", r.status, r.body)
		}
		expectProblem(t, e.login("dormant@example.com", "another passphrase", webClient), http.StatusForbidden, "account_inactive")
	})
}

func TestCreateUserEmailConflict(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		// Emails are unique across the installation, case-insensitively: bob is in org B.
		for _, email := range []string{"bob@example.org", "BOB@example.ORG", "Ada@Example.com"} {
			r := e.do("POST", "/v2/users", map[string]any{"email": email, "name": "Dup", "role": "member",
				"password": "whatever passphrase"}, bearer(admin)...)
			expectProblem(t, r, http.StatusConflict, "conflict")
			errs, _ := r.obj(t)["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["pointer"] != "/email" {
				t.Errorf("%s: errors = %v, want one for /email", email, errs)
			}
			if strings.Contains(string(r.body), e.orgB.ID) || strings.Contains(string(r.body), e.bob.ID) {
				t.Errorf("conflict names the other organization's user: %s", r.body)
			}
		}
	})
}

func TestCreateUserValidation(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		valid := func() map[string]any {
			return map[string]any{"email": "new@example.com", "name": "New", "role": "member", "password": "123456789012"}
		}
		with := func(k string, v any) map[string]any { b := valid(); b[k] = v; return b }
		without := func(k string) map[string]any { b := valid(); delete(b, k); return b }
		cases := []struct {
			name    string
			body    any
			pointer string
		}{
			{"no email", without("email"), "/email"},
			{"bad email", with("email", "not-an-email"), "/email"},
			{"no name", without("name"), "/name"},
			{"empty name", with("name", ""), "/name"},
			{"blank name", with("name", "   "), "/name"},
			{"control characters in name", with("name", "a\nb"), "/name"},
			{"long name", with("name", strings.Repeat("n", 201)), "/name"},
			{"no role", without("role"), "/role"},
			{"unknown role", with("role", "owner"), "/role"},
			{"no password", without("password"), "/password"},
			{"short password", with("password", "12345678901"), "/password"},
			{"password over 1024 bytes", with("password", strings.Repeat("é", 513)), "/password"},
			{"unknown status", with("status", "suspended"), "/status"},
			{"server-owned id", with("id", "01934a9f-2b7e-7c41-9d1a-5e3f8c2b6a10"), "/id"},
			{"server-owned organization", with("organization_id", e.orgB.ID), "/organization_id"},
			{"email in another case", with("EMAIL", "x@example.com"), "/EMAIL"},
		}
		for _, c := range cases {
			r := e.do("POST", "/v2/users", c.body, bearer(admin)...)
			expectProblem(t, r, http.StatusBadRequest, "validation_failed")
			found := false
			for _, fe := range r.obj(t)["errors"].([]any) {
				if fe.(map[string]any)["pointer"] == c.pointer {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no error for %s: %s", c.name, c.pointer, r.body)
			}
		}
		// Nothing was created by any of them.
		r := e.do("GET", "/v2/users", nil, bearer(admin)...)
		if total := r.obj(t)["pagination"].(map[string]any)["total"]; total != float64(2) {
			t.Errorf("total after rejected creations = %v, want 2", total)
		}
		// A 1,024-byte password of 512 two-byte characters is accepted, and works.
		r = e.do("POST", "/v2/users", with("password", strings.Repeat("é", 512)), bearer(admin)...)
		if r.status != http.StatusCreated {
			t.Fatalf("1,024-byte password: %d %s", r.status, r.body)
		}
		e.loginAs("new@example.com", strings.Repeat("é", 512))
	})
}

func TestUpdateUser(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		carol := e.user(e.orgA.ID, "carol@example.com", nexus.RoleMember, hash)
		admin, _ := e.tokens(webClient)

		// A name change keeps the user's sessions.
		carolAccess, carolRefresh := e.loginAs(carol.Email, adminPassword)
		e.clock.Advance(time.Second)
		r := e.do("PATCH", "/v2/users/"+carol.ID, map[string]any{"name": "Carol Shaw"}, bearer(admin)...)
		if r.status != http.StatusOK || r.str(t, "name") != "Carol Shaw" || r.str(t, "role") != "member" {
			t.Fatalf("rename: %d %s", r.status, r.body)
		}
		if r.str(t, "updated_at") == r.str(t, "created_at") {
			t.Errorf("updated_at not changed: %s", r.body)
		}
		if got := e.do("GET", "/v2/users/"+carol.ID, nil, bearer(carolAccess)...); got.status != http.StatusOK || got.str(t, "name") != "Carol Shaw" {
			t.Fatalf("after rename, carol's token: %d %s", got.status, got.body)
		}

		// A role change revokes every session at once: the access token on this and on another instance, and
		// the refresh token.
		other := e.instance()
		r = e.do("PATCH", "/v2/users/"+carol.ID, map[string]any{"role": "manager"}, bearer(admin)...)
		if r.status != http.StatusOK || r.str(t, "role") != "manager" {
			t.Fatalf("promote: %d %s", r.status, r.body)
		}
		expectProblem(t, e.do("GET", "/v2/users/"+carol.ID, nil, bearer(carolAccess)...), http.StatusUnauthorized, "unauthenticated")
		expectProblem(t, other.do("GET", "/v2/users/"+carol.ID, nil, bearer(carolAccess)...), http.StatusUnauthorized, "unauthenticated")
		expectProblem(t, e.refresh(carolRefresh, webClient), http.StatusUnauthorized, "invalid_grant")
		// Logging in again gives a token with the new role, which it can use at once.
		carolAccess, carolRefresh = e.loginAs(carol.Email, adminPassword)
		if _, claims := decodeJWT(t, carolAccess); claims["role"] != "manager" {
			t.Errorf("new token role = %v", claims["role"])
		}
		if got := e.do("GET", "/v2/users", nil, bearer(carolAccess)...); got.status != http.StatusOK {
			t.Fatalf("manager lists: %d %s", got.status, got.body)
		}

		// Deactivation revokes too, and the user can no longer log in; reactivation lets them back in.
		r = e.do("PATCH", "/v2/users/"+carol.ID, map[string]any{"status": "inactive"}, bearer(admin)...)
		if r.status != http.StatusOK || r.str(t, "status") != "inactive" {
			t.Fatalf("deactivate: %d %s", r.status, r.body)
		}
		expectProblem(t, e.do("GET", "/v2/users", nil, bearer(carolAccess)...), http.StatusUnauthorized, "unauthenticated")
		expectProblem(t, e.refresh(carolRefresh, webClient), http.StatusUnauthorized, "invalid_grant")
		expectProblem(t, e.login(carol.Email, adminPassword, webClient), http.StatusForbidden, "account_inactive")
		r = e.do("PATCH", "/v2/users/"+carol.ID, map[string]any{"status": "active"}, bearer(admin)...)
		if r.status != http.StatusOK || r.str(t, "status") != "active" {
			t.Fatalf("reactivate: %d %s", r.status, r.body)
		}
		e.loginAs(carol.Email, adminPassword)

		// The same values again change nothing and revoke nothing.
		carolAccess, _ = e.loginAs(carol.Email, adminPassword)
		r = e.do("PATCH", "/v2/users/"+carol.ID, map[string]any{"role": "manager", "status": "active"}, bearer(admin)...)
		if r.status != http.StatusOK {
			t.Fatalf("no-op: %d %s", r.status, r.body)
		}
		if got := e.do("GET", "/v2/users", nil, bearer(carolAccess)...); got.status != http.StatusOK {
			t.Fatalf("no-op change revoked the session: %d %s", got.status, got.body)
		}

		// The revocations are recorded with their reasons.
		sessions := sessionsOf(t, e, carol.ID)
		reasons := map[string]int{}
		for _, s := range sessions {
			reasons[s.RevokedReason]++
		}
		if reasons["role_changed"] != 1 || reasons["user_deactivated"] != 1 {
			t.Errorf("revocation reasons = %v", reasons)
		}
	})
}

// sessionsOf returns every refresh session of a user.
func sessionsOf(t *testing.T, e *env, userID string) []auth.Session {
	t.Helper()
	out, err := e.audit.UserSessions(context.Background(), userID)
	must(t, err)
	return out
}

func usersQuery(role nexus.Role, status nexus.UserStatus) users.ListQuery {
	return users.ListQuery{Limit: 100, Role: role, Status: status}
}

func TestUpdateUserLastAdmin(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		for _, body := range []map[string]any{{"role": "manager"}, {"status": "inactive"}, {"role": "member", "status": "inactive"}} {
			expectProblem(t, e.do("PATCH", "/v2/users/"+e.admin.ID, body, bearer(admin)...), http.StatusConflict, "last_admin")
		}
		// Refused changes change nothing: the admin's token still works.
		r := e.do("GET", "/v2/users/"+e.admin.ID, nil, bearer(admin)...)
		if r.status != http.StatusOK || r.str(t, "role") != "admin" || r.str(t, "status") != "active" {
			t.Fatalf("after refused demotion: %d %s", r.status, r.body)
		}
		// Renaming the last admin is fine.
		if r := e.do("PATCH", "/v2/users/"+e.admin.ID, map[string]any{"name": "Ada"}, bearer(admin)...); r.status != http.StatusOK {
			t.Fatalf("rename last admin: %d %s", r.status, r.body)
		}
		// An inactive admin does not count; a second active one does, and then the first may step down.
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		dormant := e.user(e.orgA.ID, "dormant-admin@example.com", nexus.RoleAdmin, hash)
		must(t, e.dir.SetUserStatus(context.Background(), dormant.ID, nexus.UserInactive))
		expectProblem(t, e.do("PATCH", "/v2/users/"+e.admin.ID, map[string]any{"role": "member"}, bearer(admin)...), http.StatusConflict, "last_admin")
		r = e.do("PATCH", "/v2/users/"+dormant.ID, map[string]any{"status": "active"}, bearer(admin)...)
		if r.status != http.StatusOK {
			t.Fatalf("reactivate second admin: %d %s", r.status, r.body)
		}
		r = e.do("PATCH", "/v2/users/"+e.admin.ID, map[string]any{"role": "member"}, bearer(admin)...)
		if r.status != http.StatusOK || r.str(t, "role") != "member" {
			t.Fatalf("self-demotion with another admin: %d %s", r.status, r.body)
		}
		// Demoting oneself revoked one's own session.
		expectProblem(t, e.do("GET", "/v2/users", nil, bearer(admin)...), http.StatusUnauthorized, "unauthenticated")
		// Org B's admin count is its own: bob (an analyst) is unaffected, and org B has no admin at all.
	})
}

func TestUpdateUserConcurrentDemotions(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		second := e.user(e.orgA.ID, "second-admin@example.com", nexus.RoleAdmin, hash)
		a1, _ := e.tokens(webClient)
		a2, _ := e.loginAs(second.Email, adminPassword)
		// Each admin demotes the other at the same time: exactly one may succeed.
		var wg sync.WaitGroup
		results := make([]resp, 2)
		for i, c := range []struct{ token, target string }{{a1, second.ID}, {a2, e.admin.ID}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, results[i] = exchange(t, e.h, "PATCH", "/v2/users/"+c.target, map[string]any{"role": "member"},
					bearer(c.token)...)
			}()
		}
		wg.Wait()
		statuses := map[int]int{}
		for _, r := range results {
			statuses[r.status]++
		}
		// The loser is refused as the last admin, or — if it ran after the winner demoted it — finds its own
		// session revoked.
		if statuses[http.StatusOK] != 1 || statuses[http.StatusConflict]+statuses[http.StatusUnauthorized] != 1 {
			t.Fatalf("concurrent demotions: %d %s / %d %s", results[0].status, results[0].body, results[1].status, results[1].body)
		}
		page, total, err := store.NewUsers(e.db).ListUsers(context.Background(), e.orgA.ID, usersQuery(nexus.RoleAdmin, nexus.UserActive))
		must(t, err)
		if total != 1 || len(page) != 1 {
			t.Fatalf("active admins after the race: %d", total)
		}
	})
}

func TestUpdateUserNotFoundAndValidation(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		other := e.do("PATCH", "/v2/users/"+e.bob.ID, map[string]any{"status": "inactive"}, bearer(admin)...)
		missing := e.do("PATCH", "/v2/users/0193aaaa-0000-7000-8000-000000000000", map[string]any{"status": "inactive"}, bearer(admin)...)
		expectProblem(t, other, http.StatusNotFound, "not_found")
		expectProblem(t, missing, http.StatusNotFound, "not_found")
		if withoutRequestID(t, other) != withoutRequestID(t, missing) {
			t.Errorf("other-org and missing differ:\n%s\n%s", other.body, missing.body)
		}
		// Bob was not touched: he can still log in.
		bobAccess := e.login(e.bob.Email, adminPassword, webClient)
		if bobAccess.status != http.StatusOK {
			t.Fatalf("bob after cross-org PATCH: %d %s", bobAccess.status, bobAccess.body)
		}
		for name, c := range map[string]struct {
			path string
			body any
			want string
		}{
			"empty body":     {"/v2/users/" + e.admin.ID, map[string]any{}, ""},
			"unknown member": {"/v2/users/" + e.admin.ID, map[string]any{"email": "x@example.com"}, "/email"},
			"null role":      {"/v2/users/" + e.admin.ID, map[string]any{"role": nil}, "/role"},
			"bad status":     {"/v2/users/" + e.admin.ID, map[string]any{"status": "gone"}, "/status"},
			"bad id":         {"/v2/users/not-a-uuid", map[string]any{"name": "x"}, ""},
		} {
			r := e.do("PATCH", c.path, c.body, bearer(admin)...)
			expectProblem(t, r, http.StatusBadRequest, "validation_failed")
			if c.want != "" && !strings.Contains(string(r.body), `"pointer":"`+c.want+`"`) {
				t.Errorf("%s: no error for %s: %s", name, c.want, r.body)
			}
		}
	})
}

func TestUserActivity(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		first, _ := e.tokens(webClient) // login 1, no reported IP
		activity := func(access string) map[string]any {
			t.Helper()
			r := e.do("GET", "/v2/users/"+e.admin.ID+"?include_activity=true", nil, bearer(access)...)
			if r.status != http.StatusOK {
				t.Fatalf("activity: %d %s", r.status, r.body)
			}
			if got := r.header.Get("Cache-Control"); got != "private, no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			return r.obj(t)["activity"].(map[string]any)
		}
		a := activity(first)
		if a["logins_last_30_days"] != float64(1) || a["failed_logins_last_30_days"] != float64(0) ||
			a["active_sessions"] != float64(1) || a["last_login_ip"] != nil || a["last_login_at"] != "2026-11-25T09:00:00Z" {
			t.Fatalf("after one login: %v", a)
		}

		// Two failures (wrong password, wrong org's client) and two successes, one with a reported IP, an hour later.
		e.clock.Advance(time.Hour)
		e.login(adminEmail, "wrong password", webClient)
		e.login(adminEmail, adminPassword, orgBClient)
		third, _ := e.tokens(webClient)
		r := e.do("POST", "/v2/auth/login", map[string]any{"email": adminEmail, "password": adminPassword,
			"client_id": webClient, "ip_address": "203.0.113.7"})
		if r.status != http.StatusOK {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
		// Failures of unknown emails and of other users never count.
		e.login("nobody@example.com", "x", webClient)
		e.login(e.bob.Email, "wrong", webClient)
		a = activity(third)
		if a["logins_last_30_days"] != float64(3) || a["failed_logins_last_30_days"] != float64(2) ||
			a["active_sessions"] != float64(3) || a["last_login_ip"] != "203.0.113.7" || a["last_login_at"] != "2026-11-25T10:00:00Z" {
			t.Fatalf("after more logins: %v", a)
		}

		// Logging out ends a session.
		if r := e.logout(r.str(t, "access_token")); r.status != http.StatusNoContent {
			t.Fatalf("logout: %d", r.status)
		}
		if a = activity(third); a["active_sessions"] != float64(2) {
			t.Fatalf("after logout: %v", a)
		}

		// 31 days on, the counts hold only the new login, the last login has no reported IP, and the idle
		// sessions have expired.
		e.clock.Advance(31 * 24 * time.Hour)
		latest, _ := e.tokens(webClient)
		a = activity(latest)
		if a["logins_last_30_days"] != float64(1) || a["failed_logins_last_30_days"] != float64(0) ||
			a["active_sessions"] != float64(1) || a["last_login_ip"] != nil {
			t.Fatalf("31 days later: %v", a)
		}
	})
}

func TestListUsersQueryEdges(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		cases := []struct {
			query string
			want  map[string]string // parameter → detail
		}{
			{"limit=2&limit=3", map[string]string{"limit": "must be given at most once"}},
			{"status=active&status=inactive&role=owner", map[string]string{"status": "must be given at most once",
				"role": "must be one of: admin, manager, analyst, member"}},
			{"limit=1.5", map[string]string{"limit": "must be an integer"}},
			{"offset=", map[string]string{"offset": "must be an integer"}},
			{"limit=abc&offset=x", map[string]string{"limit": "must be an integer", "offset": "must be an integer"}},
			{"limit=101&offset=10001", map[string]string{"limit": "must be at most 100", "offset": "must be at most 10000"}},
		}
		for _, c := range cases {
			r := e.do("GET", "/v2/users?"+c.query, nil, bearer(admin)...)
			expectProblem(t, r, http.StatusBadRequest, "validation_failed")
			got := map[string]string{}
			for _, fe := range r.obj(t)["errors"].([]any) {
				m := fe.(map[string]any)
				got[m["parameter"].(string)] = m["detail"].(string)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s: %s → %q, want %q (all: %v)", c.query, k, got[k], v, got)
				}
			}
		}
		r := e.do("GET", "/v2/users/"+e.admin.ID+"?include_permissions=false&include_permissions=true", nil, bearer(admin)...)
		expectProblem(t, r, http.StatusBadRequest, "validation_failed")
		r = e.do("GET", "/v2/users/"+e.admin.ID+"?include_activity=maybe", nil, bearer(admin)...)
		expectProblem(t, r, http.StatusBadRequest, "validation_failed")
		if !strings.Contains(string(r.body), "must be true or false") {
			t.Errorf("boolean detail: %s", r.body)
		}
		// Parameters the contract does not declare are ignored, repeated or not.
		r = e.do("GET", "/v2/users?org_id="+e.orgB.ID+"&org_id=x", nil, bearer(admin)...)
		if r.status != http.StatusOK || strings.Contains(string(r.body), e.orgB.ID) {
			t.Fatalf("undeclared parameter: %d %s", r.status, r.body)
		}
	})
}

func TestUserNames(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		for i, c := range []struct {
			name string
			ok   bool
		}{
			{"Ada Lovelace", true}, {"  Ada  ", true}, {"Åsa Ñúñez", true}, {"李小龍", true}, {"x", true},
			{"\u0000", false}, {"Ada\u0000", false}, {"Ada\u001bLovelace", false}, {"a\nb", false}, {"\u0085x", false},
			{" ", false}, {"\u00a0", false}, {"\u2003", false}, {"\u3000", false}, {"\ufeff", false}, {"\u000b", false},
		} {
			r := e.do("POST", "/v2/users", map[string]any{"email": fmt.Sprintf("name%d@example.com", i), "name": c.name,
				"role": "member", "password": "a long initial passphrase"}, bearer(admin)...)
			if c.ok && r.status != http.StatusCreated {
				t.Errorf("%q: %d %s", c.name, r.status, r.body)
			}
			if !c.ok {
				expectProblem(t, r, http.StatusBadRequest, "validation_failed")
				p := e.do("PATCH", "/v2/users/"+e.admin.ID, map[string]any{"name": c.name}, bearer(admin)...)
				expectProblem(t, p, http.StatusBadRequest, "validation_failed")
			}
		}
	})
}

func TestUserManagementAudit(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		_, claims := decodeJWT(t, admin)
		r := e.do("POST", "/v2/users", map[string]any{"email": "audited@example.com", "name": "Audited", "role": "member",
			"password": "a long initial passphrase"}, bearer(admin)...)
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		id := r.str(t, "id")
		e.do("PATCH", "/v2/users/"+id, map[string]any{"role": "analyst", "name": "Audited Too"}, bearer(admin)...)
		e.do("PATCH", "/v2/users/"+id, map[string]any{"status": "inactive"}, bearer(admin)...)
		e.do("PATCH", "/v2/users/"+id, map[string]any{"status": "inactive"}, bearer(admin)...)                      // no change
		e.do("PATCH", "/v2/users/"+e.admin.ID, map[string]any{"role": "member"}, bearer(admin)...)                  // refused
		e.do("POST", "/v2/users", map[string]any{"email": "audited@example.com", "name": "Again", "role": "member", // conflict
			"password": "a long initial passphrase"}, bearer(admin)...)

		events, err := e.audit.AuthEvents(context.Background())
		must(t, err)
		var got []string
		for _, ev := range events {
			if !strings.HasPrefix(ev.Action, "user_") {
				continue
			}
			if ev.ActorUserID != e.admin.ID || ev.SessionID != claims["sid"] || ev.ClientID != webClient ||
				ev.OrganizationID != e.orgA.ID || ev.UserID != id || ev.Result != "success" {
				t.Errorf("event %+v", ev)
			}
			got = append(got, ev.Action+" "+ev.Detail)
		}
		want := []string{"user_create role=member status=active", "user_update role=member>analyst name",
			"user_update status=active>inactive"}
		// Creation is stamped by the database's clock, the updates by the test's fixed clock: compare as sets.
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("user-management audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
