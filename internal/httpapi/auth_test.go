package httpapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/nexus-cloud/nexus-core/internal/auth"
)

// decodeJWT returns the header and claims of a compact JWS without verifying it.
func decodeJWT(t *testing.T, tok string) (map[string]any, map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", tok)
	}
	var hdr, claims map[string]any
	for i, dst := range []*map[string]any{&hdr, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		must(t, err)
		must(t, json.Unmarshal(raw, dst))
	}
	return hdr, claims
}

func TestLogin(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		r := e.do("POST", "/v2/auth/login", map[string]any{"email": "ADA@Example.COM", "password": adminPassword,
			"client_id": webClient, "ip_address": "2001:db8::7"}, "User-Agent", "nexus-test/1.0")
		if r.status != http.StatusOK {
			t.Fatalf("login: %d %s", r.status, r.body)
		}
		if got := r.header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", got)
		}
		body := r.obj(t)
		if body["token_type"] != "Bearer" || body["expires_in"] != float64(900) || body["refresh_expires_in"] != float64(30*24*3600) {
			t.Errorf("token fields: %s", r.body)
		}
		user := body["user"].(map[string]any)
		want := map[string]any{"id": e.admin.ID, "organization_id": e.orgA.ID, "email": adminEmail, "role": "admin", "status": "active"}
		for k, v := range want {
			if user[k] != v {
				t.Errorf("user.%s = %v, want %v", k, user[k], v)
			}
		}
		if strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "password") {
			t.Errorf("login response leaks credentials: %s", r.body)
		}
		hdr, claims := decodeJWT(t, r.str(t, "access_token"))
		if hdr["typ"] != "at+jwt" || hdr["alg"] != "ES256" || hdr["kid"] == nil {
			t.Errorf("access token header = %v", hdr)
		}
		now := float64(e.clock.Now().Unix())
		wantClaims := map[string]any{"iss": testIssuer, "sub": e.admin.ID, "aud": []any{webClient}, "client_id": webClient,
			"org_id": e.orgA.ID, "role": "admin", "iat": now, "nbf": now, "exp": now + 900}
		for k, v := range wantClaims {
			if diff := cmp.Diff(v, claims[k]); diff != "" {
				t.Errorf("claim %s (-want +got):\n%s", k, diff)
			}
		}
		if claims["jti"] == "" || claims["sid"] == "" {
			t.Errorf("claims lack jti or sid: %v", claims)
		}
		if rt := r.str(t, "refresh_token"); !strings.HasPrefix(rt, "nxr_") || len(rt) < 60 {
			t.Errorf("refresh token %q is not an opaque high-entropy token", rt)
		}
		// jti is unique per token.
		_, claims2 := decodeJWT(t, e.login(adminEmail, adminPassword, webClient).str(t, "access_token"))
		if claims2["jti"] == claims["jti"] || claims2["sid"] == claims["sid"] {
			t.Errorf("two logins share jti or sid")
		}

		events, err := e.audit.AuthEvents(context.Background())
		must(t, err)
		var ev auth.AuditEvent
		for _, x := range events {
			if x.SessionID == claims["sid"] {
				ev = x
			}
		}
		if ev.Action != "login" || ev.Result != "success" || ev.UserID != e.admin.ID || ev.OrganizationID != e.orgA.ID ||
			ev.ClientID != webClient || ev.ReportedIP != "2001:db8::7" || ev.SocketIP != "192.0.2.1" ||
			ev.UserAgent != "nexus-test/1.0" || ev.SessionID != claims["sid"] {
			t.Errorf("audit entry = %+v", ev)
		}
	})
}

