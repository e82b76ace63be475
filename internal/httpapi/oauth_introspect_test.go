package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// lcIntrospect asks the introspection endpoint about token, as the client authenticated by HTTP Basic.
func (e *env) lcIntrospect(id, secret, token string) resp {
	e.t.Helper()
	return e.do("POST", "/v2/auth/introspect", form("token", token), "Content-Type", formType, "Authorization", basic(id, secret))
}

// lcActive fails unless r is an active introspection answer, and returns it.
func lcActive(t *testing.T, what string, r resp) map[string]any {
	t.Helper()
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%s: %d %v %s", what, r.status, r.header, r.body)
	}
	m := r.obj(t)
	if m["active"] != true {
		t.Fatalf("%s: not active: %s", what, r.body)
	}
	return m
}

// lcInactive fails unless r is exactly the inactive answer: {"active":false} and nothing else.
func lcInactive(t *testing.T, what string, r resp) {
	t.Helper()
	if r.status != http.StatusOK || strings.TrimSuffix(string(r.body), "\n") != `{"active":false}` || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("%s: want exactly {\"active\":false}, got %d %v %s", what, r.status, r.header, r.body)
	}
}

// lcClaimsOf returns the claims of a JWT without verifying it.
func lcClaimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	_, claims := decodeJWT(t, tok)
	return claims
}

// lcSameClaims fails unless the introspection answer m gives the token's claims for each name.
func lcSameClaims(t *testing.T, what string, m, claims map[string]any, names ...string) {
	t.Helper()
	for _, n := range names {
		if m[n] != claims[n] || m[n] == nil {
			t.Errorf("%s: %s is %v, the token says %v", what, n, m[n], claims[n])
		}
	}
}

// lcAdminOf adds an active admin to an organization and returns their access token.
func (e *env) lcAdminOf(orgID, email string) string {
	e.t.Helper()
	hash, err := auth.HashPassword(adminPassword)
	must(e.t, err)
	e.user(orgID, email, nexus.RoleAdmin, hash)
	access, _ := e.loginAs(email, adminPassword)
	return access
}

// TestIntrospectionAllowed: only a service client holding tokens:introspect may introspect; others, login
// clients included, get 403 unauthorized_client whatever the token, and a wrong secret is invalid_client.
func TestIntrospectionAllowed(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		intro, introSecret := e.serviceClient(admin, "tokens:introspect")
		plain, plainSecret := e.serviceClient(admin, "users:list", "users:read", "clients:read", "clients:write")
		tok := e.serviceToken(plain, plainSecret, "")
		lcActive(t, "with tokens:introspect", e.lcIntrospect(intro, introSecret, tok))
		for name, r := range map[string]resp{
			"service client without the scope": e.lcIntrospect(plain, plainSecret, tok),
			"about an invalid token":           e.lcIntrospect(plain, plainSecret, "garbage"),
			"login client": e.do("POST", "/v2/auth/introspect", form("token", tok, "client_id", webClient),
				"Content-Type", formType),
			"login client by Basic": e.do("POST", "/v2/auth/introspect", form("token", tok),
				"Content-Type", formType, "Authorization", basic(webClient, "")),
		} {
			t.Run(name, func(t *testing.T) {
				expectOAuthError(t, r, http.StatusForbidden, "unauthorized_client", "insufficient_permission")
			})
		}
		expectOAuthError(t, e.lcIntrospect(intro, introSecret+"x", tok), http.StatusUnauthorized, "invalid_client", "invalid_client")
		// The scope taken away: the client may no longer introspect.
		e.lcPatch(admin, intro, map[string]any{"scopes": []string{"users:list"}})
		expectOAuthError(t, e.lcIntrospect(intro, introSecret, tok), http.StatusForbidden, "unauthorized_client", "insufficient_permission")
	})
}

