package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// orgInjection is a way a client might try to name another organization than its token's.
type orgInjection struct {
	name   string
	query  []string // parameter names, each set to the other organization's id
	header []string // header names, each set to the other organization's id
}

// orgInjections are every single org-like query parameter and header, and last all of them at once.
func orgInjections() []orgInjection {
	params := []string{"org_id", "organization_id", "orgId", "tenant", "organization"}
	headers := []string{"X-Org-Id", "X-Organization-Id", "X-Tenant-Id", "Organization"}
	var out []orgInjection
	for _, p := range params {
		out = append(out, orgInjection{name: "?" + p, query: []string{p}})
	}
	for _, h := range headers {
		out = append(out, orgInjection{name: h + ":", header: []string{h}})
	}
	return append(out, orgInjection{name: "all", query: params, header: headers})
}

// isoRequest is one request of the isolation walk, before any injection.
type isoRequest struct {
	name     string
	role     nexus.Role
	op       string
	method   string
	path     string // with the operation's own query, if any
	target   targetKind
	targetID string   // canonical id of the target, for targets that exist
	includes []string // getUser include flags set to true
	filter   users.ListQuery
	body     func(variant int) map[string]any // the request body; variant > 0 for injected repeats
	taken    bool                             // createUser with an email in use in org B
}

