package httpapi

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// The life of a service client's credentials and tokens through the real handler on both databases: secret
// rotation and expiry, disabling, narrowing scopes, RFC 7009 revocation, and the race of a disable with token
// requests. Helpers of this file are prefixed lc (other files of the package are written at the same time).

// lcClient returns a service client as GET /v2/clients/{id} answers it.
func (e *env) lcClient(admin, id string) map[string]any {
	e.t.Helper()
	r := e.do("GET", "/v2/clients/"+id, nil, bearer(admin)...)
	if r.status != http.StatusOK {
		e.t.Fatalf("get client: %d %s", r.status, r.body)
	}
	return r.obj(e.t)
}

// lcSecrets returns the secrets of a service client as GET /v2/clients/{id} lists them, by id.
func (e *env) lcSecrets(admin, id string) map[string]map[string]any {
	e.t.Helper()
	out := map[string]map[string]any{}
	for _, s := range e.lcClient(admin, id)["secrets"].([]any) {
		m := s.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

// lcAddSecret asks for another secret of a service client, with the JSON body given.
func (e *env) lcAddSecret(admin, id string, body map[string]any) resp {
	e.t.Helper()
	return e.do("POST", "/v2/clients/"+id+"/secrets", body, bearer(admin)...)
}

// lcNewSecret adds a secret to a service client and returns its id and value.
func (e *env) lcNewSecret(admin, id string, body map[string]any) (secretID, secret string) {
	e.t.Helper()
	r := e.lcAddSecret(admin, id, body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("add secret: %d %s", r.status, r.body)
	}
	m := r.obj(e.t)
	return m["secret"].(map[string]any)["id"].(string), m["client_secret"].(string)
}

// lcPatch changes a service client, failing the test unless it answers 200, and returns the client.
func (e *env) lcPatch(admin, id string, body map[string]any) map[string]any {
	e.t.Helper()
	r := e.do("PATCH", "/v2/clients/"+id, body, bearer(admin)...)
	if r.status != http.StatusOK {
		e.t.Fatalf("PATCH client %v: %d %s", body, r.status, r.body)
	}
	return r.obj(e.t)
}

// lcUsers calls GET /v2/users with an access token.
func (e *env) lcUsers(tok string) resp {
	e.t.Helper()
	return e.do("GET", "/v2/users", nil, bearer(tok)...)
}

// lcServes fails unless every node serves GET /v2/users with each token (twice: the second time from the caches).
func lcServes(t *testing.T, what string, nodes []*env, tokens ...string) {
	t.Helper()
	for _, n := range nodes {
		for _, tok := range append(tokens, tokens...) {
			if r := n.lcUsers(tok); r.status != http.StatusOK {
				t.Fatalf("%s: %d %s", what, r.status, r.body)
			}
		}
	}
}

// lcRefused fails unless the first node refuses every token at once, and every other node no later than
// revocationBound after the call (the revocation feed), although all of them had served the tokens before.
func lcRefused(t *testing.T, what string, nodes []*env, tokens ...string) {
	t.Helper()
	start := time.Now()
	for _, tok := range tokens {
		expectProblem(t, nodes[0].lcUsers(tok), http.StatusUnauthorized, "unauthenticated")
	}
	for _, n := range nodes[1:] {
		for _, tok := range tokens {
			for {
				sent := time.Now()
				r := n.lcUsers(tok)
				if r.status == http.StatusUnauthorized {
					expectProblem(t, r, http.StatusUnauthorized, "unauthenticated")
					break
				}
				if r.status != http.StatusOK || sent.Sub(start) > revocationBound {
					t.Fatalf("%s: the other node answered %d %s %v after the revocation", what, r.status, r.body, sent.Sub(start))
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
}

// lcTime parses a date-time member of a response.
func lcTime(t *testing.T, m map[string]any, key string) time.Time {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%s missing in %v", key, m)
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	must(t, err)
	return v
}

// TestServiceSecretRotation rotates a secret without downtime: a second secret is added, both obtain tokens, a
// third is refused, last_used_at tells which secret was used when; then the first is revoked: it stops at once,
// every token obtained with it is refused at once (on another node within the revocation bound), and the second
// secret and its tokens keep working.
func TestServiceSecretRotation(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		nodes := []*env{e, e.instance()}
		id, s1 := e.serviceClient(admin, "users:list")
		secs := e.lcSecrets(admin, id)
		if len(secs) != 1 {
			t.Fatalf("a new client has secrets %v", secs)
		}
		var sec1 string
		for sid, s := range secs {
			sec1 = sid
			if _, used := s["last_used_at"]; used {
				t.Fatalf("an unused secret has last_used_at: %v", s)
			}
		}

		t1 := e.serviceToken(id, s1, "")
		t1b := e.serviceToken(id, s1, "")
		used1 := e.clock.Now()
		e.clock.Advance(time.Minute)
		sec2, s2 := e.lcNewSecret(admin, id, map[string]any{})
		if s2 == s1 || sec2 == sec1 {
			t.Fatalf("the second secret repeats the first")
		}
		t2 := e.serviceToken(id, s2, "")
		used2 := e.clock.Now()
		lcServes(t, "both secrets' tokens", nodes, t1, t1b, t2)

		expectProblem(t, e.lcAddSecret(admin, id, map[string]any{}), http.StatusConflict, "conflict")
		secs = e.lcSecrets(admin, id)
		if len(secs) != 2 {
			t.Fatalf("secrets after the rotation began: %v", secs)
		}
		if got := lcTime(t, secs[sec1], "last_used_at"); !got.Equal(used1) {
			t.Errorf("first secret last_used_at %v, want %v", got, used1)
		}
		if got := lcTime(t, secs[sec2], "last_used_at"); !got.Equal(used2) {
			t.Errorf("second secret last_used_at %v, want %v", got, used2)
		}

		r := e.do("DELETE", "/v2/clients/"+id+"/secrets/"+sec1, nil, bearer(admin)...)
		if r.status != http.StatusNoContent {
			t.Fatalf("revoke the first secret: %d %s", r.status, r.body)
		}
		expectOAuthError(t, e.clientToken(id, s1, ""), http.StatusUnauthorized, "invalid_client", "invalid_client")
		expectOAuthError(t, e.do("POST", "/v2/auth/token", form("grant_type", "client_credentials", "client_id", id, "client_secret", s1),
			"Content-Type", formType), http.StatusUnauthorized, "invalid_client", "invalid_client")
		lcRefused(t, "tokens of the revoked secret", nodes, t1, t1b)
		lcServes(t, "tokens of the second secret", nodes, t2, e.serviceToken(id, s2, ""))

		expectProblem(t, e.do("DELETE", "/v2/clients/"+id+"/secrets/"+sec1, nil, bearer(admin)...), http.StatusNotFound, "not_found")
		if secs = e.lcSecrets(admin, id); len(secs) != 1 || secs[sec2] == nil {
			t.Fatalf("secrets after the revocation: %v", secs)
		}
		_, s3 := e.lcNewSecret(admin, id, map[string]any{}) // the revoked secret no longer counts
		lcServes(t, "the third secret's token", nodes, e.serviceToken(id, s3, ""))
	})
}

// TestServiceSecretExpiry: an expiry in the past is refused; a secret stops by itself at its expiry (the client's
// other secret keeps working), and an expired secret still counts towards the two.
func TestServiceSecretExpiry(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		past := e.clock.Now().Add(-time.Second).Format(time.RFC3339)
		r := e.do("POST", "/v2/clients", map[string]any{"name": "svc", "scopes": []string{"users:list"}, "secret_expires_at": past}, bearer(admin)...)
		expectInvalid(t, r, "/secret_expires_at")
		r = e.do("POST", "/v2/clients", map[string]any{"name": "svc", "scopes": []string{"users:list"},
			"secret_expires_at": e.clock.Now().Format(time.RFC3339)}, bearer(admin)...)
		expectInvalid(t, r, "/secret_expires_at")

		id, s1 := e.serviceClient(admin, "users:list")
		expectInvalid(t, e.lcAddSecret(admin, id, map[string]any{"expires_at": past}), "/expires_at")
		expires := e.clock.Now().Add(time.Hour)
		sec2, s2 := e.lcNewSecret(admin, id, map[string]any{"expires_at": expires.Format(time.RFC3339)})
		if got := lcTime(t, e.lcSecrets(admin, id)[sec2], "expires_at"); !got.Equal(expires) {
			t.Fatalf("expires_at %v, want %v", got, expires)
		}
		e.serviceToken(id, s2, "")

		e.clock.Advance(time.Hour - time.Second)
		e.serviceToken(id, s2, "")
		e.clock.Advance(time.Second)
		expectOAuthError(t, e.clientToken(id, s2, ""), http.StatusUnauthorized, "invalid_client", "invalid_client")
		e.clock.Advance(time.Hour)
		expectOAuthError(t, e.clientToken(id, s2, ""), http.StatusUnauthorized, "invalid_client", "invalid_client")
		lcServes(t, "the other secret's token", []*env{e}, e.serviceToken(id, s1, ""))

		admin, _ = e.tokens(webClient) // the first one has expired
		if secs := e.lcSecrets(admin, id); len(secs) != 2 || secs[sec2] == nil {
			t.Fatalf("an expired secret is still listed: %v", secs)
		}
		expectProblem(t, e.lcAddSecret(admin, id, map[string]any{}), http.StatusConflict, "conflict")

		// The first secret of a client may expire too.
		r = e.do("POST", "/v2/clients", map[string]any{"name": "short", "scopes": []string{"users:list"},
			"secret_expires_at": e.clock.Now().Add(10 * time.Minute).Format(time.RFC3339)}, bearer(admin)...)
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		m := r.obj(t)
		short, shortSecret := m["client"].(map[string]any)["client_id"].(string), m["client_secret"].(string)
		e.serviceToken(short, shortSecret, "")
		e.clock.Advance(10 * time.Minute)
		expectOAuthError(t, e.clientToken(short, shortSecret, ""), http.StatusUnauthorized, "invalid_client", "invalid_client")
	})
}

// TestServiceClientDisabled: disabling a client refuses its tokens at once (on another node within the
// revocation bound) and its credentials; re-enabling it lets it obtain tokens again, but revives none.
func TestServiceClientDisabled(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		nodes := []*env{e, e.instance()}
		id, s := e.serviceClient(admin, "users:list")
		other, otherSecret := e.serviceClient(admin, "users:list")
		tok, otherTok := e.serviceToken(id, s, ""), e.serviceToken(other, otherSecret, "")
		lcServes(t, "before", nodes, tok, otherTok)

		if got := e.lcPatch(admin, id, map[string]any{"status": "disabled"})["status"]; got != "disabled" {
			t.Fatalf("status %v", got)
		}
		lcRefused(t, "the disabled client's token", nodes, tok)
		expectOAuthError(t, e.clientToken(id, s, ""), http.StatusUnauthorized, "invalid_client", "invalid_client")
		expectOAuthError(t, e.do("POST", "/v2/auth/token", form("grant_type", "client_credentials", "client_id", id, "client_secret", s),
			"Content-Type", formType), http.StatusUnauthorized, "invalid_client", "invalid_client")
		lcServes(t, "another client's token", nodes, otherTok)
		if got := e.lcClient(admin, id)["status"]; got != "disabled" {
			t.Fatalf("status read back %v", got)
		}

		if got := e.lcPatch(admin, id, map[string]any{"status": "active"})["status"]; got != "active" {
			t.Fatalf("status %v", got)
		}
		lcServes(t, "a token after re-enabling", nodes, e.serviceToken(id, s, ""))
		expectProblem(t, e.lcUsers(tok), http.StatusUnauthorized, "unauthenticated")
	})
}