// TestIntrospectionActive describes active tokens by their claims: a service token (scope, no role), a user's
// access token (role, no scope), a refresh token (its session); iss is the metadata's issuer.
func TestIntrospectionActive(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, refresh := e.tokens(webClient)
		issuer := e.do("GET", "/v2/.well-known/oauth-authorization-server", nil).str(t, "issuer")
		intro, introSecret := e.serviceClient(admin, "tokens:introspect")
		svc, svcSecret := e.serviceClient(admin, "users:list", "users:read")
		tok := e.serviceToken(svc, svcSecret, "users:read")

		m := lcActive(t, "service token", e.lcIntrospect(intro, introSecret, tok))
		claims := lcClaimsOf(t, tok)
		lcSameClaims(t, "service token", m, claims, "scope", "client_id", "sub", "org_id", "iss", "exp", "iat", "nbf", "jti", "sid")
		if m["scope"] != "users:read" || m["client_id"] != svc || m["sub"] != svc || m["org_id"] != e.orgA.ID ||
			m["iss"] != issuer || m["token_type"] != "Bearer" || m["aud"] != svc || m["role"] != nil {
			t.Errorf("service token: %v", m)
		}
		if exp := int64(m["exp"].(float64)); exp != e.clock.Now().Add(15*time.Minute).Unix() {
			t.Errorf("service token exp %d", exp)
		}

		m = lcActive(t, "user token", e.lcIntrospect(intro, introSecret, admin))
		claims = lcClaimsOf(t, admin)
		lcSameClaims(t, "user token", m, claims, "role", "client_id", "sub", "org_id", "iss", "exp", "iat", "nbf", "jti", "sid")
		if m["role"] != "admin" || m["sub"] != e.admin.ID || m["client_id"] != webClient || m["iss"] != issuer ||
			m["token_type"] != "Bearer" || m["scope"] != nil {
			t.Errorf("user token: %v", m)
		}

		m = lcActive(t, "refresh token", e.lcIntrospect(intro, introSecret, refresh))
		if m["token_type"] != "refresh_token" || m["role"] != "admin" || m["sub"] != e.admin.ID || m["client_id"] != webClient ||
			m["org_id"] != e.orgA.ID || m["iss"] != issuer || m["sid"] != claims["sid"] || m["scope"] != nil || m["jti"] != nil {
			t.Errorf("refresh token: %v", m)
		}
		// The client's own token is a token of its organization too.
		lcActive(t, "own token", e.lcIntrospect(intro, introSecret, e.serviceToken(intro, introSecret, "")))
	})
}

