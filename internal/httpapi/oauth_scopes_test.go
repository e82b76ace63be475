package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// contractOperations returns the keys ("METHOD /v2/path/:param") of the compiled contract's operations, sorted:
// those that declare an x-nexus-permission, and those that are secured (take a bearer token) without one.
func contractOperations(t testing.TB) (withPermission, securedOnly []string) {
	t.Helper()
	strictOnce.Do(loadStrictSpec)
	must(t, strictErr)
	for key, o := range strictOps {
		switch {
		case o.Permission != "":
			withPermission = append(withPermission, key)
		case o.Secured:
			securedOnly = append(securedOnly, key)
		}
	}
	sort.Strings(withPermission)
	sort.Strings(securedOnly)
	if len(withPermission) == 0 {
		t.Fatal("the contract declares no x-nexus-permission")
	}
	return withPermission, securedOnly
}

// sortedFlags returns the names of an operation's query flags that declare their own x-nexus-permission.
func sortedFlags(o *contract.Operation) []string {
	var out []string
	for name := range o.FlagPermissions {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// scopeFixture is what the matrix's requests name in org A, and how they are built: for any operation of the
// contract, from its path template and its request body's first example, with the few changes below that make
// a request succeed when the token may make it.
type scopeFixture struct {
	e      *env
	admin  string     // an access token of org A's admin
	target nexus.User // the org-A user that {userId} names
	client string     // the org-A service client that {clientId} names when the request is about the client itself
	n      int        // makes names and emails unique
}

// bodyOverrides give the body of the operations whose examples cannot be sent as they are, by operationId:
// emails must be unique; a service token may grant only scopes it holds; a role or status change would revoke
// sessions mid-walk; and events sent with a service token name their user_id, which it may only when it holds
// events:write_any_user (without, they are a 400 pointing at /user_id: not a 403 of events:write).
var bodyOverrides = map[string]func(f *scopeFixture, scopes nexus.PermissionSet) any{
	"createUser": func(f *scopeFixture, _ nexus.PermissionSet) any {
		return map[string]any{"email": fmt.Sprintf("scope-matrix-%d@a.example", f.n), "name": "Scope matrix",
			"role": "member", "password": "a long initial passphrase"}
	},
	"updateUser": func(f *scopeFixture, _ nexus.PermissionSet) any {
		return map[string]any{"name": fmt.Sprintf("Renamed %d", f.n)}
	},
	"createClient": func(f *scopeFixture, _ nexus.PermissionSet) any {
		return map[string]any{"name": fmt.Sprintf("scope matrix %d", f.n), "scopes": []string{}}
	},
	"updateClient": func(f *scopeFixture, _ nexus.PermissionSet) any {
		return map[string]any{"name": fmt.Sprintf("Renamed %d", f.n)}
	},
	"trackEvent": func(f *scopeFixture, scopes nexus.PermissionSet) any { return f.event(scopes) },
	"trackEventBatch": func(f *scopeFixture, scopes nexus.PermissionSet) any {
		return map[string]any{"events": []any{f.event(scopes)}}
	},
}

func (f *scopeFixture) event(scopes nexus.PermissionSet) map[string]any {
	ev := map[string]any{"event_name": "scope_matrix", "event_category": "test"}
	if scopes.Has(nexus.PermEventsWriteAnyUser) {
		ev["user_id"] = f.target.ID
	}
	return ev
}

// request builds a request of the operation key for a token carrying scopes. Path parameters: {userId} is the
// target user; {clientId} is the shared client for requests about the client itself, and a client created for
// the request for its sub-resources (secrets: a client holds at most two), whose first secret {secretId} names.
// A path parameter it does not know fails the test: teach it the new one.
func (f *scopeFixture) request(t testing.TB, key string, scopes nexus.PermissionSet) (method, path string, body any) {
	t.Helper()
	f.n++
	o := strictOps[key]
	method, tmpl, _ := strings.Cut(key, " ")
	segs := strings.Split(tmpl, "/")
	var fresh struct{ id, secretID string }
	for i, s := range segs {
		if !strings.HasPrefix(s, ":") {
			continue
		}
		switch name := s[1:]; name {
		case "userId":
			segs[i] = f.target.ID
		case "clientId":
			if i == len(segs)-1 {
				segs[i] = f.client
				continue
			}
			r := f.e.do("POST", "/v2/clients", map[string]any{"name": "fresh", "scopes": []string{}}, bearer(f.admin)...)
			if r.status != http.StatusCreated {
				t.Fatalf("create a client for %s: %d %s", key, r.status, r.body)
			}
			m := r.obj(t)
			fresh.id, fresh.secretID = m["client"].(map[string]any)["client_id"].(string), m["secret_id"].(string)
			segs[i] = fresh.id
		case "secretId":
			if fresh.secretID == "" {
				t.Fatalf("%s: {secretId} without a {clientId} before it", key)
			}
			segs[i] = fresh.secretID
		default:
			t.Fatalf("%s: the scope matrix has no value for the path parameter %q: add one to scopeFixture.request", key, name)
		}
	}
	path = strings.Join(segs, "/")
	switch build, ok := bodyOverrides[o.ID()]; {
	case ok:
		body = build(f, scopes)
	case o.JSONBody:
		body = exampleBody(t, o)
	case o.FormBody:
		t.Fatalf("%s: a form body in a scope-checked operation: teach scopeFixture.request", key)
	}
	return method, path, body
}

// exampleBody returns the first example (by name) of the operation's JSON request body.
func exampleBody(t testing.TB, o *contract.Operation) any {
	t.Helper()
	rb := o.Route.Operation.RequestBody
	mt := rb.Value.Content.Get("application/json")
	if mt != nil && len(mt.Examples) > 0 {
		names := make([]string, 0, len(mt.Examples))
		for name := range mt.Examples {
			names = append(names, name)
		}
		sort.Strings(names)
		return mt.Examples[names[0]].Value.Value
	}
	if mt != nil && mt.Example != nil {
		return mt.Example
	}
	t.Fatalf("%s: no example of the request body to send: add one to openapi.yaml or to bodyOverrides", o.ID())
	return nil
}

// scopeToken is a service token and the scopes it carries.
type scopeToken struct {
	name   string // the scope, or "none"
	scopes nexus.PermissionSet
	id     string // the client's client_id and secret
	secret string
	access string
}

// expectAllowed fails unless the response shows the request got past authorization: not 403, and no 5xx.
func expectAllowed(t testing.TB, r resp) {
	t.Helper()
	if r.status == http.StatusForbidden || r.status >= 500 {
		t.Fatalf("got %d %s, want the request allowed", r.status, r.body)
	}
}

// expectDenied fails unless the response is 403 insufficient_permission naming the scope perm.
func expectDenied(t testing.TB, r resp, perm nexus.Permission) {
	t.Helper()
	expectProblem(t, r, http.StatusForbidden, "insufficient_permission")
	if d := r.str(t, "detail"); !strings.Contains(d, " "+string(perm)+" scope") {
		t.Fatalf("403 detail %q does not name the %s scope", d, perm)
	}
}

// TestServiceScopeMatrix walks every operation of the contract that declares an x-nexus-permission, with a
// service token carrying exactly one scope, for every scope, and a token carrying none: the request is allowed
// iff the scope is the operation's permission, else 403 insufficient_permission naming that permission. The
// include flags with their own x-nexus-permission are walked with tokens carrying the operation's permission
// and one scope more; secured operations without a permission (logout) are allowed to every token; and the
// introspection endpoint only to a client granted tokens:introspect. A token with every scope gets a 2xx from
// every operation, so that the requests are ones the handler can serve.
func TestServiceScopeMatrix(t *testing.T) {
	withPerm, securedOnly := contractOperations(t)
	perms := nexus.Permissions()
	// The contract's oauth2 security requirement of each operation names exactly its x-nexus-permission, and
	// every permission is a scope of the contract.
	for _, key := range withPerm {
		o := strictOps[key]
		found := false
		for _, req := range *o.Route.Operation.Security {
			if scopes, ok := req["oauth2"]; ok {
				found = true
				if !slices.Equal(scopes, []string{string(o.Permission)}) {
					t.Errorf("%s: oauth2 requirement %v, want [%s]", o.ID(), scopes, o.Permission)
				}
			}
		}
		if !found {
			t.Errorf("%s: no oauth2 security requirement", o.ID())
		}
	}
	var enum []string
	for _, v := range strictSpec.Components.Schemas["Scope"].Value.Enum {
		enum = append(enum, v.(string))
	}
	for i, p := range perms {
		if i >= len(enum) || enum[i] != string(p) {
			t.Fatalf("Scope enum %v is not nexus.Permissions() %v", enum, perms)
		}
	}

	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		f := &scopeFixture{e: e, admin: admin, target: e.user(e.orgA.ID, "scope-target@a.example", nexus.RoleMember, hash)}
		f.client, _ = e.serviceClient(admin, "users:read")

		// One client per scope, one with none, one with all.
		var tokens []scopeToken
		for _, p := range perms {
			id, secret := e.serviceClient(admin, string(p))
			tokens = append(tokens, scopeToken{name: string(p), scopes: nexus.PermissionSet(0).With(p), id: id, secret: secret})
		}
		noneID, noneSecret := e.serviceClient(admin)
		tokens = append(tokens, scopeToken{name: "none", id: noneID, secret: noneSecret})
		for i := range tokens {
			r := e.clientToken(tokens[i].id, tokens[i].secret, "")
			if r.status != http.StatusOK || r.str(t, "scope") != tokens[i].scopes.String() {
				t.Fatalf("token of the %s client: %d %s", tokens[i].name, r.status, r.body)
			}
			tokens[i].access = r.str(t, "access_token")
		}
		allPerms := make([]string, len(perms))
		for i, p := range perms {
			allPerms[i] = string(p)
		}
		allID, allSecret := e.serviceClient(admin, allPerms...)
		all := e.serviceToken(allID, allSecret, "")
		// Tokens of the all-scopes client narrowed by the scope parameter, by scope string.
		narrowed := map[string]string{}
		narrow := func(set nexus.PermissionSet) string {
			s := set.String()
			if narrowed[s] == "" {
				narrowed[s] = e.serviceToken(allID, allSecret, s)
			}
			return narrowed[s]
		}

		cells := 0
		for _, key := range withPerm {
			o := strictOps[key]
			for _, tk := range tokens {
				t.Run(o.ID()+"/"+tk.name, func(t *testing.T) {
					cells++
					method, path, body := f.request(t, key, tk.scopes)
					r := e.do(method, path, body, bearer(tk.access)...)
					if tk.scopes.Has(o.Permission) {
						expectAllowed(t, r)
					} else {
						expectDenied(t, r, o.Permission)
					}
				})
			}
			t.Run(o.ID()+"/all", func(t *testing.T) {
				cells++
				method, path, body := f.request(t, key, nexus.AllPermissions())
				if r := e.do(method, path, body, bearer(all)...); r.status/100 != 2 {
					t.Fatalf("with every scope: %d %s", r.status, r.body)
				}
			})
			// Each flag: a token with the operation's permission and one scope more (for every scope).
			for _, flag := range sortedFlags(o) {
				need := o.FlagPermissions[flag]
				member := strings.TrimPrefix(flag, "include_")
				for _, p := range perms {
					set := nexus.PermissionSet(0).With(o.Permission).With(p)
					t.Run(fmt.Sprintf("%s/%s/%s+%s", o.ID(), flag, o.Permission, p), func(t *testing.T) {
						cells++
						method, path, body := f.request(t, key, set)
						r := e.do(method, path+"?"+flag+"=true", body, bearer(narrow(set))...)
						if p != need {
							expectDenied(t, r, need)
							return
						}
						if r.status != http.StatusOK || r.obj(t)[member] == nil {
							t.Fatalf("got %d %s, want 200 with %s", r.status, r.body, member)
						}
					})
				}
			}
		}
		// Secured operations without a permission: every token may (logout ends the token: a fresh one each).
		for _, key := range securedOnly {
			o := strictOps[key]
			for _, tk := range tokens {
				t.Run(o.ID()+"/"+tk.name, func(t *testing.T) {
					cells++
					method, path, body := f.request(t, key, tk.scopes)
					r := e.do(method, path, body, bearer(e.serviceToken(tk.id, tk.secret, ""))...)
					expectAllowed(t, r)
				})
			}
		}
		// Introspection is the client's own credentials' (no bearer token), for tokens:introspect alone.
		for _, tk := range tokens {
			t.Run("introspectToken/"+tk.name, func(t *testing.T) {
				cells++
				r := e.do("POST", "/v2/auth/introspect", form("token", all), "Content-Type", formType,
					"Authorization", basic(tk.id, tk.secret))
				if !tk.scopes.Has(nexus.PermTokensIntrospect) {
					expectOAuthError(t, r, http.StatusForbidden, "unauthorized_client", "insufficient_permission")
					return
				}
				if r.status != http.StatusOK || r.obj(t)["active"] != true {
					t.Fatalf("got %d %s, want the token active", r.status, r.body)
				}
			})
		}

		flags := 0
		for _, key := range withPerm {
			flags += len(strictOps[key].FlagPermissions)
		}
		want := len(withPerm)*(len(tokens)+1) + flags*len(perms) + len(securedOnly)*len(tokens) + len(tokens)
		t.Logf("%d cells: %d operations with a permission × (%d scopes + none + all), %d flags × %d scopes, "+
			"%d secured operations without a permission × %d tokens, introspection × %d tokens",
			cells, len(withPerm), len(perms), flags, len(perms), len(securedOnly), len(tokens), len(tokens))
		if cells != want {
			t.Errorf("ran %d cells, want %d", cells, want)
		}
	})
}

