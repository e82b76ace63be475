package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// nexusCmd runs `nexus <args>` with vars and returns what it printed.
func nexusCmd(vars map[string]string, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, envFunc(vars), strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), err
}

// clientToken asks s's token endpoint for a client credentials token by HTTP Basic; scope "" asks for all.
func (s *server) clientToken(t *testing.T, id, secret, scope string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	req, _ := http.NewRequest("POST", s.url+"/v2/auth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return s.do(t, req)
}

// get calls GET path with a bearer token and returns the status.
func (s *server) get(t *testing.T, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	status, _ := s.do(t, req)
	return status
}

func (s *server) do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// eventually fails the test unless cond holds within a generous bound: a change the command line committed
// reaches the server's session cache through the revocation feed, which polls on SQLite.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
	}
}

var createdText = regexp.MustCompile(`created service client (nxc_\S+) \(CRM sync\) in organization \S+\n  scopes: +users:list users:read events:write\n` +
	`  secret id: +(\S+) \(expires never\)\n  client secret: +(nxs_\S+)\n.*shown only this once`)

// TestServiceClientCommands: an operator creates a service client, lists it, and its secret obtains tokens at the
// token endpoint of a server on the same database; updates, disabling, and secret rotation take effect there.
func TestServiceClientCommands(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			key := make([]byte, 32)
			_, _ = rand.Read(key)
			vars := map[string]string{"NEXUS_DATA_DIR": t.TempDir(), "NEXUS_LOG_LEVEL": "warn", "NEXUS_HTTP_ADDR": "127.0.0.1:0",
				"NEXUS_SECRET_KEY": base64.StdEncoding.EncodeToString(key)}
			if db == "postgres" {
				vars["NEXUS_DATABASE_URL"] = testdb.PostgresURL(t)
			}
			must := func(args ...string) string {
				t.Helper()
				out, errOut, err := nexusCmd(vars, args...)
				if err != nil {
					t.Fatalf("%v: %v\n%s", args, err, errOut)
				}
				return out
			}
			fail := func(want string, args ...string) {
				t.Helper()
				_, _, err := nexusCmd(vars, args...)
				var stderr bytes.Buffer
				if code := report(&stderr, err); code != 1 || !strings.Contains(stderr.String(), want) {
					t.Fatalf("%v: exit %d %q, want 1 and a message with %q", args, code, stderr.String(), want)
				}
			}
			var org map[string]any
			if err := json.Unmarshal([]byte(must("org", "create", "--name", "Acme", "--json")), &org); err != nil {
				t.Fatal(err)
			}
			orgID := org["id"].(string)

			m := createdText.FindStringSubmatch(must("client", "create", "--service", "--org", orgID, "--name", "CRM sync",
				"--scopes", "events:write users:read users:list"))
			if m == nil {
				t.Fatal("create printed no client_id, secret id and secret")
			}
			id, secretID, secret := m[1], m[2], m[3]
			list := listClients(t, must("client", "list", "--org", orgID, "--json"))
			if len(list) != 1 || list[0].ClientID != id || list[0].Status != "active" ||
				strings.Join(list[0].Scopes, " ") != "users:list users:read events:write" ||
				len(list[0].Secrets) != 1 || list[0].Secrets[0].ID != secretID || list[0].Secrets[0].Hint != secret[len(secret)-4:] {
				t.Fatalf("list: %+v", list)
			}
			if out := must("client", "list", "--org", orgID); strings.Contains(out, secret) || !strings.Contains(out, id) {
				t.Fatalf("list shows the secret, or not the client:\n%s", out)
			}

			s := start(t, vars, "serve", "--dev")
			status, tok := s.clientToken(t, id, secret, "")
			if status != 200 || tok["scope"] != "users:list users:read events:write" {
				t.Fatalf("token: %d %v", status, tok)
			}
			access := tok["access_token"].(string)
			if got := s.get(t, "/v2/users", access); got != 200 {
				t.Fatalf("list users with the service token: %d", got)
			}

			// Taking a scope away: new tokens cannot have it, and the client's tokens are revoked.
			var updated clientJSON
			if err := json.Unmarshal([]byte(must("client", "update", "--org", orgID, "--client-id", id, "--name", "CRM v2",
				"--scopes", "users:read events:write", "--json")), &updated); err != nil {
				t.Fatal(err)
			}
			if updated.Name != "CRM v2" || strings.Join(updated.Scopes, " ") != "users:read events:write" {
				t.Fatalf("update: %+v", updated)
			}
			if status, body := s.clientToken(t, id, secret, "users:list"); status != 400 || body["error"] != "invalid_scope" {
				t.Fatalf("token with a scope taken away: %d %v", status, body)
			}
			eventually(t, "the token of the old scopes is refused", func() bool { return s.get(t, "/v2/users", access) == 401 })

			// Disabled, the client obtains no token; enabled again, it does.
			if out := must("client", "update", "--org", orgID, "--client-id", id, "--disable"); !strings.Contains(out, "disabled") {
				t.Fatalf("disable printed %q", out)
			}
			if status, body := s.clientToken(t, id, secret, ""); status != 401 || body["error"] != "invalid_client" {
				t.Fatalf("token of a disabled client: %d %v", status, body)
			}
			if out := must("client", "list", "--org", orgID); !strings.Contains(out, id+"  CRM v2  disabled") {
				t.Fatalf("list of a disabled client:\n%s", out)
			}
			must("client", "update", "--org", orgID, "--client-id", id, "--enable")
			if status, body := s.clientToken(t, id, secret, ""); status != 200 {
				t.Fatalf("token of a client enabled again: %d %v", status, body)
			}

			// Rotation: a second secret works beside the first, a third is refused, the revoked first stops.
			var added struct {
				Secret       secretJSON `json:"secret"`
				ClientSecret string     `json:"client_secret"`
			}
			if err := json.Unmarshal([]byte(must("client", "secret", "add", "--org", orgID, "--client-id", id,
				"--expires", time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339), "--json")), &added); err != nil {
				t.Fatal(err)
			}
			if added.Secret.ExpiresAt == nil || !strings.HasSuffix(added.ClientSecret, added.Secret.Hint) {
				t.Fatalf("secret add: %+v", added)
			}
			for _, sec := range []string{secret, added.ClientSecret} {
				if status, body := s.clientToken(t, id, sec, ""); status != 200 {
					t.Fatalf("token with one of two secrets: %d %v", status, body)
				}
			}
			fail("already has 2 secrets", "client", "secret", "add", "--org", orgID, "--client-id", id)
			must("client", "secret", "revoke", "--org", orgID, "--client-id", id, "--secret-id", secretID)
			if status, body := s.clientToken(t, id, secret, ""); status != 401 || body["error"] != "invalid_client" {
				t.Fatalf("token with a revoked secret: %d %v", status, body)
			}
			if status, body := s.clientToken(t, id, added.ClientSecret, ""); status != 200 {
				t.Fatalf("token with the remaining secret: %d %v", status, body)
			}
			if list := listClients(t, must("client", "list", "--org", orgID, "--json")); len(list[0].Secrets) != 1 || list[0].Secrets[0].ID != added.Secret.ID {
				t.Fatalf("list after the revocation: %+v", list)
			}

			// Unknown organizations, clients and secrets, in plain words.
			other := "00000000-0000-4000-8000-000000000000"
			fail(`no organization "`+other+`"`, "client", "list", "--org", other)
			fail(`no organization "`+other+`"`, "client", "create", "--service", "--org", other, "--name", "x", "--scopes", "users:read")
			fail(`has no service client "nxc_nope"`, "client", "update", "--org", orgID, "--client-id", "nxc_nope", "--disable")
			fail(`has no service client "nxc_nope"`, "client", "secret", "add", "--org", orgID, "--client-id", "nxc_nope")
			fail(`has no service client "nxc_nope"`, "client", "secret", "revoke", "--org", orgID, "--client-id", "nxc_nope", "--secret-id", secretID)
			fail(`has no active secret "`+secretID+`"`, "client", "secret", "revoke", "--org", orgID, "--client-id", id, "--secret-id", secretID)
			// Another organization's client is not found there, and a login client is no service client.
			var org2 map[string]any
			_ = json.Unmarshal([]byte(must("org", "create", "--name", "Other", "--json")), &org2)
			fail(`has no service client "`+id+`"`, "client", "update", "--org", org2["id"].(string), "--client-id", id, "--disable")
			must("client", "create", "--client-id", "acme-web", "--name", "Acme web", "--org", orgID)
			fail(`has no service client "acme-web"`, "client", "update", "--org", orgID, "--client-id", "acme-web", "--disable")
			if out := must("client", "list", "--org", org2["id"].(string)); !strings.Contains(out, "has no service clients") {
				t.Fatalf("list of an organization without service clients: %q", out)
			}
		})
	}
}