func TestLoginFailuresAreUniform(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		attempts := map[string]resp{
			"unknown email":              e.login("nobody@example.com", adminPassword, webClient),
			"wrong password":             e.login(adminEmail, "wrong password entirely", webClient),
			"inactive, wrong password":   e.login("idle@example.com", "wrong password entirely", webClient),
			"other org client, wrong pw": e.login(adminEmail, "wrong password entirely", orgBClient),
		}
		var first string
		for name, r := range attempts {
			expectProblem(t, r, http.StatusUnauthorized, "invalid_credentials")
			body := withoutRequestID(t, r)
			if first == "" {
				first = body
			} else if body != first {
				t.Errorf("%s: body differs:\n%s\n%s", name, body, first)
			}
		}
		expectProblem(t, e.login("idle@example.com", adminPassword, webClient), http.StatusForbidden, "account_inactive")

		events, err := e.audit.AuthEvents(context.Background())
		must(t, err)
		var unknown int
		for _, ev := range events {
			if ev.Result == "invalid_credentials" && ev.UserID == "" {
				unknown++
				if len(ev.EmailHash) != 64 || strings.Contains(ev.EmailHash, "nobody") {
					t.Errorf("unknown email audited as %q, want a keyed hash", ev.EmailHash)
				}
			}
		}
		if unknown != 1 || len(events) != 5 {
			t.Errorf("audit: %d events, %d for unknown emails; want 5 and 1", len(events), unknown)
		}
	})
}

func TestLoginClients(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			name, client string
			status       int
			code         string
		}{
			{"unknown client", "no-such-app", 401, "invalid_client"},
			{"disabled client", offClient, 401, "invalid_client"},
			{"client of another organization", orgBClient, 401, "invalid_client"},
			{"client of the user's organization", orgAClient, 200, ""},
			{"client of any organization", webClient, 200, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.login(adminEmail, adminPassword, tc.client)
				if tc.status == 200 {
					if r.status != 200 {
						t.Fatalf("got %d %s", r.status, r.body)
					}
					return
				}
				expectProblem(t, r, tc.status, tc.code)
			})
		}
	})
}

func TestLoginPasswords(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		long := strings.Repeat("correct horse ", 7) // 98 characters
		hash, err := auth.HashPassword(long)
		must(t, err)
		e.user(e.orgA.ID, "long@example.com", "member", hash)
		if r := e.login("long@example.com", long, webClient); r.status != 200 {
			t.Fatalf("98-character password: %d %s", r.status, r.body)
		}
		// No truncation: the first 72 bytes alone (bcrypt's limit) do not log in.
		expectProblem(t, e.login("long@example.com", long[:72], webClient), 401, "invalid_credentials")
		// 400 characters of 3 bytes each pass the schema's character limit but not the 1,024-byte limit.
		r := e.login(adminEmail, strings.Repeat("€", 400), webClient)
		expectProblem(t, r, 400, "validation_failed")
		if !strings.Contains(string(r.body), `"pointer":"/password"`) {
			t.Errorf("want the password named: %s", r.body)
		}
		events, err := e.audit.AuthEvents(context.Background())
		must(t, err)
		if len(events) != 2 {
			t.Errorf("the over-long password reached the lookup: %d audit events, want 2", len(events))
		}
	})
}