// TestServiceScopeNarrowing: taking a scope away revokes every live token of the client at once (those without
// the scope too); new tokens carry only what is left; adding a scope revokes nothing.
func TestServiceScopeNarrowing(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		nodes := []*env{e, e.instance()}
		id, s := e.serviceClient(admin, "users:list", "users:read")
		all, narrow := e.serviceToken(id, s, ""), e.serviceToken(id, s, "users:list")
		lcServes(t, "before", nodes, all, narrow)

		e.lcPatch(admin, id, map[string]any{"scopes": []string{"users:list", "users:read", "clients:read"}})
		lcServes(t, "after adding a scope", nodes, all, narrow)

		e.lcPatch(admin, id, map[string]any{"scopes": []string{"users:list"}})
		lcRefused(t, "tokens after taking a scope away", nodes, all, narrow)
		r := e.clientToken(id, s, "")
		if r.status != http.StatusOK || r.str(t, "scope") != "users:list" {
			t.Fatalf("token after narrowing: %d %s", r.status, r.body)
		}
		lcServes(t, "a token after narrowing", nodes, r.str(t, "access_token"))
		expectOAuthError(t, e.clientToken(id, s, "users:read"), http.StatusBadRequest, "invalid_scope", "invalid_scope")
	})
}

// lcRevoke posts a token to the revocation endpoint with the client authentication given (header pairs or body
// parameters) and fails the test unless it answers 200 with an empty body and Cache-Control: no-store.
func (e *env) lcRevoke(token string, body []string, header ...string) {
	e.t.Helper()
	r := e.do("POST", "/v2/auth/revoke", form(append([]string{"token", token}, body...)...), append([]string{"Content-Type", formType}, header...)...)
	if r.status != http.StatusOK || len(r.body) != 0 || r.header.Get("Cache-Control") != "no-store" {
		e.t.Fatalf("revoke: %d %v %s", r.status, r.header, r.body)
	}
}

