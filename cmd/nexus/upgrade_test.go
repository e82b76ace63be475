package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// upgradeFixture is test/upgrade/<tag>/fixture.json (see test/upgrade/makefixtures).
type upgradeFixture struct {
	Tag            string `json:"tag"`
	SecretKey      string `json:"nexus_secret_key"`
	Issuer         string `json:"nexus_issuer"`
	AdminEmail     string `json:"admin_email"`
	AdminPassword  string `json:"admin_password"`
	UserPassword   string `json:"user_password"`
	LoginClientID  string `json:"login_client_id"`
	SummaryQuery   string `json:"summary_query"`
	SchemaVersions []int  `json:"schema_versions"`
	Databases      map[string]struct {
		OrganizationID string `json:"organization_id"`
		Users          []struct {
			ID    string `json:"id"`
			Email string `json:"email"`
			Role  string `json:"role"`
		} `json:"users"`
		RefreshToken        string          `json:"refresh_token"`
		SigningKeyIDs       []string        `json:"signing_key_ids"`
		ServiceClientID     string          `json:"service_client_id"`
		ServiceClientSecret string          `json:"service_client_secret"`
		EventIDs            []string        `json:"event_ids"`
		Summary             json.RawMessage `json:"summary"`
	} `json:"databases"`
}