func TestLoginValidation(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		for _, tc := range []struct {
			name   string
			body   any
			fields []string // "pointer" values expected in errors
		}{
			{"empty object", map[string]any{}, []string{"/email", "/password", "/client_id"}},
			{"bad email", map[string]any{"email": "not-an-email", "password": "x", "client_id": webClient}, []string{"/email"}},
			{"email without domain dot", map[string]any{"email": "a@b", "password": "x", "client_id": webClient}, []string{"/email"}},
			{"keys differing in case", map[string]any{"EMAIL": adminEmail, "Password": adminPassword, "email": adminEmail, "password": adminPassword, "client_id": webClient}, []string{"/EMAIL", "/Password"}},
			{"only upper-case keys", map[string]any{"EMAIL": adminEmail, "PASSWORD": adminPassword, "CLIENT_ID": webClient}, []string{"/EMAIL", "/PASSWORD", "/CLIENT_ID", "/email", "/password", "/client_id"}},
			{"bad ip", map[string]any{"email": adminEmail, "password": adminPassword, "client_id": webClient, "ip_address": "300.1.2.3"}, []string{"/ip_address"}},
			{"wrong types", map[string]any{"email": 1, "password": true, "client_id": []string{}}, []string{"/email", "/password", "/client_id"}},
			{"bad client id", map[string]any{"email": adminEmail, "password": "x", "client_id": "no spaces allowed"}, []string{"/client_id"}},
			{"not an object", []string{"a"}, []string{""}},
			{"not JSON", `{"email":`, []string{""}},
			{"trailing data", `{"email":"a@b.co","password":"x","client_id":"a"} {}`, []string{""}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do("POST", "/v2/auth/login", tc.body)
				expectProblem(t, r, 400, "validation_failed")
				var p struct {
					Errors []struct{ Pointer *string } `json:"errors"`
				}
				must(t, json.Unmarshal(r.body, &p))
				var got []string
				for _, f := range p.Errors {
					if f.Pointer == nil {
						t.Fatalf("field without pointer: %s", r.body)
					}
					got = append(got, *f.Pointer)
				}
				if diff := cmp.Diff(tc.fields, got, sortStrings); diff != "" {
					t.Errorf("failing fields (-want +got):\n%s\n%s", diff, r.body)
				}
				for _, leak := range []string{adminPassword, "not-an-email", "300.1.2.3", "Schema", "minLength", "regular expression"} {
					if strings.Contains(string(r.body), leak) {
						t.Errorf("validation error echoes %q: %s", leak, r.body)
					}
				}
			})
		}
		events, err := e.audit.AuthEvents(context.Background())
		must(t, err)
		if len(events) != 0 {
			t.Errorf("invalid requests reached the handler: %d audit events", len(events))
		}
	})
}