// TestRevokeTokens exercises RFC 7009 revocation: a user's refresh token or access token revokes the user's
// session (the refresh fails, the access token is refused on every node), a service token revokes itself alone;
// unknown, malformed, expired, already revoked and other clients' tokens get the same 200 and stay as they were.
func TestRevokeTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		nodes := []*env{e, e.instance()}
		web := []string{"client_id", webClient}

		// A user's refresh token, by a public client (client_id in the body), with the hint.
		access, refresh := e.tokens(webClient)
		lcServes(t, "user token", nodes, access)
		e.lcRevoke(refresh, append([]string{"token_type_hint", "refresh_token"}, web...))
		expectProblem(t, e.refresh(refresh, webClient), http.StatusUnauthorized, "invalid_grant")
		lcRefused(t, "the access token of a revoked refresh token", nodes, access)

		// A user's access token, by HTTP Basic with an empty password; a misleading hint is only a hint.
		access, refresh = e.tokens(webClient)
		lcServes(t, "user token", nodes, access)
		e.lcRevoke(access, []string{"token_type_hint", "refresh_token"}, "Authorization", basic(webClient, ""))
		lcRefused(t, "a revoked access token", nodes, access)
		expectProblem(t, e.refresh(refresh, webClient), http.StatusUnauthorized, "invalid_grant")

		// A service token alone: the client's other token lives on.
		id, s := e.serviceClient(admin, "users:list")
		t1, t2 := e.serviceToken(id, s, ""), e.serviceToken(id, s, "")
		lcServes(t, "service tokens", nodes, t1, t2)
		e.lcRevoke(t1, []string{"token_type_hint", "access_token"}, "Authorization", basic(id, s))
		lcRefused(t, "a revoked service token", nodes, t1)
		lcServes(t, "the client's other token", nodes, t2)

		// Always 200, and nothing changes: unknown, malformed, already revoked, another client's.
		other, otherSecret := e.serviceClient(admin, "users:list")
		otherTok := e.serviceToken(other, otherSecret, "")
		userAccess, userRefresh := e.tokens(webClient)
		asService := []string{"Authorization", basic(id, s)}
		for _, tok := range []string{"unknown", "nxr_not-a-refresh-token", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", t1, access, refresh} {
			e.lcRevoke(tok, nil, asService...)
			e.lcRevoke(tok, web)
		}
		e.lcRevoke(otherTok, nil, asService...)                    // another service client's token
		e.lcRevoke(otherTok, web)                                  // by a login client
		e.lcRevoke(userAccess, nil, asService...)                  // a user's token, by a service client
		e.lcRevoke(userRefresh, nil, asService...)                 // a user's refresh token, by a service client
		e.lcRevoke(userAccess, []string{"client_id", orgAClient})  // issued through another login client
		e.lcRevoke(userRefresh, []string{"client_id", orgAClient}) // issued through another login client
		e.lcRevoke(t2, nil, "Authorization", basic(other, otherSecret))
		lcServes(t, "tokens another client tried to revoke", nodes, otherTok, userAccess, t2)
		if r := e.refresh(userRefresh, webClient); r.status != http.StatusOK {
			t.Fatalf("the refresh token another client tried to revoke: %d %s", r.status, r.body)
		}

		// Expired tokens: still 200.
		t3 := e.serviceToken(id, s, "")
		e.clock.Advance(16 * time.Minute)
		e.lcRevoke(t3, nil, asService...)
		e.lcRevoke(userAccess, web)
	})
}

