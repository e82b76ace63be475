package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// getJSON calls GET path with a bearer token and decodes the JSON answer.
func (s *server) getJSON(t *testing.T, path, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.do(t, req)
}

// postRaw posts a JSON body and returns the status and the decoded answer.
func (s *server) postRaw(t *testing.T, path, token string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return s.do(t, req)
}

// login logs in and returns the access and refresh tokens.
func (s *server) login(t *testing.T, email, password, client string) (access, refresh string) {
	t.Helper()
	status, tok, _ := s.post(t, "/v2/auth/login", "", map[string]any{"email": email, "password": password, "client_id": client})
	if status != http.StatusOK {
		t.Fatalf("login %s: %d %v", email, status, tok)
	}
	return tok["access_token"].(string), tok["refresh_token"].(string)
}

// rotate presents a refresh token and returns the status and the tokens issued.
func (s *server) rotate(t *testing.T, refresh, client string) (int, map[string]any) {
	t.Helper()
	status, tok, _ := s.post(t, "/v2/auth/refresh", "", map[string]any{"refresh_token": refresh, "client_id": client})
	return status, tok
}

// createUser creates a member through the API and returns its id.
func (s *server) createUser(t *testing.T, token, email string) string {
	t.Helper()
	status, u, _ := s.post(t, "/v2/users", token, map[string]any{"email": email, "name": "User " + email, "role": "member",
		"password": "a long enough password"})
	if status != http.StatusCreated {
		t.Fatalf("create user %s: %d %v", email, status, u)
	}
	return u["id"].(string)
}

// sendEvents posts n events named name and returns their event_ids.
func (s *server) sendEvents(t *testing.T, token string, rng *rand.Rand, name string, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		id, body := eventBody(rng, name)
		if status, r := s.postRaw(t, "/v2/analytics/events", token, body); status != http.StatusAccepted {
			t.Fatalf("post event: %d %v", status, r)
		}
		ids = append(ids, id)
	}
	return ids
}

// userEmails lists the organization's users' emails (one page of 100 is all these tests have).
func (s *server) userEmails(t *testing.T, token string) []string {
	t.Helper()
	status, list := s.getJSON(t, "/v2/users?limit=100", token)
	if status != http.StatusOK {
		t.Fatalf("list users: %d %v", status, list)
	}
	var out []string
	for _, u := range list["data"].([]any) {
		out = append(out, u.(map[string]any)["email"].(string))
	}
	slices.Sort(out)
	return out
}

// eventIDs lists the organization's events' event_ids (one page).
func (s *server) eventIDs(t *testing.T, token string) []string {
	t.Helper()
	status, list := s.getJSON(t, "/v2/analytics/events?limit=500", token)
	if status != http.StatusOK {
		t.Fatalf("list events: %d %v", status, list)
	}
	var out []string
	for _, e := range list["data"].([]any) {
		out = append(out, e.(map[string]any)["event_id"].(string))
	}
	slices.Sort(out)
	return out
}

// summaryTotal waits until the summary of query counts want events (the processor rolls them up within
// seconds), failing if it never does.
func (s *server) summaryTotal(t *testing.T, token, query string, want int) map[string]any {
	t.Helper()
	var sum map[string]any
	eventually(t, "the summary counts the events", func() bool {
		var status int
		status, sum = s.getJSON(t, "/v2/analytics/summary"+query, token)
		if status != http.StatusOK {
			t.Fatalf("summary: %d %v", status, sum)
		}
		return sum["total"] == float64(want)
	})
	return sum
}