var sortStrings = cmp.Transformer("sort", func(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

// sign returns a compact JWS of claims with the given protected header fields, signed by key with alg.
func sign(t *testing.T, claims map[string]any, key any, alg jwa.SignatureAlgorithm, hdr map[string]any) string {
	t.Helper()
	tok := jwt.New()
	for k, v := range claims {
		must(t, tok.Set(k, v))
	}
	h := jws.NewHeaders()
	for k, v := range hdr {
		must(t, h.Set(k, v))
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	must(t, err)
	return string(signed)
}

// signJSON returns header and payload, taken byte for byte, signed with ES256 by key: tokens jwx would not write
// (duplicate members, a header that is not an object), signed as the server signs.
func signJSON(t testing.TB, key *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	must(t, err)
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// jsonMember returns the JSON object obj with member added as its last member.
func jsonMember(obj, member string) string { return strings.TrimSuffix(obj, "}") + "," + member + "}" }

// segment returns tok with its segment i (0 header, 1 payload, 2 signature) replaced by what change makes of it.
func segment(t testing.TB, tok string, i int, change func(string) string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	was := parts[i]
	parts[i] = change(was)
	if parts[i] == was {
		t.Fatalf("segment %d of %s is unchanged: the case would prove nothing", i, tok)
	}
	return strings.Join(parts, ".")
}

// padSegment adds the '=' padding that base64 with padding would write.
func padSegment(seg string) string { return seg + strings.Repeat("=", (4-len(seg)%4)%4) }

// stdSegment writes seg in the standard base64 alphabet.
func stdSegment(seg string) string { return strings.NewReplacer("-", "+", "_", "/").Replace(seg) }

// trailingBitsSegment sets the lowest unused bit of seg's last character: the same bytes to a lenient decoder.
func trailingBitsSegment(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 == 0 {
		return seg // no unused bits
	}
	return seg[:len(seg)-1] + string(alphabet[strings.IndexByte(alphabet, seg[len(seg)-1])|1])
}

func TestForgedBearerTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		access, refresh := e.tokens(webClient)
		hdr, claims := decodeJWT(t, access)
		now := e.clock.Now()
		good := func(over map[string]any) map[string]any {
			c := map[string]any{}
			for k, v := range claims {
				c[k] = v
			}
			for k, v := range over {
				if v == nil {
					delete(c, k)
				} else {
					c[k] = v
				}
			}
			return c
		}
		at := map[string]any{"typ": "at+jwt", "kid": e.kid}
		// Sanity: a token the test signs with the real key and the real claims is accepted, so each rejection
		// below is for the one thing that differs.
		control := sign(t, good(nil), e.signKey, jwa.ES256, at)

		otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		jwksBody := e.do("GET", "/v2/.well-known/jwks.json", nil).body
		parts := strings.Split(access, ".")
		hsHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"at+jwt","kid":"` + hdr["kid"].(string) + `"}`))
		mac := hmac.New(sha256.New, jwksBody)
		mac.Write([]byte(hsHeader + "." + parts[1]))
		hs256 := hsHeader + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt","kid":"` + hdr["kid"].(string) + `"}`))
		tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(
			string(mustDecode(t, parts[1])), `"role":"admin"`, `"role":"member"`, 1))) + "." + parts[2]
		// a token of another session, then logged out
		revokedAccess, _ := e.tokens(webClient)
		if r := e.logout(revokedAccess); r.status != 204 {
			t.Fatalf("logout: %d %s", r.status, r.body)
		}

		// One spelling per token: with the real key and the real claims, tokens that differ from an accepted one
		// only in their encoding or in the form of their JSON. rawControl shows that signJSON signs as the server
		// does; dashed, a token whose signature has '-' or '_', that the standard alphabet writes differently.
		rawHeader := `{"alg":"ES256","kid":"` + e.kid + `","typ":"at+jwt"}`
		payload := func(over map[string]any) string {
			b, err := json.Marshal(good(over))
			must(t, err)
			return string(b)
		}
		rawControl := signJSON(t, e.signKey, rawHeader, payload(nil))
		dashed := rawControl
		for !strings.ContainsAny(dashed[strings.LastIndexByte(dashed, '.'):], "-_") {
			dashed = signJSON(t, e.signKey, rawHeader, payload(nil))
		}
		exp, iat, nbf := int64(claims["exp"].(float64)), int64(claims["iat"].(float64)), int64(claims["nbf"].(float64))
		var jwks struct{ Keys []json.RawMessage }
		must(t, json.Unmarshal(jwksBody, &jwks))

		cases := map[string]string{
			"no header":                  "",
			"basic scheme":               "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")),
			"empty bearer":               "Bearer ",
			"garbage":                    "Bearer not.a.jwt",
			"alg none":                   "Bearer " + noneHeader + "." + parts[1] + ".",
			"HS256 with the public key":  "Bearer " + hs256,
			"unknown kid":                "Bearer " + sign(t, good(nil), otherKey, jwa.ES256, map[string]any{"typ": "at+jwt", "kid": "nope"}),
			"right kid, wrong key":       "Bearer " + sign(t, good(nil), otherKey, jwa.ES256, at),
			"typ JWT":                    "Bearer " + sign(t, good(nil), e.signKey, jwa.ES256, map[string]any{"typ": "JWT", "kid": e.kid}),
			"no typ":                     "Bearer " + sign(t, good(nil), e.signKey, jwa.ES256, map[string]any{"kid": e.kid}),
			"no kid":                     "Bearer " + sign(t, good(nil), e.signKey, jwa.ES256, map[string]any{"typ": "at+jwt"}),
			"wrong issuer":               "Bearer " + sign(t, good(map[string]any{"iss": "https://evil.test"}), e.signKey, jwa.ES256, at),
			"audience not the client":    "Bearer " + sign(t, good(map[string]any{"aud": []string{"other-app"}}), e.signKey, jwa.ES256, at),
			"no exp":                     "Bearer " + sign(t, good(map[string]any{"exp": nil}), e.signKey, jwa.ES256, at),
			"expired beyond leeway":      "Bearer " + sign(t, good(map[string]any{"exp": now.Add(-31 * time.Second).Unix()}), e.signKey, jwa.ES256, at),
			"not yet valid":              "Bearer " + sign(t, good(map[string]any{"nbf": now.Add(31 * time.Second).Unix()}), e.signKey, jwa.ES256, at),
			"no sid":                     "Bearer " + sign(t, good(map[string]any{"sid": nil}), e.signKey, jwa.ES256, at),
			"sid of no session":          "Bearer " + sign(t, good(map[string]any{"sid": "00000000-0000-4000-8000-000000000000"}), e.signKey, jwa.ES256, at),
			"another user's session":     "Bearer " + sign(t, good(map[string]any{"sub": e.bob.ID}), e.signKey, jwa.ES256, at),
			"unknown role":               "Bearer " + sign(t, good(map[string]any{"role": "root"}), e.signKey, jwa.ES256, at),
			"tampered payload":           "Bearer " + tampered,
			"refresh token as bearer":    "Bearer " + refresh,
			"token of a revoked session": "Bearer " + revokedAccess,

			"padded signature":                   "Bearer " + segment(t, access, 2, padSegment),
			"padded header":                      "Bearer " + segment(t, access, 0, padSegment),
			"padded payload":                     "Bearer " + segment(t, rawControl, 1, padSegment),
			"signature in the standard alphabet": "Bearer " + segment(t, dashed, 2, stdSegment),
			"trailing bits in the signature":     "Bearer " + segment(t, access, 2, trailingBitsSegment),
			"trailing bits in the header":        "Bearer " + segment(t, access, 0, trailingBitsSegment),
			"trailing bits in the payload":       "Bearer " + segment(t, access, 1, trailingBitsSegment),
			"crit header":                        "Bearer " + signJSON(t, e.signKey, jsonMember(rawHeader, `"crit":["exp"]`), payload(nil)),
			"extra header member":                "Bearer " + signJSON(t, e.signKey, jsonMember(rawHeader, `"cty":"JWT"`), payload(nil)),
			"jwk in the header":                  "Bearer " + signJSON(t, e.signKey, jsonMember(rawHeader, `"jwk":`+string(jwks.Keys[0])), payload(nil)),
			"duplicate header member":            "Bearer " + signJSON(t, e.signKey, jsonMember(rawHeader, `"typ":"at+jwt"`), payload(nil)),
			"header not an object":               "Bearer " + signJSON(t, e.signKey, `["ES256","at+jwt","`+e.kid+`"]`, payload(nil)),
			"exp a string":                       "Bearer " + signJSON(t, e.signKey, rawHeader, payload(map[string]any{"exp": fmt.Sprint(exp)})),
			"iat a string":                       "Bearer " + signJSON(t, e.signKey, rawHeader, payload(map[string]any{"iat": fmt.Sprint(iat)})),
			"nbf a string":                       "Bearer " + signJSON(t, e.signKey, rawHeader, payload(map[string]any{"nbf": fmt.Sprint(nbf)})),
			"sub a number":                       "Bearer " + signJSON(t, e.signKey, rawHeader, payload(map[string]any{"sub": 7})),
			"duplicate claim":                    "Bearer " + signJSON(t, e.signKey, rawHeader, jsonMember(payload(map[string]any{"role": "member"}), `"role":"admin"`)),
		}
		var first string
		for name, authz := range cases {
			t.Run(name, func(t *testing.T) {
				var r resp
				if authz == "" {
					r = e.do("POST", "/v2/auth/logout", nil)
				} else {
					r = e.do("POST", "/v2/auth/logout", nil, "Authorization", authz)
				}
				expectProblem(t, r, 401, "unauthenticated")
				if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
				}
				body := withoutRequestID(t, r)
				if first == "" {
					first = body
				} else if body != first {
					t.Errorf("body differs from the other rejections:\n%s\n%s", body, first)
				}
			})
		}
		// The controls of the spelling cases are accepted (a read, which leaves the session alive), then the control
		// token itself, and a token expired within the 30 s leeway.
		for name, tok := range map[string]string{"signed byte for byte": rawControl, "a signature with '-' or '_'": dashed} {
			if r := e.do("GET", "/v2/users?limit=1", nil, "Authorization", "Bearer "+tok); r.status != 200 {
				t.Fatalf("control, %s: %d %s", name, r.status, r.body)
			}
		}
		if r := e.logout(control); r.status != 204 {
			t.Fatalf("control: %d %s", r.status, r.body)
		}
		access, _ = e.tokens(webClient)
		_, claims = decodeJWT(t, access)
		lenient := sign(t, good(map[string]any{"exp": now.Add(-20 * time.Second).Unix()}), e.signKey, jwa.ES256, at)
		if r := e.logout(lenient); r.status != 204 {
			t.Fatalf("expired within leeway: %d %s", r.status, r.body)
		}
	})
}

