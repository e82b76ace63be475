package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/ratelimit"
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
	return f.requestWith(t, key, scopes, nil)
}

// requestWith is request with the path parameters ids names set to its values.
func (f *scopeFixture) requestWith(t testing.TB, key string, scopes nexus.PermissionSet, ids map[string]string) (method, path string, body any) {
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
		name := s[1:]
		if v, ok := ids[name]; ok {
			segs[i] = v
			continue
		}
		switch name {
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
		if o.Route.Operation.Security == nil {
			t.Errorf("%s: no security requirements of its own", o.ID())
			continue
		}
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

// TestServicePrincipalEvents: events sent with a service token name their user_id (400 pointing at /user_id
// without it, whatever the scopes), and naming one needs events:write_any_user (403 without), alone and in a
// batch, where each event is judged on its own.
func TestServicePrincipalEvents(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		member := e.user(e.orgA.ID, "events-member@a.example", nexus.RoleMember, hash)
		wID, wSecret := e.serviceClient(admin, "events:write")
		write := e.serviceToken(wID, wSecret, "")
		aID, aSecret := e.serviceClient(admin, "events:write", "events:write_any_user", "analytics:read")
		anyUser := e.serviceToken(aID, aSecret, "")

		without := map[string]any{"event_name": "svc_event", "event_category": "test"}
		with := map[string]any{"event_name": "svc_event", "event_category": "test", "user_id": member.ID}
		for _, tok := range []string{write, anyUser} {
			expectInvalid(t, postEvent(e, tok, without), "/user_id")
		}
		expectDenied(t, postEvent(e, write, with), nexus.PermEventsWriteAnyUser)
		mustAccept(t, postEvent(e, anyUser, with), false)

		batch := func(tok string) []any {
			t.Helper()
			r := e.do("POST", "/v2/analytics/events/batch", map[string]any{"events": []any{without, with}}, bearer(tok)...)
			if r.status != http.StatusAccepted {
				t.Fatalf("batch: %d %s", r.status, r.body)
			}
			return r.obj(t)["results"].([]any)
		}
		errOf := func(res any) (code, pointer string) {
			m := res.(map[string]any)
			if m["status"] != "rejected" {
				return "", ""
			}
			er := m["error"].(map[string]any)
			if list, ok := er["errors"].([]any); ok && len(list) == 1 {
				pointer, _ = list[0].(map[string]any)["pointer"].(string)
			}
			return er["code"].(string), pointer
		}
		res := batch(write)
		if c, p := errOf(res[0]); c != "validation_failed" || p != "/events/0/user_id" {
			t.Errorf("batch with events:write, no user_id: %v", res[0])
		}
		if c, _ := errOf(res[1]); c != "insufficient_permission" {
			t.Errorf("batch with events:write, a user_id: %v", res[1])
		}
		res = batch(anyUser)
		if c, p := errOf(res[0]); c != "validation_failed" || p != "/events/0/user_id" {
			t.Errorf("batch with events:write_any_user, no user_id: %v", res[0])
		}
		if res[1].(map[string]any)["status"] != "accepted" {
			t.Errorf("batch with events:write_any_user, a user_id: %v", res[1])
		}
		// The accepted events are the member's.
		for _, ev := range listAllEvents(t, e, anyUser, "", 0) {
			if ev["user_id"] != member.ID {
				t.Errorf("event of %v, want the member's", ev["user_id"])
			}
		}
		if n := countEvents(t, e, anyUser); n != 2 {
			t.Errorf("%d events stored, want 2", n)
		}
	})
}

// keyRecorder is a rate limiter that records the keys each policy was taken for.
type keyRecorder struct {
	RateLimiter
	mu   sync.Mutex
	keys map[string]map[string]bool
}

func (k *keyRecorder) AllowAll(ctx context.Context, checks ...ratelimit.Check) []ratelimit.Result {
	k.mu.Lock()
	for _, c := range checks {
		if k.keys[c.Name] == nil {
			k.keys[c.Name] = map[string]bool{}
		}
		k.keys[c.Name][c.Key] = true
	}
	k.mu.Unlock()
	return k.RateLimiter.AllowAll(ctx, checks...)
}

