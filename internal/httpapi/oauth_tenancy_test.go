package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// missingClientID is a client_id of the right form that names no client.
const missingClientID = "nxc_aaaaaaaaaaaaaaaaaaaaaaaaaa"

// tenants is two organizations, each with an admin, a service client holding every scope and its token, and
// a service client of its own (with the id of its first secret) for the others to aim at.
type tenants struct {
	e          *env
	hash       string
	adminA     string // access tokens of the two organizations' admins
	adminB     string
	adminBUser nexus.User
	allA       string // tokens of a client with every scope, in each organization
	allB       string
	clientA    string // another service client of each organization, and its first secret's id
	secretA    string
	clientB    string
	secretB    string
}

func newTenants(t *testing.T, e *env) *tenants {
	t.Helper()
	hash, err := auth.HashPassword(adminPassword)
	must(t, err)
	ts := &tenants{e: e, hash: hash}
	ts.adminA, _ = e.tokens(webClient)
	ts.adminBUser = e.user(e.orgB.ID, "tenancy-admin@b.example", nexus.RoleAdmin, hash)
	ts.adminB, _ = e.loginAs(ts.adminBUser.Email, adminPassword)
	var all []string
	for _, p := range nexus.Permissions() {
		all = append(all, string(p))
	}
	id, secret := e.serviceClient(ts.adminA, all...)
	ts.allA = e.serviceToken(id, secret, "")
	id, secret = e.serviceClient(ts.adminB, all...)
	ts.allB = e.serviceToken(id, secret, "")
	ts.clientA, ts.secretA = ts.ownClient(t, ts.adminA)
	ts.clientB, ts.secretB = ts.ownClient(t, ts.adminB)
	return ts
}

// ownClient creates a service client with users:read and returns its client_id and its secret's id.
func (ts *tenants) ownClient(t *testing.T, admin string) (id, secretID string) {
	t.Helper()
	r := ts.e.do("POST", "/v2/clients", map[string]any{"name": "Target", "scopes": []string{"users:read"}}, bearer(admin)...)
	if r.status != http.StatusCreated {
		t.Fatalf("create client: %d %s", r.status, r.body)
	}
	m := r.obj(t)
	return m["client"].(map[string]any)["client_id"].(string), m["secret_id"].(string)
}

// TestServiceCrossTenantNotFound: for every operation of the contract with an id in its path, a service token
// holding every scope gets for an org-B resource (user, service client, secret) the 404 it gets for an id that
// names nothing, byte for byte but the request_id; the include flags change nothing; and nothing of org B
// changed.
func TestServiceCrossTenantNotFound(t *testing.T) {
	withPerm, _ := contractOperations(t)
	forEachDB(t, func(t *testing.T, e *env) {
		ts := newTenants(t, e)
		f := &scopeFixture{e: e, admin: ts.adminA, target: e.admin, client: ts.clientA}
		foreign := map[string]string{"userId": e.bob.ID, "clientId": ts.clientB, "secretId": ts.secretB}
		missing := map[string]string{"userId": uuid.NewString(), "clientId": missingClientID, "secretId": uuid.NewString()}
		bBefore := e.do("GET", "/v2/clients/"+ts.clientB, nil, bearer(ts.adminB)...)
		bobBefore := e.do("GET", "/v2/users/"+e.bob.ID, nil, bearer(ts.adminB)...)

		cases := 0
		compare := func(t *testing.T, key, query string, foreignIDs, missingIDs map[string]string) {
			t.Helper()
			cases++
			var bodies []string
			for _, ids := range []map[string]string{foreignIDs, missingIDs} {
				method, path, body := f.requestWith(t, key, nexus.AllPermissions(), ids)
				r := e.do(method, path+query, body, bearer(ts.allA)...)
				expectProblem(t, r, http.StatusNotFound, "not_found")
				bodies = append(bodies, withoutRequestID(t, r))
			}
			if bodies[0] != bodies[1] {
				t.Fatalf("an org-B resource and a missing one differ:\n%s\n%s", bodies[0], bodies[1])
			}
		}
		for _, key := range withPerm {
			o := strictOps[key]
			if !strings.Contains(key, "/:") {
				continue
			}
			t.Run(o.ID(), func(t *testing.T) { compare(t, key, "", foreign, missing) })
			if flags := sortedFlags(o); len(flags) > 0 {
				t.Run(o.ID()+"/flags", func(t *testing.T) {
					compare(t, key, "?"+strings.Join(flags, "=true&")+"=true", foreign, missing)
				})
			}
			if strings.Contains(key, "/:secretId") {
				// The own organization's client with org B's secret, and with a secret that does not exist.
				t.Run(o.ID()+"/own-client-foreign-secret", func(t *testing.T) {
					compare(t, key, "", map[string]string{"clientId": ts.clientA, "secretId": ts.secretB},
						map[string]string{"clientId": ts.clientA, "secretId": uuid.NewString()})
				})
			}
		}
		if cases < 6 {
			t.Errorf("only %d operations with an id compared", cases)
		}
		t.Logf("%d foreign/missing pairs compared", cases)

		// Org B's client, secret and user are as they were, and the client still obtains tokens.
		if after := e.do("GET", "/v2/clients/"+ts.clientB, nil, bearer(ts.adminB)...); string(after.body) != string(bBefore.body) {
			t.Errorf("org B's client changed:\n%s\n%s", bBefore.body, after.body)
		}
		if after := e.do("GET", "/v2/users/"+e.bob.ID, nil, bearer(ts.adminB)...); string(after.body) != string(bobBefore.body) {
			t.Errorf("org B's user changed:\n%s\n%s", bobBefore.body, after.body)
		}
	})
}