func mustDecode(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	must(t, err)
	return b
}

func TestAccessTokenExpiry(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		access, _ := e.tokens(webClient)
		e.clock.Advance(15*time.Minute + 31*time.Second)
		expectProblem(t, e.logout(access), 401, "unauthenticated")
	})
}

func TestRefreshRotation(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		_, rt0 := e.tokens(webClient)
		r1 := e.refresh(rt0, webClient)
		if r1.status != 200 {
			t.Fatalf("refresh: %d %s", r1.status, r1.body)
		}
		if r1.header.Get("Cache-Control") != "no-store" {
			t.Errorf("refresh Cache-Control = %q", r1.header.Get("Cache-Control"))
		}
		rt1 := r1.str(t, "refresh_token")
		if rt1 == rt0 || rt1 == "" {
			t.Fatalf("refresh did not rotate")
		}
		// Grace: the previous token again within 10 s gives the same successor and a fresh access token.
		e.clock.Advance(9 * time.Second)
		r1b := e.refresh(rt0, webClient)
		if r1b.status != 200 || r1b.str(t, "refresh_token") != rt1 {
			t.Fatalf("grace refresh: %d %s", r1b.status, r1b.body)
		}
		if r1b.str(t, "access_token") == r1.str(t, "access_token") {
			t.Errorf("grace refresh returned the same access token")
		}
		// The successor rotates on; now rt0 is two generations old: reuse, even within the grace period.
		r2 := e.refresh(rt1, webClient)
		rt2 := r2.str(t, "refresh_token")
		if r2.status != 200 || rt2 == rt1 {
			t.Fatalf("second rotation: %d %s", r2.status, r2.body)
		}
		access2 := r2.str(t, "access_token")
		expectProblem(t, e.refresh(rt0, webClient), 401, "refresh_token_reused")
		// The whole session is revoked: the newest refresh token and its access tokens stop working.
		expectProblem(t, e.refresh(rt2, webClient), 401, "invalid_grant")
		expectProblem(t, e.logout(access2), 401, "unauthenticated")
	})
}