func listClients(t *testing.T, out string) []clientJSON {
	t.Helper()
	var list struct {
		Data []clientJSON `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("list --json: %v: %q", err, out)
	}
	return list.Data
}

// TestServiceClientCommandsRefuseBadFlags: mistakes in the command line are usage errors (exit status 2) that
// name the flag, found before any file or database is touched.
func TestServiceClientCommandsRefuseBadFlags(t *testing.T) {
	org := "00000000-0000-4000-8000-000000000000"
	svc := []string{"client", "create", "--service", "--org", org, "--name", "CRM"}
	upd := []string{"client", "update", "--org", org, "--client-id", "nxc_x"}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"unknown scopes":              {append(svc, "--scopes", "users:read users:fly,root"), `--scopes: unknown scopes "users:fly", "root"`},
		"no scopes":                   {svc, "--scopes: required"},
		"no org":                      {[]string{"client", "create", "--service", "--name", "x", "--scopes", "users:read"}, "--org: required"},
		"blank name":                  {[]string{"client", "create", "--service", "--org", org, "--name", " ", "--scopes", "users:read"}, "--name: required"},
		"long name":                   {[]string{"client", "create", "--service", "--org", org, "--name", strings.Repeat("n", 101), "--scopes", "users:read"}, "at most 100"},
		"client_id of a service":      {append(svc, "--scopes", "users:read", "--client-id", "mine"), "--client-id: a service client's client_id is generated"},
		"scopes of a login client":    {[]string{"client", "create", "--client-id", "web", "--name", "Web", "--scopes", "users:read"}, "--scopes: only for a service client"},
		"expiry not a time":           {append(svc, "--scopes", "users:read", "--secret-expires", "tomorrow"), "--secret-expires: an RFC 3339 time"},
		"expiry in the past":          {append(svc, "--scopes", "users:read", "--secret-expires", "2020-01-01T00:00:00Z"), "--secret-expires: must be in the future"},
		"service flag misspelt":       {append(svc, "--scope", "users:read"), "flag provided but not defined: -scope"},
		"list without org":            {[]string{"client", "list"}, "--org: required"},
		"list with an argument":       {[]string{"client", "list", "--org", org, "extra"}, `unexpected argument "extra"`},
		"update without client":       {[]string{"client", "update", "--org", org, "--disable"}, "--client-id: required"},
		"update nothing":              {upd, "nothing to change"},
		"disable and enable":          {append(upd, "--disable", "--enable"), "--disable and --enable"},
		"update unknown scope":        {append(upd, "--scopes", "users:read:own"), `--scopes: unknown scope "users:read:own"`},
		"update blank name":           {append(upd, "--name", ""), "--name: required"},
		"secret add past expiry":      {[]string{"client", "secret", "add", "--org", org, "--client-id", "nxc_x", "--expires", "2001-01-01T00:00:00Z"}, "--expires: must be in the future"},
		"secret revoke without id":    {[]string{"client", "secret", "revoke", "--org", org, "--client-id", "nxc_x"}, "--secret-id: required"},
		"unknown secret subcommand":   {[]string{"client", "secret", "rotate"}, `unknown command "client secret rotate"`},
		"secret without subcommand":   {[]string{"client", "secret"}, `unknown command "client secret"`},
		"unknown client subcommand":   {[]string{"client", "delete"}, `unknown command "client delete"`},
		"expiry flag of a secret add": {[]string{"client", "secret", "add", "--org", org, "--client-id", "nxc_x", "--secret-expires", "2031-01-01T00:00:00Z"}, "flag provided but not defined"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := nexusCmd(map[string]string{"NEXUS_DATA_DIR": dir}, tc.args...)
			var stderr bytes.Buffer
			if code := report(&stderr, err); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d %q, want 2 and a message with %q", code, stderr.String(), tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a refused command wrote %d files", len(entries))
			}
		})
	}

	// The commands need the server's secret key, as the secrets are hashed with a key derived from it.
	_, _, err := nexusCmd(map[string]string{"NEXUS_DATA_DIR": t.TempDir()}, "client", "list", "--org", org)
	if err == nil || errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "NEXUS_SECRET_KEY") {
		t.Fatalf("list without a secret key: %v", err)
	}
}