// TestServiceCrossTenantListing: every operation of the contract that reads without an id answers a service
// token with its own organization's data only: no identifier of the other organization appears in the body,
// in either direction, while its own do.
func TestServiceCrossTenantListing(t *testing.T) {
	withPerm, _ := contractOperations(t)
	forEachDB(t, func(t *testing.T, e *env) {
		ts := newTenants(t, e)
		memberA := e.user(e.orgA.ID, "listing-member@a.example", nexus.RoleMember, ts.hash)
		// One event about a user of each organization, sent with its service token.
		evA := mustAccept(t, postEvent(e, ts.allA, map[string]any{"event_name": "listed", "event_category": "tenancy", "user_id": memberA.ID}), false)
		evB := mustAccept(t, postEvent(e, ts.allB, map[string]any{"event_name": "listed", "event_category": "tenancy", "user_id": e.bob.ID}), false)
		ids := map[string][]string{
			"A": {e.orgA.ID, e.admin.ID, memberA.ID, ts.clientA, ts.secretA, evA["id"].(string), evA["event_id"].(string)},
			"B": {e.orgB.ID, e.bob.ID, ts.adminBUser.ID, ts.clientB, ts.secretB, evB["id"].(string), evB["event_id"].(string)},
		}
		tokens := map[string]string{"A": ts.allA, "B": ts.allB}
		listed := 0
		for _, key := range withPerm {
			method, path, _ := strings.Cut(key, " ")
			if method != http.MethodGet || strings.Contains(path, "/:") {
				continue
			}
			o := strictOps[key]
			listed++
			for own, other := range map[string]string{"A": "B", "B": "A"} {
				t.Run(o.ID()+"/"+own, func(t *testing.T) {
					r := e.do("GET", path, nil, bearer(tokens[own])...)
					if r.status != http.StatusOK {
						t.Fatalf("%d %s", r.status, r.body)
					}
					for _, id := range ids[other] {
						if strings.Contains(string(r.body), id) {
							t.Errorf("org %s's %s is in org %s's answer: %s", other, id, own, r.body)
						}
					}
					if data, ok := r.obj(t)["data"].([]any); ok && o.ID() != "getAnalyticsSummary" {
						seen := false
						for _, id := range ids[own] {
							seen = seen || strings.Contains(string(r.body), id)
						}
						if len(data) == 0 || !seen {
							t.Errorf("org %s's own data is not listed: %s", own, r.body)
						}
					}
				})
			}
		}
		if listed < 3 {
			t.Errorf("only %d listing operations", listed)
		}
	})
}

// TestServiceEventsForeignUser: an event a service token sends about a user of another organization gets the
// answer an event about a user who does not exist gets, alone and in a batch, and is not stored.
func TestServiceEventsForeignUser(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ts := newTenants(t, e)
		missing := uuid.NewString()
		eventID := uuid.NewString()
		ev := func(user string) map[string]any {
			return map[string]any{"event_id": eventID, "event_name": "foreign", "event_category": "tenancy", "user_id": user}
		}
		// Neither answer repeats the user_id: the bodies are compared as they are.
		var single, batch []string
		for _, user := range []string{e.bob.ID, missing} {
			r := postEvent(e, ts.allA, ev(user))
			expectProblem(t, r, http.StatusUnprocessableEntity, "unknown_user")
			single = append(single, withoutRequestID(t, r))
			b := e.do("POST", "/v2/analytics/events/batch", map[string]any{"events": []any{ev(user)}}, bearer(ts.allA)...)
			if b.status != http.StatusAccepted || b.obj(t)["rejected"] != float64(1) {
				t.Fatalf("batch: %d %s", b.status, b.body)
			}
			batch = append(batch, string(b.body))
		}
		if single[0] != single[1] {
			t.Errorf("trackEvent: an org-B user and a missing one differ:\n%s\n%s", single[0], single[1])
		}
		if batch[0] != batch[1] {
			t.Errorf("trackEventBatch: an org-B user and a missing one differ:\n%s\n%s", batch[0], batch[1])
		}
		if n := countEvents(t, e, ts.allB); n != 0 {
			t.Errorf("org B holds %d events", n)
		}
		if n := countEvents(t, e, ts.allA); n != 0 {
			t.Errorf("org A holds %d events", n)
		}
	})
}

// TestServiceIntrospectForeign: a client of org B holding tokens:introspect learns nothing of org A's tokens
// (a service token, a user's access and refresh tokens): {"active": false} and nothing else, while org A's
// introspecting client sees them active and org B's sees its own.
func TestServiceIntrospectForeign(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		ts := newTenants(t, e)
		introA, secretA := e.serviceClient(ts.adminA, "tokens:introspect")
		introB, secretB := e.serviceClient(ts.adminB, "tokens:introspect")
		userAccess, userRefresh := e.tokens(webClient)
		introspect := func(id, secret, token string) resp {
			return e.do("POST", "/v2/auth/introspect", form("token", token), "Content-Type", formType, "Authorization", basic(id, secret))
		}
		for name, tok := range map[string]string{"service access": ts.allA, "user access": userAccess, "user refresh": userRefresh} {
			if r := introspect(introA, secretA, tok); r.status != http.StatusOK || r.obj(t)["active"] != true {
				t.Fatalf("%s token, own organization: %d %s", name, r.status, r.body)
			}
			r := introspect(introB, secretB, tok)
			if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != `{"active":false}` {
				t.Errorf("%s token of org A introspected by org B: %d %q", name, r.status, r.body)
			}
		}
		if r := introspect(introB, secretB, ts.allB); r.status != http.StatusOK || r.obj(t)["active"] != true {
			t.Fatalf("org B's own token: %d %s", r.status, r.body)
		}
	})
}