func TestRefreshReuseAfterGrace(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		access0, rt0 := e.tokens(webClient)
		r1 := e.refresh(rt0, webClient)
		rt1 := r1.str(t, "refresh_token")
		e.clock.Advance(11 * time.Second)
		expectProblem(t, e.refresh(rt0, webClient), 401, "refresh_token_reused")
		expectProblem(t, e.refresh(rt1, webClient), 401, "invalid_grant")
		expectProblem(t, e.logout(access0), 401, "unauthenticated")
		// A second instance sharing the database sees the revocation too.
		expectProblem(t, e.instance().logout(r1.str(t, "access_token")), 401, "unauthenticated")
		events, err := e.audit.AuthEvents(context.Background())
		must(t, err)
		results := map[string]int{}
		for _, ev := range events {
			results[ev.Action+":"+ev.Result]++
		}
		want := map[string]int{"login:success": 1, "refresh:success": 1, "refresh:refresh_token_reused": 1, "refresh:invalid_grant": 1}
		if diff := cmp.Diff(want, results); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
	})
}

func TestRefreshReuseWithAnotherClient(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		_, rt0 := e.tokens(webClient)
		rt1 := e.refresh(rt0, webClient).str(t, "refresh_token")
		e.clock.Advance(11 * time.Second)
		// A stolen old token is theft whichever client presents it.
		expectProblem(t, e.refresh(rt0, orgAClient), 401, "refresh_token_reused")
		expectProblem(t, e.refresh(rt1, webClient), 401, "invalid_grant")
	})
}

