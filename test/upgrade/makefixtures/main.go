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
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

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

// server is the tag's `nexus serve --dev` (loopback, plain HTTP; the database has data, so nothing is seeded).
type server struct {
	cmd    *exec.Cmd
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
	once   sync.Once
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var listening = regexp.MustCompile(`listening on (http://\S+)`)

func serve(n nexus) (*server, error) {
	s := &server{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(n.bin, "serve", "--dev", "--addr", "127.0.0.1:0")
	s.cmd.Env = n.env
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.done <- s.cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := listening.FindStringSubmatch(s.stdout.String()); m != nil {
			s.url = m[1]
			if r, err := http.Get(s.url + "/healthz"); err == nil {
				_ = r.Body.Close()
				if r.StatusCode == http.StatusOK {
					return s, nil
				}
			}
		}
	}
	_ = s.stop()
	return nil, fmt.Errorf("the server did not start:\n%s\n%s", s.stdout, s.stderr)
}

func (s *server) stop() error {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			s.err = errors.New("did not stop within 30 s")
		}
	})
	return s.err
}

// call sends a request and decodes the JSON answer into out, failing on any status but want.
func (s *server) call(method, path, token string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.do(req, want, out)
}

func (s *server) do(req *http.Request, want int, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// use does through the API what an installation does: logins, users, events, a service client's token.
func (s *server) use(f *fixture, st *state) error {
	login := func() (access, refresh string, err error) {
		var tok struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		err = s.call("POST", "/v2/auth/login", "", map[string]string{"email": f.AdminEmail, "password": f.AdminPassword,
			"client_id": f.LoginClientID}, http.StatusOK, &tok)
		return tok.AccessToken, tok.RefreshToken, err
	}
	access, refresh, err := login()
	if err != nil {
		return err
	}
	if err := s.call("POST", "/v2/auth/refresh", "", map[string]string{"refresh_token": refresh, "client_id": f.LoginClientID},
		http.StatusOK, nil); err != nil {
		return err
	}
	for _, u := range []user{{Email: "ada@upgrade.test", Role: "manager"}, {Email: "grace@upgrade.test", Role: "analyst"},
		{Email: "linus@upgrade.test", Role: "member"}} {
		var created user
		if err := s.call("POST", "/v2/users", access, map[string]string{"email": u.Email, "name": strings.Split(u.Email, "@")[0],
			"role": u.Role, "password": f.UserPassword}, http.StatusCreated, &created); err != nil {
			return err
		}
		st.Users = append(st.Users, created)
	}
	days := []string{"2026-11-20", "2026-11-21", "2026-11-22"}
	for i := range 9 {
		ev := map[string]any{"event_id": uuid(), "event_name": []string{"page_viewed", "signup_completed", "report_exported"}[i%3],
			"event_category": "upgrade", "timestamp": fmt.Sprintf("%sT%02d:15:00.123Z", days[i%3], 8+i),
			"source": "web", "properties": map[string]any{"n": i, "path": "/p/" + fmt.Sprint(i)}}
		if err := s.call("POST", "/v2/analytics/events", access, ev, http.StatusAccepted, nil); err != nil {
			return err
		}
		st.EventIDs = append(st.EventIDs, ev["event_id"].(string))
	}
	// The service client: a token by client credentials, and an event for another user.
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest("POST", s.url+"/v2/auth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(st.ServiceClientID), url.QueryEscape(st.ServiceClientSecret))
	var svcTok struct {
		AccessToken string `json:"access_token"`
	}
	if err := s.do(req, http.StatusOK, &svcTok); err != nil {
		return err
	}
	ev := map[string]any{"event_id": uuid(), "event_name": "crm_synced", "event_category": "upgrade",
		"timestamp": "2026-11-22T23:59:59.999Z", "user_id": st.Users[1].ID}
	if err := s.call("POST", "/v2/analytics/events", svcTok.AccessToken, ev, http.StatusAccepted, nil); err != nil {
		return err
	}
	st.EventIDs = append(st.EventIDs, ev["event_id"].(string))
	slices.Sort(st.EventIDs)

	// The processor rolls the events up: wait for all of them and an empty backlog.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var sum struct {
			Total int `json:"total"`
		}
		if err := s.call("GET", "/v2/analytics/summary?"+f.SummaryQuery, access, nil, http.StatusOK, &sum); err != nil {
			return err
		}
		var ready struct {
			Events struct {
				Backlog int `json:"backlog"`
			} `json:"events"`
		}
		if err := s.call("GET", "/readyz", "", nil, http.StatusOK, &ready); err != nil {
			return err
		}
		if sum.Total == len(st.EventIDs) && ready.Events.Backlog == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the summary counts %d events, want %d", sum.Total, len(st.EventIDs))
		}
	}
	if err := s.call("GET", "/v2/analytics/summary?"+f.SummaryQuery, access, nil, http.StatusOK, &st.Summary); err != nil {
		return err
	}
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := s.call("GET", "/v2/.well-known/jwks.json", "", nil, http.StatusOK, &jwks); err != nil {
		return err
	}
	for _, k := range jwks.Keys {
		st.SigningKeyIDs = append(st.SigningKeyIDs, k.Kid)
	}
	// The refresh token the test presents: of a login of its own, rotated once (a session with a history), and
	// the successor never presented.
	if _, refresh, err = login(); err != nil {
		return err
	}
	var rotated struct {
		RefreshToken string `json:"refresh_token"`
	}
	err = s.call("POST", "/v2/auth/refresh", "", map[string]string{"refresh_token": refresh, "client_id": f.LoginClientID},
		http.StatusOK, &rotated)
	st.RefreshToken = rotated.RefreshToken
	return err
}

