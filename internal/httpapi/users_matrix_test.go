package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/nexus/nexustest"
)

// grantScope is one cell of the contract's permission table: "–", "own record" or "yes".
type grantScope = nexus.Scope

const (
	grantNone = nexus.ScopeNone         // –
	grantOwn  = nexus.ScopeOwn          // own record
	grantOrg  = nexus.ScopeOrganization // yes: any user of the caller's organization
)

// contractGrants is the "Roles and permissions" table of openapi.yaml's info.description, cell by cell in the
// order of its rows, as nexustest states it for this package's tests and nexus's alike. It is deliberately
// written out there rather than read from nexus.Grant, nexus.Authorize or nexus.RolePermissions, so that the
// tests below fail when the code drifts from the contract.
var contractGrants = nexustest.ContractGrants

// contractRoles are the roles of the table, in the order of its columns.
var contractRoles = nexustest.ContractRoles

// contractScope returns the table's cell for a role and a permission.
func contractScope(t testing.TB, role nexus.Role, perm string) grantScope {
	t.Helper()
	for _, row := range contractGrants {
		if string(row.Perm) != perm {
			continue
		}
		if s, ok := row.Scope(role); ok {
			return s
		}
	}
	t.Fatalf("the contract's table has no cell for %s / %s", role, perm)
	return grantNone
}

// contractPermissions returns what include_permissions must list for a user of the role: the table's rows in
// order, "perm" for "yes" and "perm:own" for "own record".
func contractPermissions(t testing.TB, role nexus.Role) []string {
	t.Helper()
	out := []string{}
	for _, row := range contractGrants {
		switch contractScope(t, role, string(row.Perm)) {
		case grantOrg:
			out = append(out, string(row.Perm))
		case grantOwn:
			out = append(out, string(row.Perm)+":own")
		}
	}
	return out
}

// The users operations, with the permission each declares in x-nexus-permission, and the include flags of
// getUser with theirs.
var (
	usersOperations = []struct{ id, perm string }{
		{"listUsers", "users:list"},
		{"getUser", "users:read"},
		{"createUser", "users:write"},
		{"updateUser", "users:write"},
	}
	includeFlags = []struct{ param, perm string }{
		{"include_permissions", "users:read_permissions"},
		{"include_activity", "users:read_activity"},
	}
)

// targetKind is whose record a request is about.
type targetKind string

const (
	targetNone     targetKind = ""          // listUsers, createUser: no user in the path
	targetOwn      targetKind = "own"       // the caller
	targetSameOrg  targetKind = "same-org"  // another user of the caller's organization
	targetOtherOrg targetKind = "other-org" // a user of another organization
	targetMissing  targetKind = "missing"   // a UUID that names no user
	targetBadID    targetKind = "bad-id"    // a path parameter that is not a UUID
)

// contractOutcome derives from the contract alone what an authenticated request must get: the operation's
// permission first, before the request is validated and before anything about the target is looked up (403
// insufficient_permission, naming in denied the permission that failed); then validation (400
// validation_failed, for a request that does not match the contract); then each include flag's permission
// (403); then 404 not_found for a target outside the caller's organization, whether it exists or not; then
// success.
func contractOutcome(t testing.TB, role nexus.Role, op string, target targetKind, includes []string, invalid bool) (status int, code, denied string) {
	t.Helper()
	allowed := func(perm string) bool {
		switch contractScope(t, role, perm) {
		case grantOrg:
			return true
		case grantOwn:
			return target == targetOwn
		}
		return false
	}
	perms := []string{}
	for _, o := range usersOperations {
		if o.id == op {
			perms = append(perms, o.perm)
		}
	}
	if len(perms) != 1 {
		t.Fatalf("unknown operation %s", op)
	}
	for _, inc := range includes {
		for _, f := range includeFlags {
			if f.param == inc {
				perms = append(perms, f.perm)
			}
		}
	}
	for i, p := range perms {
		if !allowed(p) {
			return http.StatusForbidden, "insufficient_permission", p
		}
		if i == 0 && invalid {
			return http.StatusBadRequest, "validation_failed", ""
		}
	}
	switch {
	case target == targetOtherOrg || target == targetMissing:
		return http.StatusNotFound, "not_found", ""
	case op == "createUser":
		return http.StatusCreated, "", ""
	}
	return http.StatusOK, "", ""
}