// pgTool runs a PostgreSQL client program (pg_dump, pg_restore, psql) of the installation testdb uses.
func pgTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	path, err := testdb.Program(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// TestBackupRestore backs up a running server's database (nexus backup on SQLite, pg_dump -Fc on PostgreSQL
// as the README has it), writes more, restores the backup (nexus restore; pg_restore --clean --if-exists
// --no-owner), and starts the server again: what was backed up is served (the user, the events, the refresh
// token from before the backup rotates although it was rotated after), what came after is gone, and the
// restored schema needs no migration.
func TestBackupRestore(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(16, 5))
			vars, _, _ := lifecycleVars(t, dialect, map[string]string{"NEXUS_HTTP_ADDR": "127.0.0.1:0"})
			s := start(t, vars, "serve", "--dev")
			email, password, client := credentials(t, s)
			access, refresh := s.login(t, email, password, client)
			s.createUser(t, access, "kept@example.com")
			kept := s.sendEvents(t, access, rng, "kept", 3)
			s.summaryTotal(t, access, "", 3)

			backupFile := filepath.Join(t.TempDir(), "nexus-backup.db")
			if dialect == store.SQLite {
				out, _, err := nexusCmd(vars, "backup", "--to", backupFile, "--json")
				if err != nil {
					t.Fatalf("nexus backup: %v", err)
				}
				var b struct {
					Path          string `json:"path"`
					Size          int64  `json:"size"`
					SchemaVersion int    `json:"schema_version"`
				}
				if err := json.Unmarshal([]byte(out), &b); err != nil || b.Path != backupFile || b.Size == 0 || b.SchemaVersion != store.SchemaVersion() {
					t.Fatalf("nexus backup printed %q (%v)", out, err)
				}
				if _, _, err := nexusCmd(vars, "backup", "--to", backupFile); err == nil || !strings.Contains(err.Error(), "--force") {
					t.Errorf("a second backup to the same file: %v, want a refusal naming --force", err)
				}
				// A restore while the server has the database open is refused, and changes nothing.
				if _, _, err := nexusCmd(vars, "restore", "--from", backupFile); err == nil || !strings.Contains(err.Error(), "in use") {
					t.Errorf("restore while the server runs: %v, want a refusal", err)
				}
			} else {
				pgTool(t, "pg_dump", "-Fc", "-f", backupFile, vars["NEXUS_DATABASE_URL"])
			}

			// After the backup: another user, more events, and the refresh token rotated.
			s.createUser(t, access, "lost@example.com")
			s.sendEvents(t, access, rng, "lost", 2)
			s.summaryTotal(t, access, "", 5)
			status, rotated := s.rotate(t, refresh, client)
			if status != http.StatusOK {
				t.Fatalf("rotate before the restore: %d %v", status, rotated)
			}
			s.stop(t)

			if dialect == store.SQLite {
				out, _, err := nexusCmd(vars, "restore", "--from", backupFile)
				if err != nil || !strings.Contains(out, "the database it replaced") {
					t.Fatalf("nexus restore: %q %v", out, err)
				}
			} else {
				// The README's second route first: into a new, empty database, which then needs no migration.
				fresh := testdb.PostgresURL(t)
				pgTool(t, "pg_restore", "--no-owner", "-d", fresh, backupFile)
				db, err := store.Open(context.Background(), store.Options{URL: fresh})
				if err != nil {
					t.Fatal(err)
				}
				applied, err := db.Migrate(context.Background())
				_ = db.Close()
				if err != nil || len(applied) != 0 {
					t.Fatalf("Migrate on the database pg_restore created applied %v (%v), want nothing", applied, err)
				}
				pgTool(t, "pg_restore", "--clean", "--if-exists", "--no-owner", "-d", vars["NEXUS_DATABASE_URL"], backupFile)
			}
			db, err := store.Open(context.Background(), store.Options{URL: vars["NEXUS_DATABASE_URL"], DataDir: vars["NEXUS_DATA_DIR"]})
			if err != nil {
				t.Fatal(err)
			}
			applied, err := db.Migrate(context.Background())
			_ = db.Close()
			if err != nil || len(applied) != 0 {
				t.Fatalf("Migrate on the restored database applied %v (%v), want nothing", applied, err)
			}

			s = start(t, vars, "serve", "--dev")
			if strings.Contains(s.stdout.String(), "password:") {
				t.Error("the restarted server seeded the restored database again")
			}
			access, _ = s.login(t, email, password, client)
			if got, want := s.userEmails(t, access), []string{email, "kept@example.com"}; !slices.Equal(got, want) {
				t.Errorf("users after the restore = %v, want %v", got, want)
			}
			slices.Sort(kept)
			if got := s.eventIDs(t, access); !slices.Equal(got, kept) {
				t.Errorf("events after the restore = %v, want %v", got, kept)
			}
			s.summaryTotal(t, access, "", 3)
			if status, tok := s.rotate(t, rotated["refresh_token"].(string), client); status == http.StatusOK {
				t.Errorf("a refresh token minted after the backup rotates after the restore: %v", tok)
			}
			if status, tok := s.rotate(t, refresh, client); status != http.StatusOK {
				t.Errorf("the refresh token from before the backup: %d %v, want it to rotate", status, tok)
			}
		})
	}
}