// disableRaceRounds is how many times, per database, a client is disabled while it asks for tokens.
const disableRaceRounds = 25

// TestServiceDisableRacesTokens disables a service client while requests for its tokens are in flight, many
// rounds on both databases. A token request authenticates the client (a read) before it starts the token's
// session, so without a check of the client again under its lock, a request that read the client before the
// disable and started its session after it would issue a token the disable never revoked. Once the disable has
// answered, no token issued before or during it may authenticate.
func TestServiceDisableRacesTokens(t *testing.T) {
	const concurrent = 6
	issued := 0
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		for round := range disableRaceRounds {
			id, s := e.serviceClient(admin, "users:list")
			tokens := []string{e.serviceToken(id, s, "")}
			var wg sync.WaitGroup
			reqs := make([]*http.Request, concurrent)
			answers := make([]resp, concurrent)
			for i := range concurrent {
				wg.Go(func() {
					reqs[i], answers[i] = exchange(t, e.h, "POST", "/v2/auth/token", form("grant_type", "client_credentials"),
						"Content-Type", formType, "Authorization", basic(id, s))
				})
			}
			e.lcPatch(admin, id, map[string]any{"status": "disabled"})
			wg.Wait()
			// Every refusal is the one a disabled client gets, whether the disable was seen at authentication or
			// by the check under the lock: the answer does not tell when the client was disabled.
			_, _, refusal := lcComparable(t, e.clientToken(id, s, ""))
			for i, a := range answers {
				checkResponse(t, reqs[i], a)
				switch a.status {
				case http.StatusOK:
					tokens = append(tokens, a.str(t, "access_token"))
				case http.StatusUnauthorized:
					expectOAuthError(t, a, http.StatusUnauthorized, "invalid_client", "invalid_client")
					if _, _, b := lcComparable(t, a); b != refusal {
						t.Fatalf("round %d: token request %d refused with %s, a disabled client's refusal is %s", round, i, b, refusal)
					}
				default:
					t.Fatalf("round %d: token request %d: %d %s", round, i, a.status, a.body)
				}
			}
			issued += len(tokens) - 1
			for i, tok := range tokens {
				if r := e.lcUsers(tok); r.status != http.StatusUnauthorized {
					t.Fatalf("round %d: token %d of %d issued before or during the disable answers %d %s", round, i, len(tokens), r.status, r.body)
				}
			}
		}
	})
	t.Logf("%d rounds of %d requests per database: %d tokens issued during the disable, every one refused after it",
		disableRaceRounds, concurrent, issued)
}
