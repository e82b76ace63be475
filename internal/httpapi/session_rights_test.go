package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// userChange is a change to a user that takes rights away, as an admin sends it with PATCH /v2/users/{id}.
type userChange struct {
	name string
	body map[string]any
	// keeps reports whether a token of the changed user may still work, and then which role it must carry.
	keeps bool
	role  nexus.Role
}

var rightsTaken = []userChange{
	{name: "deactivate", body: map[string]any{"status": "inactive"}},
	{name: "demote", body: map[string]any{"role": "member"}, keeps: true, role: nexus.RoleMember},
}

// raceRounds is how many times each race is run per database: every round is a fresh user whose logins or
// refreshes overlap the change.
const raceRounds = 6

// TestLoginRacesUserChanges runs logins of a manager concurrently with the admin deactivating or demoting them,
// many rounds on both databases. Logins read the user, then spend tens of milliseconds on the password check, so
// most of them read the user before the change and start their session after it: once the change has returned,
// no token issued to the user may carry the old rights — a deactivated user's tokens are all refused, and a
// demoted user's tokens either are refused or carry the new role and get its answers.
func TestLoginRacesUserChanges(t *testing.T) {
	issued := raceUserChanges(t, "login", nil, func(u nexus.User, _ string) map[string]any {
		return map[string]any{"email": u.Email, "password": adminPassword, "client_id": webClient}
	}, "/v2/auth/login", http.StatusForbidden, "account_inactive")
	t.Logf("%d rounds per change and database: %d logins answered 200, every token checked", raceRounds, issued)
}

// TestRefreshRacesUserChanges is the same race for refreshes: sessions of the user, started before the change,
// refresh concurrently with it.
func TestRefreshRacesUserChanges(t *testing.T) {
	raceUserChanges(t, "refresh", func(e *env, u nexus.User) string {
		_, refresh := e.loginAs(u.Email, adminPassword)
		return refresh
	}, func(_ nexus.User, refresh string) map[string]any {
		return map[string]any{"refresh_token": refresh, "client_id": webClient}
	}, "/v2/auth/refresh", http.StatusUnauthorized, "invalid_grant")
}

// raceUserChanges runs, raceRounds times per change in rightsTaken and per database, requests that issue tokens
// to a fresh manager (4 at once, each with the body body makes of what prepare gave it, if anything) concurrently
// with the admin's change to that manager; each request is answered 200 or refused with status and code. Then it
// checks every token issued (checkRightsTaken), and returns how many there were.
func raceUserChanges(t *testing.T, name string, prepare func(*env, nexus.User) string, body func(nexus.User, string) map[string]any,
	path string, status int, code string) int {
	const concurrent = 4
	issued := 0
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		for round := range raceRounds {
			for _, ch := range rightsTaken {
				u := e.user(e.orgA.ID, fmt.Sprintf("%s-%s-%d@example.com", name, ch.name, round), nexus.RoleManager, hash)
				prepared := make([]string, concurrent)
				for i := range prepared {
					if prepare != nil {
						prepared[i] = prepare(e, u)
					}
				}
				var wg sync.WaitGroup
				reqs := make([]*http.Request, concurrent)
				answers := make([]resp, concurrent)
				for i := range concurrent {
					wg.Go(func() { reqs[i], answers[i] = exchange(t, e.h, "POST", path, body(u, prepared[i])) })
				}
				patched := e.do("PATCH", "/v2/users/"+u.ID, ch.body, bearer(admin)...)
				if patched.status != http.StatusOK {
					t.Fatalf("round %d %s: PATCH: %d %s", round, ch.name, patched.status, patched.body)
				}
				wg.Wait()
				var tokens []string
				for i, a := range answers {
					checkResponse(t, reqs[i], a)
					switch {
					case a.status == http.StatusOK:
						tokens = append(tokens, a.str(t, "access_token"))
					// A login is refused only when the user is deactivated (a demoted user logs in with the new
					// role); a refresh of a session the change revoked is refused either way.
					case a.status == status && (!ch.keeps || status == http.StatusUnauthorized):
						expectProblem(t, a, status, code)
					default:
						t.Fatalf("round %d %s: %s %d: %d %s", round, ch.name, name, i, a.status, a.body)
					}
				}
				issued += len(tokens)
				checkRightsTaken(t, e, round, ch, u, tokens)
			}
		}
	})
	return issued
}