// TestUsersContractTable checks that the copy of the table above is the contract's: the operations and flags
// declare the permissions this file assumes, and the permission names are the Permission enum's, in its order.
func TestUsersContractTable(t *testing.T) {
	strictOnce.Do(loadStrictSpec)
	must(t, strictErr)
	ops := map[string]string{}
	flags := map[string]string{}
	for _, item := range strictSpec.Paths.Map() {
		for _, op := range item.Operations() {
			if perm, ok := op.Extensions["x-nexus-permission"].(string); ok {
				ops[op.OperationID] = perm
			}
			for _, p := range op.Parameters {
				if perm, ok := p.Value.Extensions["x-nexus-permission"].(string); ok {
					flags[op.OperationID+" "+p.Value.Name] = perm
				}
			}
		}
	}
	for _, o := range usersOperations {
		if ops[o.id] != o.perm {
			t.Errorf("%s declares %q, this test assumes %q", o.id, ops[o.id], o.perm)
		}
	}
	for _, f := range includeFlags {
		if got := flags["getUser "+f.param]; got != f.perm {
			t.Errorf("getUser %s declares %q, this test assumes %q", f.param, got, f.perm)
		}
	}
	if got := strictSpec.Paths.Find("/users/{userId}").Get.Extensions["x-nexus-own-parameter"]; got != "userId" {
		t.Errorf("getUser x-nexus-own-parameter = %v", got)
	}

	var enum []string
	for _, v := range strictSpec.Components.Schemas["Permission"].Value.Enum {
		enum = append(enum, v.(string))
	}
	var fromTable []string
	for _, row := range contractGrants {
		fromTable = append(fromTable, string(row.Perm))
		for _, r := range contractRoles {
			if contractScope(t, r, string(row.Perm)) == grantOwn {
				fromTable = append(fromTable, string(row.Perm)+":own")
				break
			}
		}
	}
	if diff := cmp.Diff(enum, fromTable); diff != "" {
		t.Errorf("Permission enum vs the table's names in order (-enum +table):\n%s", diff)
	}
	// The table read as the lists include_permissions returns, spelled out as the task states them.
	want := map[nexus.Role][]string{
		"admin": {"users:list", "users:read", "users:read_permissions", "users:read_activity", "users:write",
			"events:write", "events:write_any_user", "analytics:read", "clients:read", "clients:write", "tokens:introspect"},
		"manager": {"users:list", "users:read", "users:read_permissions", "users:read_activity", "events:write",
			"analytics:read"},
		"analyst": {"users:read:own", "users:read_permissions:own", "users:read_activity:own", "events:write",
			"events:write_any_user", "analytics:read"},
		"member": {"users:read:own", "users:read_permissions:own", "users:read_activity:own", "events:write"},
	}
	for _, r := range contractRoles {
		if diff := cmp.Diff(want[r], contractPermissions(t, r)); diff != "" {
			t.Errorf("%s (-want +table):\n%s", r, diff)
		}
	}
}

// includeCombos are the include-flag combinations of getUser, by the name used in subtest names.
var includeCombos = []struct {
	name  string
	flags []string
}{
	{"none", nil},
	{"permissions", []string{"include_permissions"}},
	{"activity", []string{"include_activity"}},
	{"both", []string{"include_permissions", "include_activity"}},
}

