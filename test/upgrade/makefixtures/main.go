// Command makefixtures writes the upgrade test's fixtures: databases that a released nexus created and used,
// which the test (cmd/nexus/upgrade_test.go) loads, migrates with the current code and serves. Run it through
// test/upgrade/make-fixtures.sh from the repository's root:
//
//	test/upgrade/make-fixtures.sh [-tag v0.1.0]
//
// It builds the tag's binary from `git archive` (no worktree, nothing of the checkout touched), creates a SQLite
// and a PostgreSQL database with it (a throwaway server from internal/testdb), sets them up through its command
// line (migrate, org create, user create, client create) and its HTTP API (logins, users, events the processor
// rolls up, a service client's token and event), and writes into test/upgrade/<tag>/:
//
//	sqlite.sql     the SQLite database as SQL text (tables, rows, then indexes and triggers), readable in a diff
//	postgres.sql   pg_dump --no-owner --no-acl --inserts, its \restrict lines removed (loaded without psql)
//	fixture.json   what the databases hold and the secrets to use them: see the fixture type
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	_ "github.com/glebarez/go-sqlite"

	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// fixture is fixture.json: one installation's facts, the same in both databases except for the ids.
type fixture struct {
	Tag            string            `json:"tag"`
	SecretKey      string            `json:"nexus_secret_key"`
	Issuer         string            `json:"nexus_issuer"`
	AdminEmail     string            `json:"admin_email"`
	AdminPassword  string            `json:"admin_password"`
	UserPassword   string            `json:"user_password"`
	LoginClientID  string            `json:"login_client_id"`
	SummaryQuery   string            `json:"summary_query"`
	Databases      map[string]*state `json:"databases"`
	SchemaVersions []int             `json:"schema_versions"`
}

// state is what one database holds.
type state struct {
	OrganizationID      string          `json:"organization_id"`
	Users               []user          `json:"users"`
	RefreshToken        string          `json:"refresh_token"` // minted by the tag at a rotation, never presented
	SigningKeyIDs       []string        `json:"signing_key_ids"`
	ServiceClientID     string          `json:"service_client_id"`
	ServiceClientSecret string          `json:"service_client_secret"`
	EventIDs            []string        `json:"event_ids"`
	Summary             json.RawMessage `json:"summary"` // GET /v2/analytics/summary?<summary_query>
}

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Role  string `json:"role"`
}

func main() {
	tag := flag.String("tag", "v0.1.0", "the release whose binary creates the databases")
	out := flag.String("out", "", "output directory (default test/upgrade/<tag>)")
	flag.Parse()
	if *out == "" {
		*out = filepath.Join("test", "upgrade", *tag)
	}
	if err := run(*tag, *out); err != nil {
		fmt.Fprintln(os.Stderr, "makefixtures:", err)
		os.Exit(1)
	}
}

func run(tag, out string) error {
	tmp, err := os.MkdirTemp("", "nexus-fixtures-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, err := buildTag(tag, tmp)
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	f := &fixture{Tag: tag, SecretKey: base64.StdEncoding.EncodeToString(key), Issuer: "https://upgrade.nexus.test",
		AdminEmail: "admin@upgrade.test", AdminPassword: "upgrade admin password 1",
		UserPassword: "upgrade user password 1", LoginClientID: "upgrade-web",
		SummaryQuery: "from=2026-11-20&to=2026-11-22", Databases: map[string]*state{}}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	// SQLite.
	dataDir := filepath.Join(tmp, "sqlite")
	st, err := populate(bin, f, map[string]string{"NEXUS_DATA_DIR": dataDir})
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	f.Databases["sqlite"] = st
	if f.SchemaVersions, err = dumpSQLite(filepath.Join(dataDir, "nexus.db"), filepath.Join(out, "sqlite.sql"), tag); err != nil {
		return err
	}

	// PostgreSQL.
	srv, err := testdb.Start()
	if err != nil {
		return err
	}
	defer srv.Stop()
	pgURL, err := srv.CreateDatabase("nexus_fixture")
	if err != nil {
		return err
	}
	st, err = populate(bin, f, map[string]string{"NEXUS_DATA_DIR": filepath.Join(tmp, "pgdata"), "NEXUS_DATABASE_URL": pgURL})
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	f.Databases["postgres"] = st
	if err := dumpPostgres(pgURL, filepath.Join(out, "postgres.sql")); err != nil {
		return err
	}

	raw, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "fixture.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("wrote %s/{sqlite.sql,postgres.sql,fixture.json} with nexus %s (schema versions %v)\n", out, tag, f.SchemaVersions)
	return nil
}

// buildTag builds the tag's cmd/nexus from git archive into dir.
func buildTag(tag, dir string) (string, error) {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.Command("git", "archive", "--format=tar", tag)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	archive.Stderr, untar.Stderr = os.Stderr, os.Stderr
	if err := untar.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		return "", fmt.Errorf("git archive %s: %w", tag, err)
	}
	if err := untar.Wait(); err != nil {
		return "", fmt.Errorf("untar %s: %w", tag, err)
	}
	bin := filepath.Join(dir, "nexus-"+tag)
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/nexus")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", tag, err)
	}
	return bin, nil
}