// checkRightsTaken fails unless, after the change ch to u has returned, none of the tokens issued to u carries
// the rights ch took away, and u has no live session that still records them.
func checkRightsTaken(t *testing.T, e *env, round int, ch userChange, u nexus.User, tokens []string) {
	t.Helper()
	for i, tok := range tokens {
		own := e.do("GET", "/v2/users/"+u.ID, nil, bearer(tok)...)
		if !ch.keeps {
			if own.status != http.StatusUnauthorized {
				t.Fatalf("round %d %s: token %d of the deactivated user still works: %d %s", round, ch.name, i, own.status, own.body)
			}
			continue
		}
		if own.status == http.StatusUnauthorized {
			continue // issued before the change, and revoked by it
		}
		if own.status != http.StatusOK {
			t.Fatalf("round %d %s: token %d: own record %d %s", round, ch.name, i, own.status, own.body)
		}
		if _, claims := decodeJWT(t, tok); claims["role"] != string(ch.role) {
			t.Fatalf("round %d %s: token %d works and carries role %v, want %s", round, ch.name, i, claims["role"], ch.role)
		}
		if list := e.do("GET", "/v2/users?limit=1", nil, bearer(tok)...); list.status != http.StatusForbidden {
			t.Fatalf("round %d %s: token %d lists users after the demotion: %d %s", round, ch.name, i, list.status, list.body)
		}
	}
	sessions, err := e.audit.UserSessions(context.Background(), u.ID)
	must(t, err)
	for _, s := range sessions {
		if !s.Revoked() && (!ch.keeps || s.Role != ch.role) {
			t.Fatalf("round %d %s: session %s is live with role %s after the change", round, ch.name, s.ID, s.Role)
		}
	}
}

// TestTokenClaimsMatchTheirSession signs tokens with the server's own key whose claims differ from the session
// they name in one of the claims the session records (sub, org_id, client_id, role): each is refused, as a token
// whose signing key leaked must not grant more than its session. A re-signed token with the session's own
// claims is the control.
func TestTokenClaimsMatchTheirSession(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		hash, err := auth.HashPassword(adminPassword)
		must(t, err)
		carol := e.user(e.orgA.ID, "carol@example.com", nexus.RoleMember, hash)
		access, _ := e.loginAs(carol.Email, adminPassword)
		_, claims := decodeJWT(t, access)
		with := func(over map[string]any) string {
			c := map[string]any{}
			for k, v := range claims {
				c[k] = v
			}
			for k, v := range over {
				c[k] = v
			}
			return sign(t, c, e.signKey, jwa.ES256, map[string]any{"typ": "at+jwt", "kid": e.kid})
		}
		own := "/v2/users/" + carol.ID
		for name, tok := range map[string]string{
			"role raised":         with(map[string]any{"role": "admin"}),
			"another role":        with(map[string]any{"role": "analyst"}),
			"another org":         with(map[string]any{"org_id": e.orgB.ID}),
			"another client":      with(map[string]any{"client_id": orgAClient, "aud": []string{orgAClient}}),
			"another user of org": with(map[string]any{"sub": e.admin.ID}),
		} {
			t.Run(name, func(t *testing.T) {
				expectProblem(t, e.do("GET", own, nil, bearer(tok)...), http.StatusUnauthorized, "unauthenticated")
			})
		}
		if r := e.do("GET", own, nil, bearer(with(nil))...); r.status != http.StatusOK {
			t.Fatalf("control: %d %s", r.status, r.body)
		}
	})
}