// TestServicePrincipalRateLimit: the principal policy of a service token is its client's: two tokens of one
// client share one budget, another client's token has its own, and the policy's key is the client_id.
func TestServicePrincipalRateLimit(t *testing.T) {
	forEachDB(t, func(t *testing.T, base *env) {
		admin, _ := base.tokens(webClient)
		xID, xSecret := base.serviceClient(admin, "users:read")
		yID, ySecret := base.serviceClient(admin, "users:read")
		x1, x2 := base.serviceToken(xID, xSecret, ""), base.serviceToken(xID, xSecret, "")
		y1 := base.serviceToken(yID, ySecret, "")

		l, err := ratelimit.New(ratelimit.Options{Secret: testSecret, RecheckEvery: 100 * time.Millisecond, Timeout: 2 * time.Second})
		must(t, err)
		t.Cleanup(func() { _ = l.Close() })
		rec := &keyRecorder{RateLimiter: l, keys: map[string]map[string]bool{}}
		e := *base
		e.limiter = rec
		e.limits = Limits{IP: q(1000, time.Hour), AuthIP: q(1000, time.Hour), Client: q(1000, time.Hour),
			LoginAccount: q(1000, time.Hour), LoginFailures: q(1000, time.Hour), Principal: q(4, time.Hour)}
		e.start()

		const peer = "198.51.100.30:40000"
		get := func(tok string) resp { return e.from(peer, "GET", "/v2/users/"+base.admin.ID, nil, bearer(tok)...) }
		for i, tok := range []string{x1, x2, x1, x2} {
			r := get(tok)
			if r.status != http.StatusOK {
				t.Fatalf("request %d: %d %s", i+1, r.status, r.body)
			}
			if rem, _ := limitsOf(t, r); rem["principal"] != 3-i {
				t.Fatalf("request %d: principal remaining %d, want %d (the two tokens share one budget)", i+1, rem["principal"], 3-i)
			}
		}
		for _, tok := range []string{x1, x2} {
			retryAfter(t, get(tok))
		}
		r := get(y1)
		if r.status != http.StatusOK {
			t.Fatalf("another client: %d %s", r.status, r.body)
		}
		if rem, _ := limitsOf(t, r); rem["principal"] != 3 {
			t.Fatalf("another client: principal remaining %d, want 3 (a budget of its own)", rem["principal"])
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if got := rec.keys["principal"]; len(got) != 2 || !got[xID] || !got[yID] {
			t.Fatalf("principal keys %v, want exactly the client_ids %s and %s", got, xID, yID)
		}
	})
}

// TestServicePrincipalAudit: the audit entries of a user created and changed with a service token name the
// client (client_id, the token's session) and no actor user.
func TestServicePrincipalAudit(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		id, secret := e.serviceClient(admin, "users:write")
		tok := e.serviceToken(id, secret, "")
		r := e.do("POST", "/v2/users", map[string]any{"email": "audited@a.example", "name": "Audited", "role": "member",
			"password": "a long initial passphrase"}, bearer(tok)...)
		if r.status != http.StatusCreated {
			t.Fatalf("create user: %d %s", r.status, r.body)
		}
		userID := r.str(t, "id")
		if r := e.do("PATCH", "/v2/users/"+userID, map[string]any{"name": "Audited twice"}, bearer(tok)...); r.status != http.StatusOK {
			t.Fatalf("update user: %d %s", r.status, r.body)
		}
		events, err := e.audit.AuthEvents(context.Background())
		must(t, err)
		var sid string
		for _, ev := range events {
			if ev.Action == "token" && ev.ClientID == id {
				sid = ev.SessionID
			}
		}
		if sid == "" {
			t.Fatalf("no token entry for %s: %+v", id, events)
		}
		seen := map[string]bool{}
		for _, ev := range events {
			if ev.UserID != userID {
				continue
			}
			seen[ev.Action] = true
			if ev.ClientID != id || ev.ActorUserID != "" || ev.SessionID != sid || ev.OrganizationID != e.orgA.ID {
				t.Errorf("%s entry: client %q actor %q session %q organization %q; want client %s, no actor, session %s, org A",
					ev.Action, ev.ClientID, ev.ActorUserID, ev.SessionID, ev.OrganizationID, id, sid)
			}
		}
		if !seen["user_create"] || !seen["user_update"] {
			t.Fatalf("audit entries of the user: %v", seen)
		}
	})
}

// TestServicePrincipalLogout: logout with a service token revokes that token at once, and not the client's
// other tokens.
func TestServicePrincipalLogout(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		id, secret := e.serviceClient(admin, "users:read")
		t1, t2 := e.serviceToken(id, secret, ""), e.serviceToken(id, secret, "")
		read := func(tok string) resp { return e.do("GET", "/v2/users/"+e.admin.ID, nil, bearer(tok)...) }
		for _, tok := range []string{t1, t2} {
			if r := read(tok); r.status != http.StatusOK {
				t.Fatalf("before logout: %d %s", r.status, r.body)
			}
		}
		if r := e.logout(t1); r.status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", r.status, r.body)
		}
		expectProblem(t, read(t1), http.StatusUnauthorized, "unauthenticated")
		expectProblem(t, e.logout(t1), http.StatusUnauthorized, "unauthenticated")
		if r := read(t2); r.status != http.StatusOK {
			t.Fatalf("the client's other token after logout: %d %s", r.status, r.body)
		}
		// Another node, which never saw the token, refuses it too.
		expectProblem(t, e.instance().do("GET", "/v2/users/"+e.admin.ID, nil, bearer(t1)...), http.StatusUnauthorized, "unauthenticated")
	})
}
