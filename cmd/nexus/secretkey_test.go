package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// TestSecretKeyRotation rotates NEXUS_SECRET_KEY end to end, on SQLite and PostgreSQL, through `serve` and
// `secret-key status`: with key A, two logins (R1, Rx) and a service client with two secrets (S1, S2); with B and
// A as the previous key, the signing keys are sealed again (the JWKS and A's access tokens unchanged), R1 and S1
// move to B as they are used, and status counts what is left (Rx, S2: exit 3); with B alone too early, what moved
// works and what did not is refused with the normal 401s, the server starting all the same; with A back as the
// previous key, Rx and S2 move too and status says A can go (exit 0); with B alone, everything works.
func TestSecretKeyRotation(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			keyA, keyB := randomKey(t), randomKey(t)
			varsA := map[string]string{"NEXUS_DATA_DIR": t.TempDir(), "NEXUS_LOG_LEVEL": "warn", "NEXUS_HTTP_ADDR": "127.0.0.1:0",
				"NEXUS_SECRET_KEY": keyA}
			if db == "postgres" {
				varsA["NEXUS_DATABASE_URL"] = testdb.PostgresURL(t)
			}
			varsBA := with(varsA, map[string]string{"NEXUS_SECRET_KEY": keyB, "NEXUS_SECRET_KEY_PREVIOUS": keyA})
			varsB := with(varsA, map[string]string{"NEXUS_SECRET_KEY": keyB})
			must := func(vars map[string]string, args ...string) string {
				t.Helper()
				out, errOut, err := nexusCmd(vars, args...)
				if err != nil {
					t.Fatalf("%v: %v\n%s", args, err, errOut)
				}
				return out
			}

			// Key A: two sessions, a service client with two secrets.
			s := start(t, varsA, "serve", "--dev")
			m := seeded.FindStringSubmatch(s.stdout.String())
			if m == nil {
				t.Fatalf("no demo credentials printed:\n%s", s.stdout)
			}
			email, password, loginClient := m[1], m[2], m[3]
			login := func(s *server) map[string]any {
				t.Helper()
				status, tokens, _ := s.post(t, "/v2/auth/login", "", map[string]any{"email": email, "password": password, "client_id": loginClient})
				if status != 200 {
					t.Fatalf("login: %d %v", status, tokens)
				}
				return tokens
			}
			first, other := login(s), login(s)
			at1, r1, rx := first["access_token"].(string), first["refresh_token"].(string), other["refresh_token"].(string)
			var org map[string]any
			if err := json.Unmarshal([]byte(must(varsA, "org", "create", "--name", "Acme", "--json")), &org); err != nil {
				t.Fatal(err)
			}
			cm := createdText.FindStringSubmatch(must(varsA, "client", "create", "--service", "--org", org["id"].(string), "--name", "CRM sync",
				"--scopes", "events:write users:read users:list"))
			if cm == nil {
				t.Fatal("create printed no client_id and secret")
			}
			clientID, s1 := cm[1], cm[3]
			var added struct {
				ClientSecret string `json:"client_secret"`
			}
			if err := json.Unmarshal([]byte(must(varsA, "client", "secret", "add", "--org", org["id"].(string), "--client-id", clientID, "--json")), &added); err != nil {
				t.Fatal(err)
			}
			s2 := added.ClientSecret
			jwks := s.jwks(t)
			s.stop(t)

			// Before any server has started with B, everything made with A depends on it.
			st := keyStatusOf(t, varsBA, 3)
			if st.SigningKeys != 1 || st.Sessions != 2 || st.ClientSecrets != 2 || st.Clean {
				t.Fatalf("status before the rotation's first start: %+v", st)
			}

			// B, with A as the previous key.
			s = start(t, varsBA, "serve", "--dev")
			if got := s.jwks(t); got != jwks {
				t.Errorf("the JWKS changed with the secret key:\n%s\nwas\n%s", got, jwks)
			}
			if got := s.get(t, "/v2/users", at1); got != 200 {
				t.Errorf("an access token issued under A: %d", got)
			}
			r1 = s.refresh(t, r1, loginClient, 200)
			if status, body := s.clientToken(t, clientID, s1, ""); status != 200 {
				t.Fatalf("token with a secret hashed under A: %d %v", status, body)
			}
			st = keyStatusOf(t, varsBA, 3)
			if st.SigningKeys != 0 || st.Sessions != 1 || st.ClientSecrets != 1 || st.SessionsEndBy.IsZero() {
				t.Errorf("status once R1 and S1 moved: %+v", st)
			}
			text, _, _ := nexusCmd(varsBA, "secret-key", "status")
			if !strings.Contains(text, "refresh sessions whose token it minted:  1") || !strings.Contains(text, "client secrets hashed under it:          1") ||
				strings.Contains(text, "you can remove") {
				t.Errorf("status text:\n%s", text)
			}
			s.stop(t)

			// B alone, too early: what moved works, what did not is refused as any bad credential is.
			s = start(t, varsB, "serve", "--dev")
			r1 = s.refresh(t, r1, loginClient, 200)
			s.refresh(t, rx, loginClient, 401)
			if status, body := s.clientToken(t, clientID, s1, ""); status != 200 {
				t.Fatalf("token with a secret hashed again under B: %d %v", status, body)
			}
			if status, body := s.clientToken(t, clientID, s2, ""); status != 401 || body["error"] != "invalid_client" {
				t.Fatalf("token with a secret hashed under A, A gone: %d %v", status, body)
			}
			if got := s.get(t, "/v2/users", login(s)["access_token"].(string)); got != 200 {
				t.Errorf("an access token issued under B: %d", got)
			}
			if got := s.get(t, "/v2/users", at1); got != 200 {
				t.Errorf("an access token issued under A, A gone: %d", got)
			}
			if out := must(varsB, "secret-key", "status"); !strings.Contains(out, "NEXUS_SECRET_KEY_PREVIOUS is not set") {
				t.Errorf("status without a previous key: %q", out)
			}
			s.stop(t)

			// A back as the previous key: the rest moves, and status says A can go.
			s = start(t, varsBA, "serve", "--dev")
			if st := keyStatusOf(t, varsBA, 3); st.Sessions != 1 || st.ClientSecrets != 1 {
				t.Errorf("status with A back: %+v, want Rx and S2", st)
			}
			rx = s.refresh(t, rx, loginClient, 200)
			if status, body := s.clientToken(t, clientID, s2, ""); status != 200 {
				t.Fatalf("token with the secret hashed under A: %d %v", status, body)
			}
			if st := keyStatusOf(t, varsBA, 0); !st.Clean || st.Sessions != 0 || st.ClientSecrets != 0 || st.SigningKeys != 0 {
				t.Errorf("status once everything moved: %+v", st)
			}
			if text := must(varsBA, "secret-key", "status"); !strings.Contains(text, "Nothing depends on the previous key any more; you can remove NEXUS_SECRET_KEY_PREVIOUS.") {
				t.Errorf("status text once everything moved:\n%s", text)
			}
			s.stop(t)

			// B alone: nothing breaks.
			s = start(t, varsB, "serve", "--dev")
			for _, r := range []string{r1, rx} {
				s.refresh(t, r, loginClient, 200)
			}
			for _, sec := range []string{s1, s2} {
				if status, body := s.clientToken(t, clientID, sec, ""); status != 200 {
					t.Fatalf("token after the rotation: %d %v", status, body)
				}
			}
			if got := s.jwks(t); got != jwks {
				t.Errorf("the JWKS changed with the secret key:\n%s\nwas\n%s", got, jwks)
			}
		})
	}
}