// TestIntrospectionInactive: expired, revoked, forged, foreign and garbage tokens are all {"active":false}, and
// nothing else.
func TestIntrospectionInactive(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		intro, introSecret := e.serviceClient(admin, "tokens:introspect")
		ask := func(tok string) resp { return e.lcIntrospect(intro, introSecret, tok) }
		svc, svcSecret := e.serviceClient(admin, "users:list", "users:read")

		// Forged: re-signed with another key under the server's kid; a payload altered under the original
		// signature; a payload altered and signed with the server's own key (its session says otherwise).
		tok := e.serviceToken(svc, svcSecret, "users:read")
		lcActive(t, "before forging", ask(tok))
		parts := strings.Split(tok, ".")
		header, err := base64.RawURLEncoding.DecodeString(parts[0])
		must(t, err)
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		must(t, err)
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		widened := strings.Replace(string(payload), `"scope":"users:read"`, `"scope":"users:list users:read"`, 1)
		if widened == string(payload) {
			t.Fatalf("payload %s", payload)
		}
		lcInactive(t, "re-signed with another key", ask(signJSON(t, other, string(header), string(payload))))
		lcInactive(t, "payload altered", ask(parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(widened))+"."+parts[2]))
		lcInactive(t, "payload altered, signed with the server's key", ask(signJSON(t, e.signKey, string(header), widened)))
		lcInactive(t, "signature cut", ask(parts[0]+"."+parts[1]+"."))
		lcActive(t, "the original", ask(tok))

		// Garbage.
		for _, g := range []string{"garbage", "a.b.c", "nxr_garbage", "eyJhbGciOiJub25lIn0.e30.", strings.Repeat("x", 4096)} {
			lcInactive(t, "garbage "+g[:min(len(g), 12)], ask(g))
		}

		// Foreign: another organization's service token and user tokens, asked by org A's client; org B's own
		// introspecting client sees them active.
		bAdmin := e.lcAdminOf(e.orgB.ID, "boss@example.org")
		bIntro, bIntroSecret := e.serviceClient(bAdmin, "tokens:introspect")
		bSvc, bSvcSecret := e.serviceClient(bAdmin, "users:list")
		bTok := e.serviceToken(bSvc, bSvcSecret, "")
		bobAccess, bobRefresh := e.loginAs(e.bob.Email, adminPassword)
		for name, tok := range map[string]string{"service token": bTok, "user token": bobAccess, "refresh token": bobRefresh, "admin token": bAdmin} {
			lcInactive(t, "org B's "+name, ask(tok))
			lcActive(t, "org B's "+name+" asked by org B", e.lcIntrospect(bIntro, bIntroSecret, tok))
		}
		lcInactive(t, "org A's token asked by org B", e.lcIntrospect(bIntro, bIntroSecret, tok))

		// Revoked: by RFC 7009, by logout (access and refresh), by disabling the client, by revoking the secret.
		revoked := e.serviceToken(svc, svcSecret, "")
		e.lcRevoke(revoked, nil, "Authorization", basic(svc, svcSecret))
		lcInactive(t, "revoked service token", ask(revoked))
		access, refresh := e.tokens(webClient)
		lcActive(t, "before logout", ask(refresh))
		if r := e.logout(access); r.status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", r.status, r.body)
		}
		lcInactive(t, "logged out access token", ask(access))
		lcInactive(t, "logged out refresh token", ask(refresh))
		_, rotated := e.tokens(webClient)
		if r := e.refresh(rotated, webClient); r.status != http.StatusOK {
			t.Fatalf("refresh: %d %s", r.status, r.body)
		}
		lcInactive(t, "a rotated refresh token", ask(rotated))
		dis, disSecret := e.serviceClient(admin, "users:list")
		disTok := e.serviceToken(dis, disSecret, "")
		e.lcPatch(admin, dis, map[string]any{"status": "disabled"})
		lcInactive(t, "a disabled client's token", ask(disTok))
		secID, sec2 := e.lcNewSecret(admin, svc, map[string]any{})
		sec2Tok := e.serviceToken(svc, sec2, "")
		lcActive(t, "before the secret's revocation", ask(sec2Tok))
		if r := e.do("DELETE", "/v2/clients/"+svc+"/secrets/"+secID, nil, bearer(admin)...); r.status != http.StatusNoContent {
			t.Fatalf("revoke secret: %d %s", r.status, r.body)
		}
		lcInactive(t, "a revoked secret's token", ask(sec2Tok))

		// Expired.
		live := e.serviceToken(svc, svcSecret, "")
		e.clock.Advance(15*time.Minute - time.Second)
		lcActive(t, "service token a second before expiry", ask(live))
		lcActive(t, "user token a second before expiry", ask(admin))
		e.clock.Advance(time.Second)
		lcInactive(t, "expired service token", ask(live))
		lcInactive(t, "expired user token", ask(admin))
		_, longRefresh := e.tokens(webClient)
		e.clock.Advance(30 * 24 * time.Hour)
		lcInactive(t, "idle-expired refresh token", ask(longRefresh))
	})
}