// TestServiceScopesHaveNoOwnRecord: ":own" means nothing for a service principal. A token with users:read reads
// every user of its organization, active or not; a token with every scope but users:read reads none, not even
// at its own client_id (a service has no record); and users:read alone never brings the include flags, which
// every user has for their own record.
func TestServiceScopesHaveNoOwnRecord(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		member := e.user(e.orgA.ID, "own-member@a.example", nexus.RoleMember, hash)
		orgA := []nexus.User{e.admin, e.idle, member}

		readID, readSecret := e.serviceClient(admin, "users:read")
		read := e.serviceToken(readID, readSecret, "")
		var others []string
		for _, p := range nexus.Permissions() {
			if p != nexus.PermUsersRead {
				others = append(others, string(p))
			}
		}
		restID, restSecret := e.serviceClient(admin, others...)
		rest := e.serviceToken(restID, restSecret, "")

		for _, u := range orgA {
			r := e.do("GET", "/v2/users/"+u.ID, nil, bearer(read)...)
			if r.status != http.StatusOK || r.str(t, "id") != u.ID {
				t.Fatalf("users:read reading %s: %d %s", u.Email, r.status, r.body)
			}
			for _, flag := range []struct {
				name string
				perm nexus.Permission
			}{{"include_permissions", nexus.PermUsersReadPermissions}, {"include_activity", nexus.PermUsersReadActivity}} {
				expectDenied(t, e.do("GET", "/v2/users/"+u.ID+"?"+flag.name+"=true", nil, bearer(read)...), flag.perm)
			}
			expectDenied(t, e.do("GET", "/v2/users/"+u.ID, nil, bearer(rest)...), nexus.PermUsersRead)
			expectDenied(t, e.do("GET", "/v2/users/"+u.ID+"?include_permissions=true&include_activity=true", nil, bearer(rest)...),
				nexus.PermUsersRead)
		}
		// Its own client_id in the path is no record of its own: without users:read the permission is refused
		// first (403, not a 400 for a non-UUID); with it, the path names no user (400, as any non-UUID).
		expectDenied(t, e.do("GET", "/v2/users/"+restID+"?include_permissions=true", nil, bearer(rest)...), nexus.PermUsersRead)
		expectProblem(t, e.do("GET", "/v2/users/"+readID, nil, bearer(read)...), http.StatusBadRequest, "validation_failed")
		// A user of any role reads their own record with both includes; the same request with a service token
		// holding everything but users:read is refused.
		memberAccess, _ := e.loginAs(member.Email, adminPassword)
		if r := e.do("GET", "/v2/users/"+member.ID+"?include_permissions=true&include_activity=true", nil, bearer(memberAccess)...); r.status != http.StatusOK {
			t.Fatalf("a member's own record: %d %s", r.status, r.body)
		}
	})
}