// nexus runs the tag's binary with the installation's environment.
type nexus struct {
	bin string
	env []string
}

func (n nexus) cmd(stdin string, args ...string) (map[string]any, error) {
	c := exec.Command(n.bin, args...)
	c.Env = n.env
	c.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("nexus %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var m map[string]any
	if slices.Contains(args, "--json") {
		if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("nexus %s printed %q", strings.Join(args, " "), stdout.String())
		}
	}
	return m, nil
}

// populate creates the installation with the tag's binary and returns what it holds.
func populate(bin string, f *fixture, vars map[string]string) (*state, error) {
	n := nexus{bin: bin, env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"NEXUS_SECRET_KEY=" + f.SecretKey, "NEXUS_ISSUER=" + f.Issuer, "NEXUS_LOG_LEVEL=warn",
		// The refresh token in the fixture must outlive the fixture: its expiry is stored at the login.
		"NEXUS_REFRESH_IDLE_TTL=876000h", "NEXUS_REFRESH_ABSOLUTE_TTL=876000h", "NEXUS_KEY_PUBLISH_DELAY=0s",
		"NEXUS_RATE_LIMIT_IP=off", "NEXUS_RATE_LIMIT_AUTH_IP=off", "NEXUS_RATE_LIMIT_LOGIN_ACCOUNT=off"}}
	for k, v := range vars {
		n.env = append(n.env, k+"="+v)
	}
	st := &state{}
	if _, err := n.cmd("", "migrate"); err != nil {
		return nil, err
	}
	org, err := n.cmd("", "org", "create", "--name", "Upgrade Org", "--json")
	if err != nil {
		return nil, err
	}
	st.OrganizationID = org["id"].(string)
	admin, err := n.cmd(f.AdminPassword+"\n", "user", "create", "--org", st.OrganizationID, "--email", f.AdminEmail,
		"--role", "admin", "--name", "Upgrade Admin", "--password-stdin", "--json")
	if err != nil {
		return nil, err
	}
	st.Users = append(st.Users, user{ID: admin["id"].(string), Email: f.AdminEmail, Role: "admin"})
	if _, err := n.cmd("", "client", "create", "--client-id", f.LoginClientID, "--name", "Upgrade web", "--json"); err != nil {
		return nil, err
	}
	svc, err := n.cmd("", "client", "create", "--service", "--org", st.OrganizationID, "--name", "CRM sync",
		"--scopes", "users:list users:read events:write events:write_any_user analytics:read", "--json")
	if err != nil {
		return nil, err
	}
	st.ServiceClientID = svc["client"].(map[string]any)["client_id"].(string)
	st.ServiceClientSecret = svc["client_secret"].(string)

	srv, err := serve(n)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	if err := srv.use(f, st); err != nil {
		return nil, fmt.Errorf("%w\nserver stderr:\n%s", err, srv.stderr.String())
	}
	if err := srv.stop(); err != nil {
		return nil, fmt.Errorf("stop the server: %w\n%s", err, srv.stderr.String())
	}
	return st, nil
}

// uuid returns a random version 4 UUID.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