// TestUpgradeFromV010 loads the databases nexus v0.1.0 created and used (test/upgrade/v0.1.0, written by
// test/upgrade/make-fixtures.sh), migrates them with the current code and serves them: the old password logs
// in, the refresh token v0.1.0 minted rotates, the access token that rotation issues is signed by the key
// v0.1.0 made and verifies, the users, events and summary are as v0.1.0 served them, and the service client
// authenticates with its secret.
func TestUpgradeFromV010(t *testing.T) {
	dir := filepath.Join("..", "..", "test", "upgrade", "v0.1.0")
	raw, err := os.ReadFile(filepath.Join(dir, "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f upgradeFixture
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			ctx := context.Background()
			want := f.Databases[string(dialect)]
			dump, err := os.ReadFile(filepath.Join(dir, string(dialect)+".sql"))
			if err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{"NEXUS_DATA_DIR": t.TempDir(), "NEXUS_HTTP_ADDR": "127.0.0.1:0", "NEXUS_LOG_LEVEL": "warn",
				"NEXUS_SECRET_KEY": f.SecretKey, "NEXUS_ISSUER": f.Issuer, "NEXUS_REFRESH_IDLE_TTL": "876000h",
				"NEXUS_REFRESH_ABSOLUTE_TTL": "876000h", "NEXUS_RATE_LIMIT_AUTH_IP": "off", "NEXUS_RATE_LIMIT_LOGIN_ACCOUNT": "off"}
			if dialect == store.SQLite {
				c, err := sql.Open("sqlite", "file:"+filepath.Join(vars["NEXUS_DATA_DIR"], store.SQLiteFile))
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.ExecContext(ctx, string(dump))
				_ = c.Close()
				if err != nil {
					t.Fatalf("load the SQLite fixture: %v", err)
				}
			} else {
				vars["NEXUS_DATABASE_URL"] = testdb.PostgresURL(t)
				c, err := pgx.Connect(ctx, vars["NEXUS_DATABASE_URL"])
				if err != nil {
					t.Fatal(err)
				}
				_, err = c.PgConn().Exec(ctx, string(dump)).ReadAll()
				_ = c.Close(ctx)
				if err != nil {
					t.Fatalf("load the PostgreSQL fixture: %v", err)
				}
			}

			// The current Migrate applies exactly the migrations after v0.1.0's.
			db, err := store.Open(ctx, store.Options{URL: vars["NEXUS_DATABASE_URL"], DataDir: vars["NEXUS_DATA_DIR"]})
			if err != nil {
				t.Fatal(err)
			}
			if v, err := db.SchemaVersion(ctx); err != nil || v != slices.Max(f.SchemaVersions) {
				t.Fatalf("the fixture's schema version = %d, %v; want %d", v, err, slices.Max(f.SchemaVersions))
			}
			applied, err := db.Migrate(ctx)
			_ = db.Close()
			var newer []int // migrations are numbered from 1 without gaps (TestMigrate)
			for v := slices.Max(f.SchemaVersions) + 1; v <= store.SchemaVersion(); v++ {
				newer = append(newer, v)
			}
			if err != nil || !slices.Equal(applied, newer) {
				t.Fatalf("Migrate applied %v (%v), want %v", applied, err, newer)
			}

			s := start(t, vars, "serve", "--dev")
			if strings.Contains(s.stdout.String(), "password:") {
				t.Fatal("the server seeded the upgraded database")
			}
			access, _ := s.login(t, f.AdminEmail, f.AdminPassword, f.LoginClientID)
			s.login(t, "linus@upgrade.test", f.UserPassword, f.LoginClientID)

			// The refresh token v0.1.0 minted rotates; the access token issued is signed with v0.1.0's key and verifies.
			status, tok := s.rotate(t, want.RefreshToken, f.LoginClientID)
			if status != http.StatusOK {
				t.Fatalf("rotate the v0.1.0 refresh token: %d %v", status, tok)
			}
			rotatedAccess := tok["access_token"].(string)
			if kid := tokenKeyID(t, rotatedAccess); !slices.Contains(want.SigningKeyIDs, kid) {
				t.Errorf("the access token is signed with key %q, want v0.1.0's %v", kid, want.SigningKeyIDs)
			}
			status, jwks := s.getJSON(t, "/v2/.well-known/jwks.json", "")
			if status != http.StatusOK {
				t.Fatalf("jwks: %d", status)
			}
			var kids []string
			for _, k := range jwks["keys"].([]any) {
				kids = append(kids, k.(map[string]any)["kid"].(string))
			}
			for _, kid := range want.SigningKeyIDs {
				if !slices.Contains(kids, kid) {
					t.Errorf("JWKS %v lacks v0.1.0's key %s", kids, kid)
				}
			}

			var wantEmails []string
			for _, u := range want.Users {
				wantEmails = append(wantEmails, u.Email)
			}
			slices.Sort(wantEmails)
			if got := s.userEmails(t, rotatedAccess); !slices.Equal(got, wantEmails) {
				t.Errorf("users = %v, want %v", got, wantEmails)
			}
			for _, u := range want.Users {
				status, got := s.getJSON(t, "/v2/users/"+u.ID, access)
				if status != http.StatusOK || got["email"] != u.Email || got["role"] != u.Role || got["organization_id"] != want.OrganizationID {
					t.Errorf("GET user %s: %d %v", u.Email, status, got)
				}
			}
			if got := s.eventIDs(t, access); !slices.Equal(got, want.EventIDs) {
				t.Errorf("events = %v, want %v", got, want.EventIDs)
			}
			status, sum := s.getJSON(t, "/v2/analytics/summary?"+f.SummaryQuery, access)
			var wantSum map[string]any
			if err := json.Unmarshal(want.Summary, &wantSum); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantSum, sum); status != http.StatusOK || diff != "" {
				t.Errorf("summary: %d (-v0.1.0 +now):\n%s", status, diff)
			}

			// The service client authenticates with the secret v0.1.0 gave it, and its token reads users.
			status, svc := s.clientToken(t, want.ServiceClientID, want.ServiceClientSecret, "")
			if status != http.StatusOK {
				t.Fatalf("client credentials of the v0.1.0 service client: %d %v", status, svc)
			}
			if status := s.get(t, "/v2/users/"+want.Users[1].ID, svc["access_token"].(string)); status != http.StatusOK {
				t.Errorf("the service client's token reads a user: %d", status)
			}
			if status, _ := s.clientToken(t, want.ServiceClientID, want.ServiceClientSecret+"x", ""); status != http.StatusUnauthorized {
				t.Errorf("a wrong secret: %d, want 401", status)
			}
		})
	}
}

// tokenKeyID returns the kid of a JWS's protected header.
func tokenKeyID(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("token header: %v", err)
	}
	return h.Kid
}