// credentials returns the demo credentials s printed when it seeded its database.
func credentials(t *testing.T, s *server) (email, password, client string) {
	t.Helper()
	m := seeded.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("no demo credentials printed:\n%s", s.stdout)
	}
	return m[1], m[2], m[3]
}

// TestBackupRefusals: the commands' refusals, each before anything is written.
func TestBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"NEXUS_DATA_DIR": filepath.Join(dir, "data"), "NEXUS_LOG_LEVEL": "warn"}
	target := filepath.Join(dir, "b.db")
	if _, _, err := nexusCmd(vars, "backup", "--to", target); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Errorf("backup of a data directory without a database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused backup created the data directory: %v", err)
	}
	if _, _, err := nexusCmd(vars, "backup"); !errors.As(err, new(usageError)) {
		t.Errorf("backup without --to: %v, want a usage error", err)
	}
	pg := map[string]string{"NEXUS_DATA_DIR": dir, "NEXUS_DATABASE_URL": "postgres://nexus@127.0.0.1:1/nexus"}
	for _, args := range [][]string{{"backup", "--to", target}, {"restore", "--from", target}} {
		if _, _, err := nexusCmd(pg, args...); err == nil || !strings.Contains(err.Error(), "pg_dump") {
			t.Errorf("%s on PostgreSQL: %v, want the pg_dump route", args[0], err)
		}
	}
	// A file that is no database.
	if err := os.WriteFile(target, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := nexusCmd(vars, "restore", "--from", target); err == nil {
		t.Error("restore of a file that is no database: accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "data", store.SQLiteFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused restore installed a database: %v", err)
	}
}

// TestServeRefusesNewerSchema: a binary started on a database that a newer one migrated (a rollback without
// restoring the backup) refuses to start, naming both schema versions, and the database keeps its schema.
func TestServeRefusesNewerSchema(t *testing.T) {
	vars := map[string]string{"NEXUS_DATA_DIR": t.TempDir(), "NEXUS_LOG_LEVEL": "warn", "NEXUS_HTTP_ADDR": "127.0.0.1:0"}
	if _, _, err := nexusCmd(vars, "migrate"); err != nil {
		t.Fatal(err)
	}
	c, err := sql.Open("sqlite", "file:"+filepath.Join(vars["NEXUS_DATA_DIR"], store.SQLiteFile))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next := store.SchemaVersion() + 1
	if _, err := c.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from a newer nexus', '2030-01-01 00:00:00+00:00')", next); err != nil {
		t.Fatal(err)
	}
	_, _, err = nexusCmd(vars, "serve", "--dev")
	var msg strings.Builder
	report(&msg, err)
	if err == nil || !strings.Contains(msg.String(), fmt.Sprintf("version %d, newer than this binary's %d", next, next-1)) {
		t.Fatalf("serve on a newer schema: %q, want a refusal naming both versions", msg.String())
	}
	var n int
	if err := c.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != next {
		t.Errorf("schema_migrations has %d rows (%v), want %d", n, err, next)
	}
}