func TestRefreshConcurrent(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		_, rt0 := e.tokens(webClient)
		const n = 20
		var wg sync.WaitGroup
		results := make([]resp, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = send(t, e.h, "POST", "/v2/auth/refresh", map[string]any{"refresh_token": rt0, "client_id": webClient})
			}()
		}
		wg.Wait()
		successor := ""
		for i, r := range results {
			if r.status != 200 {
				t.Fatalf("refresh %d: %d %s", i, r.status, r.body)
			}
			got := r.str(t, "refresh_token")
			if successor == "" {
				successor = got
			} else if got != successor {
				t.Fatalf("refresh %d returned another successor", i)
			}
		}
		if successor == rt0 {
			t.Fatal("no rotation")
		}
		if r := e.refresh(successor, webClient); r.status != 200 {
			t.Fatalf("the successor does not work: %d %s", r.status, r.body)
		}
	})
}

func TestRefreshBindings(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		_, rt := e.tokens(webClient)
		// Wrong client: invalid_grant, and the token is not consumed.
		expectProblem(t, e.refresh(rt, orgAClient), 401, "invalid_grant")
		expectProblem(t, e.refresh(rt, "no-such-app"), 401, "invalid_client")
		expectProblem(t, e.refresh(rt, offClient), 401, "invalid_client")
		r := e.refresh(rt, webClient, "device-1")
		if r.status != 200 {
			t.Fatalf("refresh after client mismatch: %d %s", r.status, r.body)
		}
		rt = r.str(t, "refresh_token")
		// Bound to device-1 now: another or no device is invalid_grant, not consumed, not revoked.
		e.clock.Advance(time.Minute)
		expectProblem(t, e.refresh(rt, webClient, "device-2"), 401, "invalid_grant")
		expectProblem(t, e.refresh(rt, webClient), 401, "invalid_grant")
		if r := e.refresh(rt, webClient, "device-1"); r.status != 200 {
			t.Fatalf("refresh from the bound device: %d %s", r.status, r.body)
		}
		events, err := e.audit.AuthEvents(context.Background())
		must(t, err)
		results := map[string]int{}
		var devices []string
		for _, ev := range events {
			results[ev.Result]++
			if ev.Result == "device_mismatch" {
				devices = append(devices, ev.DeviceID)
			}
		}
		if diff := cmp.Diff([]string{"", "device-2"}, devices, sortStrings); diff != "" {
			t.Errorf("device ids of the mismatches (-want +got):\n%s", diff)
		}
		if results["client_mismatch"] != 1 || results["device_mismatch"] != 2 || results["invalid_client"] != 2 {
			t.Errorf("audit results = %v", results)
		}
	})
}

func TestRefreshExpiry(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		_, rt := e.tokens(webClient)
		_, idleRT := e.tokens(webClient)
		// With a 28-day idle limit, a session used every 27 days lives until its absolute limit of 90 days, and
		// one left unused for longer than 28 days expires.
		for day := 27; day <= 81; day += 27 {
			e.clock.Advance(27 * 24 * time.Hour)
			r := e.refresh(rt, webClient)
			if r.status != 200 {
				t.Fatalf("day %d: %d %s", day, r.status, r.body)
			}
			rt = r.str(t, "refresh_token")
			if day == 54 {
				expectProblem(t, e.refresh(idleRT, webClient), 401, "invalid_grant")
			}
		}
		e.clock.Advance(10 * 24 * time.Hour) // day 91: 10 days idle, past the absolute limit
		expectProblem(t, e.refresh(rt, webClient), 401, "invalid_grant")
	}, func(o *auth.Options) { o.RefreshIdleTTL = 28 * 24 * time.Hour })
}

func TestLogout(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		access, rt := e.tokens(webClient)
		other, otherRT := e.tokens(webClient)
		r := e.logout(access)
		if r.status != 204 || len(r.body) != 0 {
			t.Fatalf("logout: %d %s", r.status, r.body)
		}
		expectProblem(t, e.logout(access), 401, "unauthenticated")
		expectProblem(t, e.refresh(rt, webClient), 401, "invalid_grant")
		// Other sessions of the same user are untouched.
		if r := e.refresh(otherRT, webClient); r.status != 200 {
			t.Fatalf("other session: %d %s", r.status, r.body)
		}
		if r := e.logout(other); r.status != 204 {
			t.Fatalf("other session logout: %d", r.status)
		}
	})
}