// TestUsersPermissionMatrix walks every role × users operation × target (own record, another user of the same
// organization, a user of the other organization, a missing id) × include combination on both databases, plus
// requests that fail validation and requests without a token, and checks each response against what
// contractOutcome derives from the contract's table. 403 bodies must not depend on the target, nor 404 bodies on
// whether the user exists in another organization or not at all.
func TestUsersPermissionMatrix(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		// One caller per role in org A (the admin is e.admin), each logged in once; two users in org B.
		callers := map[nexus.Role]nexus.User{"admin": e.admin}
		for _, r := range contractRoles[1:] {
			callers[r] = e.user(e.orgA.ID, "matrix-"+string(r)+"@a.example", r, hash)
		}
		tokens := map[nexus.Role]string{}
		for _, r := range contractRoles {
			tokens[r], _ = e.loginAs(callers[r].Email, adminPassword)
		}
		bAdmin := e.user(e.orgB.ID, "matrix-admin@b.example", nexus.RoleAdmin, hash)
		// Each caller's same-org target is the next role's user, so that admins and managers read the
		// permissions of every role; other-org targets alternate between org B's admin and analyst.
		sameOrg := map[nexus.Role]nexus.User{"admin": callers["manager"], "manager": callers["analyst"],
			"analyst": callers["member"], "member": callers["admin"]}
		otherOrg := map[nexus.Role]nexus.User{"admin": bAdmin, "manager": e.bob, "analyst": bAdmin, "member": e.bob}
		const missingID = "0195d2c4-7a31-7b6e-9f0a-3c5d8e1f2a4b"

		targetOf := func(role nexus.Role, k targetKind) (id string, u nexus.User) {
			switch k {
			case targetOwn:
				return callers[role].ID, callers[role]
			case targetSameOrg:
				return sameOrg[role].ID, sameOrg[role]
			case targetOtherOrg:
				return otherOrg[role].ID, otherOrg[role]
			}
			return missingID, nexus.User{}
		}
		allTargets := []targetKind{targetOwn, targetSameOrg, targetOtherOrg, targetMissing}

		// Problem bodies (without request_id) by what they must not tell apart.
		notFound := map[string][]string{}  // by operation: other-org and missing targets
		forbidden := map[string][]string{} // by role, operation and denied permission: every target
		cases := 0

		check := func(t *testing.T, role nexus.Role, op string, target targetKind, includes []string, invalid bool, r resp) {
			t.Helper()
			status, code, denied := contractOutcome(t, role, op, target, includes, invalid)
			if status >= 400 {
				expectProblem(t, r, status, code)
				body := withoutRequestID(t, r)
				switch status {
				case http.StatusNotFound:
					notFound[op] = append(notFound[op], body)
				case http.StatusForbidden:
					key := fmt.Sprintf("%s %s %s", role, op, denied)
					forbidden[key] = append(forbidden[key], body)
				}
				return
			}
			if r.status != status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, status)
			}
			noSecrets(t, r)
			body := r.obj(t)
			if body["organization_id"] != nil && body["organization_id"] != e.orgA.ID {
				t.Errorf("organization_id = %v, want org A %s", body["organization_id"], e.orgA.ID)
			}
			switch op {
			case "listUsers":
				data, _ := body["data"].([]any)
				if len(data) == 0 {
					t.Fatalf("empty list: %s", r.body)
				}
				for _, d := range data {
					if org := d.(map[string]any)["organization_id"]; org != e.orgA.ID {
						t.Errorf("listed a user of organization %v: %v", org, d)
					}
				}
			case "getUser":
				id, want := targetOf(role, target)
				if body["id"] != id {
					t.Errorf("id = %v, want %s", body["id"], id)
				}
				perms, hasPerms := body["permissions"]
				act, hasAct := body["activity"]
				askedPerms, askedAct := false, false
				for _, inc := range includes {
					askedPerms = askedPerms || inc == "include_permissions"
					askedAct = askedAct || inc == "include_activity"
				}
				if hasPerms != askedPerms || hasAct != askedAct {
					t.Fatalf("permissions present %v (asked %v), activity present %v (asked %v): %s",
						hasPerms, askedPerms, hasAct, askedAct, r.body)
				}
				if askedPerms {
					var got []string
					for _, p := range perms.([]any) {
						got = append(got, p.(string))
					}
					if diff := cmp.Diff(contractPermissions(t, want.Role), got); diff != "" {
						t.Errorf("permissions of a %s (-contract +got):\n%s", want.Role, diff)
					}
				}
				if askedAct {
					// Every org A target logged in once above and kept its session.
					a := act.(map[string]any)
					if a["logins_last_30_days"].(float64) < 1 || a["active_sessions"].(float64) < 1 || a["last_login_at"] == nil {
						t.Errorf("activity of a user who logged in: %v", a)
					}
				}
			case "createUser":
				if loc := r.header.Get("Location"); loc != "/v2/users/"+body["id"].(string) {
					t.Errorf("Location = %q for id %v", loc, body["id"])
				}
			case "updateUser":
				if id, _ := targetOf(role, target); body["id"] != id {
					t.Errorf("id = %v, want %s", body["id"], id)
				}
			}
		}

		for _, role := range contractRoles {
			hdr := bearer(tokens[role])
			for _, op := range usersOperations {
				switch op.id {
				case "listUsers":
					t.Run(fmt.Sprintf("%s/listUsers", role), func(t *testing.T) {
						cases++
						check(t, role, op.id, targetNone, nil, false, e.do("GET", "/v2/users?limit=100", nil, hdr...))
					})
				case "createUser":
					t.Run(fmt.Sprintf("%s/createUser", role), func(t *testing.T) {
						cases++
						body := map[string]any{"email": "matrix-new-by-" + string(role) + "@a.example",
							"name": "New by " + string(role), "role": "member", "password": "a long initial passphrase"}
						check(t, role, op.id, targetNone, nil, false, e.do("POST", "/v2/users", body, hdr...))
					})
				case "getUser":
					for _, target := range allTargets {
						for _, inc := range includeCombos {
							t.Run(fmt.Sprintf("%s/getUser/%s/include=%s", role, target, inc.name), func(t *testing.T) {
								cases++
								id, _ := targetOf(role, target)
								q := make([]string, len(inc.flags))
								for i, f := range inc.flags {
									q[i] = f + "=true"
								}
								path := "/v2/users/" + id
								if len(q) > 0 {
									path += "?" + strings.Join(q, "&")
								}
								check(t, role, op.id, target, inc.flags, false, e.do("GET", path, nil, hdr...))
							})
						}
					}
				case "updateUser":
					for _, target := range allTargets {
						t.Run(fmt.Sprintf("%s/updateUser/%s", role, target), func(t *testing.T) {
							cases++
							id, _ := targetOf(role, target)
							// A name change only: role and status changes would revoke sessions mid-walk.
							body := map[string]any{"name": fmt.Sprintf("Renamed by %s (%s)", role, target)}
							check(t, role, op.id, target, nil, false, e.do("PATCH", "/v2/users/"+id, body, hdr...))
						})
					}
				}
			}
		}

		// Requests that do not match the contract: the operation's permission is still decided first, so a
		// role without it learns nothing from validation either.
		invalid := []struct {
			name, op, method string
			target           targetKind
			path             func(role nexus.Role) string
			body             any
		}{
			{"listUsers/invalid", "listUsers", "GET", targetNone,
				func(nexus.Role) string { return "/v2/users?limit=0&status=gone" }, nil},
			{"getUser/bad-id", "getUser", "GET", targetBadID,
				func(nexus.Role) string { return "/v2/users/not-a-uuid" }, nil},
			{"getUser/own/include=invalid", "getUser", "GET", targetOwn,
				func(r nexus.Role) string { return "/v2/users/" + callers[r].ID + "?include_activity=maybe" }, nil},
			{"getUser/same-org/include=invalid", "getUser", "GET", targetSameOrg,
				func(r nexus.Role) string { return "/v2/users/" + sameOrg[r].ID + "?include_permissions=maybe" }, nil},
			{"createUser/invalid", "createUser", "POST", targetNone,
				func(nexus.Role) string { return "/v2/users" },
				map[string]any{"email": "not an email", "name": "", "role": "root", "password": "short"}},
			{"updateUser/own/invalid", "updateUser", "PATCH", targetOwn,
				func(r nexus.Role) string { return "/v2/users/" + callers[r].ID }, map[string]any{}},
			{"updateUser/other-org/invalid", "updateUser", "PATCH", targetOtherOrg,
				func(r nexus.Role) string { return "/v2/users/" + otherOrg[r].ID }, map[string]any{"role": "root"}},
		}
		for _, role := range contractRoles {
			for _, c := range invalid {
				t.Run(fmt.Sprintf("%s/%s", role, c.name), func(t *testing.T) {
					cases++
					check(t, role, c.op, c.target, nil, true, e.do(c.method, c.path(role), c.body, bearer(tokens[role])...))
				})
			}
		}
		// Without a token, every operation is 401 before anything else.
		for _, op := range usersOperations {
			t.Run("anonymous/"+op.id, func(t *testing.T) {
				cases++
				method, path, body := "GET", "/v2/users", any(nil)
				switch op.id {
				case "getUser":
					path = "/v2/users/" + e.bob.ID
				case "createUser":
					method, body = "POST", map[string]any{"email": "x"}
				case "updateUser":
					method, path, body = "PATCH", "/v2/users/"+e.bob.ID, map[string]any{"name": "x"}
				}
				r := e.do(method, path, body)
				expectProblem(t, r, http.StatusUnauthorized, "unauthenticated")
				if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="nexus"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			})
		}

		t.Run("indistinguishable", func(t *testing.T) {
			for op, bodies := range notFound {
				for _, b := range bodies[1:] {
					if b != bodies[0] {
						t.Errorf("%s: 404 bodies differ between other-org and missing targets:\n%s\n%s", op, bodies[0], b)
					}
				}
			}
			for key, bodies := range forbidden {
				for _, b := range bodies[1:] {
					if b != bodies[0] {
						t.Errorf("%s: 403 bodies differ between targets:\n%s\n%s", key, bodies[0], b)
					}
				}
			}
			if len(notFound["getUser"]) == 0 || len(notFound["updateUser"]) == 0 {
				t.Errorf("no 404 seen for getUser or updateUser: %v", notFound)
			}
		})
		t.Logf("%d cases", cases)
		if want := len(contractRoles)*(1+1+len(allTargets)*len(includeCombos)+len(allTargets)+len(invalid)) +
			len(usersOperations); cases != want {
			t.Errorf("ran %d cases, want %d", cases, want)
		}
	})
}