// TestAuthorizationServerMetadata checks the RFC 8414 document against what the server does: served alike at
// both locations, its issuer the iss of the tokens, its endpoints the ones that answer, its jwks_uri the keys
// that verify the tokens, its scopes the permissions.
func TestAuthorizationServerMetadata(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		r := e.do("GET", "/v2/.well-known/oauth-authorization-server", nil)
		root := e.do("GET", "/.well-known/oauth-authorization-server", nil)
		if r.status != http.StatusOK || root.status != http.StatusOK {
			t.Fatalf("metadata: %d %s; at the root: %d %s", r.status, r.body, root.status, root.body)
		}
		sameJSON(t, "the two metadata documents", root.obj(t), r.obj(t))
		for _, h := range []string{"Cache-Control", "Content-Type"} {
			if r.header.Get(h) != root.header.Get(h) {
				t.Errorf("%s: %q and %q at the root", h, r.header.Get(h), root.header.Get(h))
			}
		}
		var md struct {
			Issuer                string   `json:"issuer"`
			TokenEndpoint         string   `json:"token_endpoint"`
			RevocationEndpoint    string   `json:"revocation_endpoint"`
			IntrospectionEndpoint string   `json:"introspection_endpoint"`
			JwksURI               string   `json:"jwks_uri"`
			Grants                []string `json:"grant_types_supported"`
			AuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
			Scopes                []string `json:"scopes_supported"`
		}
		must(t, json.Unmarshal(r.body, &md))
		if md.Issuer != testIssuer {
			t.Errorf("issuer %q", md.Issuer)
		}

		admin, _ := e.tokens(webClient)
		id, secret := e.serviceClient(admin, "users:list", "tokens:introspect")
		tokenURL, err := url.Parse(md.TokenEndpoint)
		must(t, err)
		if !strings.HasPrefix(md.TokenEndpoint, md.Issuer+"/") {
			t.Errorf("token endpoint %q is not under the issuer", md.TokenEndpoint)
		}
		tr := e.do("POST", tokenURL.Path, form("grant_type", "client_credentials"), "Content-Type", formType, "Authorization", basic(id, secret))
		if tr.status != http.StatusOK {
			t.Fatalf("token endpoint %s: %d %s", tokenURL.Path, tr.status, tr.body)
		}
		tok := tr.str(t, "access_token")
		for name, tk := range map[string]string{"service": tok, "user": admin} {
			if iss := lcClaimsOf(t, tk)["iss"]; iss != md.Issuer {
				t.Errorf("%s token iss %v, metadata issuer %q", name, iss, md.Issuer)
			}
		}
		introURL, err := url.Parse(md.IntrospectionEndpoint)
		must(t, err)
		lcActive(t, "introspection endpoint", e.do("POST", introURL.Path, form("token", tok), "Content-Type", formType, "Authorization", basic(id, secret)))
		revokeURL, err := url.Parse(md.RevocationEndpoint)
		must(t, err)
		if rr := e.do("POST", revokeURL.Path, form("token", tok), "Content-Type", formType, "Authorization", basic(id, secret)); rr.status != http.StatusOK {
			t.Fatalf("revocation endpoint %s: %d %s", revokeURL.Path, rr.status, rr.body)
		}
		expectProblem(t, e.lcUsers(tok), http.StatusUnauthorized, "unauthenticated")

		jwksURL, err := url.Parse(md.JwksURI)
		must(t, err)
		jr := e.do("GET", jwksURL.Path, nil)
		if jr.status != http.StatusOK {
			t.Fatalf("jwks_uri %s: %d %s", jwksURL.Path, jr.status, jr.body)
		}
		set, err := jwk.Parse(jr.body)
		must(t, err)
		fresh := e.serviceToken(id, secret, "users:list")
		for name, tk := range map[string]string{"service": fresh, "user": admin} {
			if _, err := jws.Verify([]byte(tk), jws.WithKeySet(set, jws.WithRequireKid(true))); err != nil {
				t.Errorf("the %s token does not verify with the keys at jwks_uri: %v", name, err)
			}
		}
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		hdr, claims := decodeJWT(t, fresh)
		h, _ := json.Marshal(hdr)
		c, _ := json.Marshal(claims)
		if _, err := jws.Verify([]byte(signJSON(t, other, string(h), string(c))), jws.WithKeySet(set, jws.WithRequireKid(true))); err == nil {
			t.Errorf("a token signed with another key verifies with the keys at jwks_uri")
		}

		var perms []string
		for _, p := range nexus.Permissions() {
			perms = append(perms, string(p))
		}
		sameJSON(t, "scopes_supported", md.Scopes, perms)
		for _, want := range []string{"client_credentials", "refresh_token"} {
			if !strings.Contains(" "+strings.Join(md.Grants, " ")+" ", " "+want+" ") {
				t.Errorf("grant_types_supported %v lacks %s", md.Grants, want)
			}
		}
		for _, want := range []string{"client_secret_basic", "client_secret_post"} {
			if !strings.Contains(" "+strings.Join(md.AuthMethods, " ")+" ", " "+want+" ") {
				t.Errorf("token_endpoint_auth_methods_supported %v lacks %s", md.AuthMethods, want)
			}
		}
	})
}