// uuid returns a random version 4 UUID.
func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// dumpSQLite writes the database at path as SQL text: the tables in creation order, their rows in rowid order
// (each value as SQLite's quote() gives it, so the text is stored exactly), then the indexes and the triggers,
// so that loading the rows fires no trigger. It returns the schema versions recorded.
func dumpSQLite(path, out, tag string) ([]int, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	type object struct{ typ, name, sql string }
	rows, err := db.Query("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
	if err != nil {
		return nil, err
	}
	var objs []object
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.typ, &o.name, &o.sql); err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "-- The SQLite database nexus %s created and used: written by test/upgrade/make-fixtures.sh; do not edit.\n", tag)
	for _, o := range objs {
		if o.typ == "table" {
			b.WriteString(o.sql + ";\n")
		}
	}
	for _, o := range objs {
		if o.typ != "table" {
			continue
		}
		var cols []string
		crows, err := db.Query("SELECT name FROM pragma_table_info(?) ORDER BY cid", o.name)
		if err != nil {
			return nil, err
		}
		for crows.Next() {
			var c string
			if err := crows.Scan(&c); err != nil {
				return nil, err
			}
			cols = append(cols, fmt.Sprintf("quote(%q)", c))
		}
		if err := crows.Err(); err != nil {
			return nil, err
		}
		vrows, err := db.Query(fmt.Sprintf("SELECT %s FROM %q ORDER BY rowid", strings.Join(cols, ", "), o.name))
		if err != nil {
			return nil, err
		}
		vals := make([]string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for vrows.Next() {
			if err := vrows.Scan(ptrs...); err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "INSERT INTO %q VALUES(%s);\n", o.name, strings.Join(vals, ","))
		}
		if err := vrows.Err(); err != nil {
			return nil, err
		}
	}
	for _, o := range objs {
		if o.typ != "table" {
			b.WriteString(o.sql + ";\n")
		}
	}
	var versions []int
	vrows, err := db.Query("SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		return nil, err
	}
	for vrows.Next() {
		var v int
		if err := vrows.Scan(&v); err != nil {
			return nil, err
		}
		versions = append(versions, v)
	}
	if err := vrows.Err(); err != nil {
		return nil, err
	}
	return versions, os.WriteFile(out, []byte(b.String()), 0o644)
}

// dumpPostgres writes pg_dump's plain dump of the database, without owners, privileges and the psql-only
// \restrict and \unrestrict lines (whose random key would change every run).
func dumpPostgres(pgURL, out string) error {
	pgDump, err := testdb.Program("pg_dump")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, pgDump, "--no-owner", "--no-acl", "--inserts", pgURL)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("pg_dump: %w\n%s", err, stderr.String())
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(stdout.String(), "\n") {
		if strings.HasPrefix(line, `\`) {
			continue
		}
		b.WriteString(line)
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