// TestSecretKeyPreviousRefused: a previous key equal to the current one, or not a key, stops every command
// before it changes anything.
func TestSecretKeyPreviousRefused(t *testing.T) {
	key := randomKey(t)
	dir := t.TempDir()
	for name, previous := range map[string]string{"same as the current key": key, "not base64": "not a key!", "16 bytes": base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		vars := map[string]string{"NEXUS_DATA_DIR": dir, "NEXUS_SECRET_KEY": key, "NEXUS_SECRET_KEY_PREVIOUS": previous}
		_, _, err := nexusCmd(vars, "secret-key", "status")
		var stderr bytes.Buffer
		if code := report(&stderr, err); code != 1 || !strings.Contains(stderr.String(), "NEXUS_SECRET_KEY_PREVIOUS") || strings.Contains(stderr.String(), previous) {
			t.Errorf("%s: exit %d, %q", name, code, stderr.String())
		}
	}
	// The development key in the data directory is the current key too.
	devDir := t.TempDir()
	s := start(t, map[string]string{"NEXUS_DATA_DIR": devDir, "NEXUS_HTTP_ADDR": "127.0.0.1:0", "NEXUS_LOG_LEVEL": "warn"}, "serve", "--dev")
	s.stop(t)
	devKey, err := os.ReadFile(filepath.Join(devDir, secretFile))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = nexusCmd(map[string]string{"NEXUS_DATA_DIR": devDir, "NEXUS_SECRET_KEY_PREVIOUS": strings.TrimSpace(string(devKey))}, "secret-key", "status")
	if err == nil || !strings.Contains(err.Error(), "NEXUS_SECRET_KEY_PREVIOUS: must differ") {
		t.Errorf("the development key as the previous key: %v", err)
	}

}