// TestUsersTenantIsolation tries many combinations of caller (every role of org A), users operation, target id
// (own organization, the other organization, missing, upper-cased) and org-like query parameters and headers
// naming org B, and checks that nothing of org B ever shows: no org B user id, email or org B's id in any
// response, the same 404 for org B's users as for missing ones, listings of org A only with org A's totals,
// and injected parameters and headers that change nothing.
func TestUsersTenantIsolation(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		add := func(org, email string, role nexus.Role, status nexus.UserStatus) nexus.User {
			u := e.user(org, email, role, hash)
			if status != nexus.UserActive {
				must(t, e.dir.SetUserStatus(ctx, u.ID, status))
				u.Status = status
			}
			return u
		}

		// Org A: every role, some inactive; the model of org A is kept up to date as users are created.
		idle := e.idle
		idle.Status = nexus.UserInactive
		callers := map[nexus.Role]nexus.User{
			"admin":   e.admin,
			"manager": add(e.orgA.ID, "iso-manager@a.example", nexus.RoleManager, nexus.UserActive),
			"analyst": add(e.orgA.ID, "iso-analyst@a.example", nexus.RoleAnalyst, nexus.UserActive),
			"member":  add(e.orgA.ID, "iso-member@a.example", nexus.RoleMember, nexus.UserActive),
		}
		others := []nexus.User{
			add(e.orgA.ID, "iso-admin2@a.example", nexus.RoleAdmin, nexus.UserActive),
			add(e.orgA.ID, "iso-manager-off@a.example", nexus.RoleManager, nexus.UserInactive),
			add(e.orgA.ID, "iso-analyst-off@a.example", nexus.RoleAnalyst, nexus.UserInactive),
		}
		modelA := []nexus.User{e.admin, idle, callers["manager"], callers["analyst"], callers["member"]}
		modelA = append(modelA, others...)
		slices.SortFunc(modelA, func(a, b nexus.User) int {
			if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})

		// Org B: every role, one inactive, and bob.
		orgB := []nexus.User{e.bob,
			add(e.orgB.ID, "iso-admin@b.example", nexus.RoleAdmin, nexus.UserActive),
			add(e.orgB.ID, "iso-manager@b.example", nexus.RoleManager, nexus.UserActive),
			add(e.orgB.ID, "iso-member@b.example", nexus.RoleMember, nexus.UserActive),
			add(e.orgB.ID, "iso-off@b.example", nexus.RoleMember, nexus.UserInactive),
		}
		needles := []string{strings.ToLower(e.orgB.ID)}
		for _, u := range orgB {
			needles = append(needles, strings.ToLower(u.ID), strings.ToLower(u.Email))
		}
		usersStore := store.NewUsers(e.db)
		snapshotB := func() []nexus.User {
			page, _, err := usersStore.ListUsers(ctx, e.orgB.ID, users.ListQuery{Limit: 100})
			must(t, err)
			return page
		}
		beforeB := snapshotB()

		tokens := map[nexus.Role]string{}
		for _, r := range contractRoles {
			tokens[r], _ = e.loginAs(callers[r].Email, adminPassword)
		}

		// The requests: every role × every list filter and paging, every target × include combination of
		// getUser, every target of updateUser with a harmless body (and a hostile one for targets outside
		// org A), and creations (one with a fresh email, two with emails of org B).
		missing := []string{"0195d2c4-7a31-7b6e-9f0a-3c5d8e1f2a4b", "6f1c2b9e-3d4a-4c5b-8e6f-7a8b9c0d1e2f"}
		type target struct {
			kind  targetKind
			id    string // as sent
			canon string // the user's id, "" for missing
		}
		var reqs []isoRequest
		for _, role := range contractRoles {
			for _, status := range []nexus.UserStatus{"", nexus.UserActive, nexus.UserInactive} {
				for _, r := range append([]nexus.Role{""}, contractRoles...) {
					for _, limit := range []int{0, 1, 100} { // 0: not sent
						for _, offset := range []int{-1, 2, 10000} { // -1: not sent
							q := url.Values{}
							f := users.ListQuery{Status: status, Role: r, Limit: limit, Offset: max(offset, 0)}
							if status != "" {
								q.Set("status", string(status))
							}
							if r != "" {
								q.Set("role", string(r))
							}
							if limit != 0 {
								q.Set("limit", strconv.Itoa(limit))
							}
							if offset >= 0 {
								q.Set("offset", strconv.Itoa(offset))
							}
							path := "/v2/users"
							if len(q) > 0 {
								path += "?" + q.Encode()
							}
							reqs = append(reqs, isoRequest{name: fmt.Sprintf("%s GET %s", role, path), role: role,
								op: "listUsers", method: "GET", path: path, filter: f})
						}
					}
				}
			}
			self := callers[role]
			targets := []target{
				{targetOwn, self.ID, self.ID},
				{targetOwn, strings.ToUpper(self.ID), self.ID},
				{targetSameOrg, others[0].ID, others[0].ID},
				{targetSameOrg, others[1].ID, others[1].ID},
				{targetSameOrg, strings.ToUpper(others[2].ID), others[2].ID},
				{targetOtherOrg, orgB[0].ID, orgB[0].ID},
				{targetOtherOrg, orgB[1].ID, orgB[1].ID},
				{targetOtherOrg, strings.ToUpper(orgB[4].ID), orgB[4].ID},
				{targetMissing, missing[0], ""},
				{targetMissing, strings.ToUpper(missing[1]), ""},
			}
			for i, tg := range targets {
				for _, inc := range includeCombos {
					path := "/v2/users/" + tg.id
					if len(inc.flags) > 0 {
						path += "?" + strings.Join(inc.flags, "=true&") + "=true"
					}
					reqs = append(reqs, isoRequest{name: fmt.Sprintf("%s GET %s (%s)", role, path, tg.kind), role: role,
						op: "getUser", method: "GET", path: path, target: tg.kind, targetID: tg.canon, includes: inc.flags})
				}
				name := fmt.Sprintf("Iso %s %d", role, i)
				reqs = append(reqs, isoRequest{name: fmt.Sprintf("%s PATCH %s name (%s)", role, tg.id, tg.kind), role: role,
					op: "updateUser", method: "PATCH", path: "/v2/users/" + tg.id, target: tg.kind, targetID: tg.canon,
					body: func(int) map[string]any { return map[string]any{"name": name} }})
				if tg.kind == targetOtherOrg || tg.kind == targetMissing {
					reqs = append(reqs, isoRequest{name: fmt.Sprintf("%s PATCH %s hostile (%s)", role, tg.id, tg.kind), role: role,
						op: "updateUser", method: "PATCH", path: "/v2/users/" + tg.id, target: tg.kind, targetID: tg.canon,
						body: func(int) map[string]any {
							return map[string]any{"name": "Taken over", "role": "member", "status": "inactive"}
						}})
				}
			}
			reqs = append(reqs,
				isoRequest{name: fmt.Sprintf("%s POST /v2/users new", role), role: role, op: "createUser", method: "POST",
					path: "/v2/users", body: func(variant int) map[string]any {
						return map[string]any{"email": fmt.Sprintf("iso-new-%s-%d@a.example", role, variant), "name": "Iso New",
							"role": "analyst", "password": "a long initial passphrase"}
					}},
				isoRequest{name: fmt.Sprintf("%s POST /v2/users org B email", role), role: role, op: "createUser",
					method: "POST", path: "/v2/users", taken: true, body: func(int) map[string]any {
						return map[string]any{"email": orgB[1].Email, "name": "Iso Dup", "role": "admin",
							"password": "a long initial passphrase"}
					}},
				isoRequest{name: fmt.Sprintf("%s POST /v2/users org B email upper-cased", role), role: role,
					op: "createUser", method: "POST", path: "/v2/users", taken: true, body: func(int) map[string]any {
						return map[string]any{"email": strings.ToUpper(e.bob.Email), "name": "Iso Dup", "role": "member",
							"password": "a long initial passphrase"}
					}},
			)
		}

		injections := orgInjections()
		rng := rand.New(rand.NewPCG(20261125, 1))
		combinations, injected := 0, 0
		tried := map[string]int{}                // by injection
		notFound := map[string]map[string]bool{} // by operation: distinct 404 bodies without request_id
		send := func(req isoRequest, variant int, inj *orgInjection) resp {
			t.Helper()
			path := req.path
			var header []string
			header = append(header, bearer(tokens[req.role])...)
			if inj != nil {
				q := url.Values{}
				for _, p := range inj.query {
					q.Set(p, e.orgB.ID)
				}
				if len(q) > 0 {
					if strings.Contains(path, "?") {
						path += "&" + q.Encode()
					} else {
						path += "?" + q.Encode()
					}
				}
				for _, h := range inj.header {
					header = append(header, h, e.orgB.ID)
				}
			}
			var body any
			if req.body != nil {
				body = req.body(variant)
			}
			combinations++
			r := e.do(req.method, path, body, header...)
			// Nothing of org B, anywhere in the response.
			var all strings.Builder
			all.Write(r.body)
			for k, vs := range r.header {
				all.WriteString("\n" + k + ": " + strings.Join(vs, ", "))
			}
			got := strings.ToLower(all.String())
			for _, n := range needles {
				if strings.Contains(got, n) {
					t.Fatalf("%s (%s): the response shows %q of org B:\n%s", req.name, path, n, all.String())
				}
			}
			if r.status == http.StatusNotFound {
				if notFound[req.op] == nil {
					notFound[req.op] = map[string]bool{}
				}
				notFound[req.op][withoutRequestID(t, r)] = true
			}
			return r
		}
		// expect checks a response without injection against the contract and the model of org A.
		expect := func(req isoRequest, r resp) {
			t.Helper()
			status, code, _ := contractOutcome(t, req.role, req.op, req.target, req.includes, false)
			if status == http.StatusCreated && req.taken {
				status, code = http.StatusConflict, "conflict"
			}
			if status >= 400 {
				if r.status != status || r.str(t, "code") != code {
					t.Fatalf("%s: got %d %s, want %d %s", req.name, r.status, r.body, status, code)
				}
				return
			}
			if r.status != status {
				t.Fatalf("%s: got %d %s, want %d", req.name, r.status, r.body, status)
			}
			switch req.op {
			case "listUsers":
				var page struct {
					Data []struct {
						ID             string `json:"id"`
						OrganizationID string `json:"organization_id"`
					} `json:"data"`
					Pagination struct {
						Limit, Offset, Total int
						HasMore              bool `json:"has_more"`
					} `json:"pagination"`
				}
				must(t, json.Unmarshal(r.body, &page))
				var match []string
				for _, u := range modelA {
					if (req.filter.Status == "" || u.Status == req.filter.Status) && (req.filter.Role == "" || u.Role == req.filter.Role) {
						match = append(match, u.ID)
					}
				}
				limit := req.filter.Limit
				if limit == 0 {
					limit = 20
				}
				want := match[min(req.filter.Offset, len(match)):min(req.filter.Offset+limit, len(match))]
				var got []string
				for _, d := range page.Data {
					if d.OrganizationID != e.orgA.ID {
						t.Fatalf("%s: listed a user of organization %s", req.name, d.OrganizationID)
					}
					got = append(got, d.ID)
				}
				if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
					t.Fatalf("%s: page (-want +got):\n%s", req.name, diff)
				}
				p := page.Pagination
				if p.Total != len(match) || p.Limit != limit || p.Offset != req.filter.Offset ||
					p.HasMore != (req.filter.Offset+len(want) < len(match)) {
					t.Fatalf("%s: pagination %+v, want total %d of org A", req.name, p, len(match))
				}
			case "getUser", "updateUser":
				if id, org := r.str(t, "id"), r.str(t, "organization_id"); id != req.targetID || org != e.orgA.ID {
					t.Fatalf("%s: got user %s of %s, want %s of org A", req.name, id, org, req.targetID)
				}
			case "createUser":
				if org := r.str(t, "organization_id"); org != e.orgA.ID {
					t.Fatalf("%s: created in organization %s", req.name, org)
				}
			}
		}
		// created records a user created by createUser in the model of org A, where listings must show it.
		created := func(r resp) {
			t.Helper()
			var u nexus.User
			var raw struct {
				ID     string `json:"id"`
				Role   string `json:"role"`
				Status string `json:"status"`
			}
			must(t, json.Unmarshal(r.body, &raw))
			u.ID, u.Role, u.Status = raw.ID, nexus.Role(raw.Role), nexus.UserStatus(raw.Status)
			if loc := r.header.Get("Location"); loc != "/v2/users/"+u.ID {
				t.Fatalf("Location = %q for %s", loc, u.ID)
			}
			modelA = append(modelA, u) // created last, so listed last
		}
		// essence returns what must not differ between a request and its injected repeat.
		essence := func(op string, r resp) string {
			t.Helper()
			if r.status >= 400 {
				return withoutRequestID(t, r)
			}
			if op != "createUser" {
				return string(r.body)
			}
			m := r.obj(t)
			for _, k := range []string{"id", "email", "created_at", "updated_at"} {
				delete(m, k)
			}
			b, err := json.Marshal(m)
			must(t, err)
			return string(b)
		}

		for _, req := range reqs {
			base := send(req, 0, nil)
			expect(req, base)
			if base.status == http.StatusCreated {
				created(base)
			}
			// One injection drawn at random for every request; requests about one user (or creating one) also
			// get all of them at once.
			tries := []orgInjection{injections[rng.IntN(len(injections))]}
			if req.op != "listUsers" {
				tries = append(tries, injections[len(injections)-1])
			}
			for i, inj := range tries {
				again := send(req, i+1, &inj)
				injected++
				tried[inj.name]++
				if again.status != base.status {
					t.Fatalf("%s with %s: %d %s, without: %d %s", req.name, inj.name, again.status, again.body, base.status, base.body)
				}
				if a, b := essence(req.op, again), essence(req.op, base); a != b {
					t.Fatalf("%s with %s: the response differs from the one without:\n%s\n%s", req.name, inj.name, a, b)
				}
				if again.status == http.StatusCreated {
					created(again)
				}
			}
		}

		for op, bodies := range notFound {
			if len(bodies) != 1 {
				t.Errorf("%s: %d different 404 bodies for other-org and missing targets: %v", op, len(bodies), bodies)
			}
		}
		if len(notFound["getUser"]) == 0 || len(notFound["updateUser"]) == 0 {
			t.Errorf("no 404 seen for getUser or updateUser")
		}
		if diff := cmp.Diff(beforeB, snapshotB()); diff != "" {
			t.Errorf("org B changed (-before +after):\n%s", diff)
		}
		t.Logf("%d combinations: %d requests without injection, %d with injected org B ids", combinations, len(reqs), injected)
		if len(tried) != len(injections) {
			t.Errorf("injections tried: %v, want each of %d", tried, len(injections))
		}
		if injected < 1000 {
			t.Errorf("only %d combinations with injected org B ids", injected)
		}
	})
}