func TestSecondInstance(t *testing.T) {
	forEachDB(t, func(t *testing.T, a *env) {
		b := a.instance()
		access, rt := a.tokens(webClient)
		r := b.refresh(rt, webClient)
		if r.status != 200 {
			t.Fatalf("refresh on the second instance: %d %s", r.status, r.body)
		}
		// Tokens from B verify on A and the other way round.
		if r := a.logout(r.str(t, "access_token")); r.status != 204 {
			t.Fatalf("B's token on A: %d %s", r.status, r.body)
		}
		expectProblem(t, b.logout(access), 401, "unauthenticated") // same session, revoked by the logout on A
	})
}

func TestKeyRotation(t *testing.T) {
	forEachDB(t, func(t *testing.T, a *env) {
		b := a.instance() // a running node that cached the keys before the rotation
		oldAccess, _ := a.tokens(webClient)
		oldKid := a.kid
		k, err := a.svc.RotateSigningKey(context.Background())
		must(t, err)
		// Published at once, signing only after the publish delay.
		jwks := a.do("GET", "/v2/.well-known/jwks.json", nil)
		if !strings.Contains(string(jwks.body), k.ID) || !strings.Contains(string(jwks.body), oldKid) {
			t.Fatalf("JWKS after rotation lacks a key: %s", jwks.body)
		}
		if got := jwks.header.Get("Cache-Control"); got != "public, max-age=300" {
			t.Errorf("JWKS Cache-Control = %q", got)
		}
		if hdr, _ := decodeJWT(t, a.login(adminEmail, adminPassword, webClient).str(t, "access_token")); hdr["kid"] != oldKid {
			t.Errorf("signed with %v before the new key is active", hdr["kid"])
		}
		a.clock.Advance(10*time.Minute + time.Second)
		newAccess := a.login(adminEmail, adminPassword, webClient).str(t, "access_token")
		if hdr, _ := decodeJWT(t, newAccess); hdr["kid"] != k.ID {
			t.Fatalf("signed with %v after activation, want %s", hdr["kid"], k.ID)
		}
		// The node that never restarted verifies the new key's tokens, and old tokens still verify until they expire.
		if r := b.logout(newAccess); r.status != 204 {
			t.Fatalf("new-key token on the old node: %d %s", r.status, r.body)
		}
		if r := b.logout(oldAccess); r.status != 204 {
			t.Fatalf("old-key token after rotation: %d %s", r.status, r.body)
		}
		// Once no token it signed can be valid, the old key is no longer published.
		a.clock.Advance(20 * time.Minute)
		if body := a.do("GET", "/v2/.well-known/jwks.json", nil).body; strings.Contains(string(body), oldKid) {
			t.Errorf("retired key still published: %s", body)
		}
	})
}

func TestJWKS(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		r := e.do("GET", "/v2/.well-known/jwks.json", nil)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		must(t, json.Unmarshal(r.body, &set))
		if len(set.Keys) != 1 {
			t.Fatalf("keys = %v", set.Keys)
		}
		k := set.Keys[0]
		if k["kid"] != e.kid || k["alg"] != "ES256" || k["use"] != "sig" || k["kty"] != "EC" || len(k["x"]) != 43 || len(k["y"]) != 43 {
			t.Errorf("key = %v", k)
		}
		for _, private := range []string{`"d"`, "sealed"} {
			if strings.Contains(string(r.body), private) {
				t.Errorf("JWKS leaks %s", private)
			}
		}
		// A token verifies with the published key alone, as an integrator would verify it offline.
		access, _ := e.tokens(webClient)
		if _, err := jws.Verify([]byte(access), jws.WithKey(jwa.ES256, &e.signKey.PublicKey)); err != nil {
			t.Errorf("token does not verify with the published key: %v", err)
		}
	})
}