// keyStatus is the JSON of `secret-key status`.
type keyStatus struct {
	Previous      bool      `json:"previous_key_set"`
	SigningKeys   int       `json:"signing_keys"`
	Unreadable    int       `json:"unreadable_signing_keys"`
	Sessions      int       `json:"refresh_sessions"`
	SessionsEndBy time.Time `json:"refresh_sessions_end_by"`
	ClientSecrets int       `json:"client_secrets"`
	Clean         bool      `json:"clean"`
}

// keyStatusOf runs `secret-key status --json` with vars, expects the exit status code, and returns what it printed.
func keyStatusOf(t *testing.T, vars map[string]string, code int) keyStatus {
	t.Helper()
	out, errOut, err := nexusCmd(vars, "secret-key", "status", "--json")
	if got := report(io.Discard, err); got != code {
		t.Fatalf("secret-key status: exit %d (%v), want %d\n%s", got, err, code, errOut)
	}
	var st keyStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("secret-key status --json printed %q: %v", out, err)
	}
	if !st.Previous || st.Unreadable != 0 {
		t.Fatalf("secret-key status: %+v", st)
	}
	return st
}

// refresh presents a refresh token, expects the status, and returns the new refresh token (on 200).
func (s *server) refresh(t *testing.T, token, client string, want int) string {
	t.Helper()
	status, body, _ := s.post(t, "/v2/auth/refresh", "", map[string]any{"refresh_token": token, "client_id": client})
	if status != want {
		t.Fatalf("refresh: %d %v, want %d", status, body, want)
	}
	if status != 200 {
		if body["code"] != "invalid_grant" && body["error"] != "invalid_grant" {
			t.Fatalf("refresh refused with %v, want invalid_grant", body)
		}
		return ""
	}
	return body["refresh_token"].(string)
}

// jwks returns the server's JWKS document.
func (s *server) jwks(t *testing.T) string {
	t.Helper()
	resp, err := s.client.Get(s.url + "/v2/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %d %s", resp.StatusCode, b)
	}
	return string(b)
}

func randomKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// with returns a copy of vars with the changes.
func with(vars, changes map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range vars {
		out[k] = v
	}
	for k, v := range changes {
		out[k] = v
	}
	return out
}
