package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

var tables = []string{"schema_migrations", "organizations", "users", "clients", "refresh_sessions", "signing_keys", "auth_events",
	"client_secrets", "service_sessions"}

// openBare opens a fresh database of dialect d without migrating it.
func openBare(t *testing.T, d store.Dialect) store.Options {
	t.Helper()
	opts := store.Options{DataDir: t.TempDir()}
	if d == store.Postgres {
		opts.URL = testdb.PostgresURL(t)
	}
	return opts
}

func open(t *testing.T, opts store.Options) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			db := open(t, openBare(t, d))
			if got := db.Dialect(); got != d {
				t.Fatalf("Dialect() = %q, want %q", got, d)
			}
			for _, name := range tables {
				if db.HasTable(name) {
					t.Fatalf("table %s exists before Migrate", name)
				}
			}

			applied, err := db.Migrate(ctx)
			if err != nil {
				t.Fatalf("first Migrate: %v", err)
			}
			if diff := cmp.Diff(allVersions(t), applied); diff != "" {
				t.Errorf("first Migrate applied (-want +got):\n%s", diff)
			}
			for _, name := range tables {
				if !db.HasTable(name) {
					t.Errorf("table %s missing after Migrate", name)
				}
			}

			applied, err = db.Migrate(ctx)
			if err != nil {
				t.Fatalf("second Migrate: %v", err)
			}
			if len(applied) != 0 {
				t.Errorf("second Migrate applied %v, want nothing", applied)
			}
		})
	}
}

// TestMigrateConcurrent starts several servers on one database at once: each migration is applied exactly once.
func TestMigrateConcurrent(t *testing.T) {
	ctx := context.Background()
	const servers = 4
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			opts := openBare(t, d)
			dbs := make([]*store.DB, servers)
			for i := range dbs {
				dbs[i] = open(t, opts)
			}
			results := make([][]int, servers)
			errs := make([]error, servers)
			var wg sync.WaitGroup
			for i, db := range dbs {
				wg.Go(func() { results[i], errs[i] = db.Migrate(ctx) })
			}
			wg.Wait()
			var all []int
			for i := range dbs {
				if errs[i] != nil {
					t.Errorf("server %d: Migrate: %v", i, errs[i])
				}
				all = append(all, results[i]...)
			}
			if diff := cmp.Diff(allVersions(t), all); diff != "" {
				t.Errorf("versions applied across servers (-want +got):\n%s", diff)
			}
		})
	}
}

// allVersions lists the versions of every migration, and checks that they count up from 1 without gaps.
func allVersions(t *testing.T) []int {
	t.Helper()
	var out []int
	for i, v := range store.MigrationVersions() {
		if v != i+1 {
			t.Fatalf("migration %d has version %d, want %d", i, v, i+1)
		}
		out = append(out, v)
	}
	return out
}

// TestMigrateServiceClients upgrades a database of version 8 that holds clients: they stay login clients (no
// scopes, no secrets, not listed as service clients), and service clients can be added beside them.
func TestMigrateServiceClients(t *testing.T) {
	ctx := context.Background()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			db := open(t, openBare(t, d))
			if _, err := db.MigrateTo(ctx, 8); err != nil {
				t.Fatal(err)
			}
			const org = "0191e1a0-0000-7000-8000-0000000000aa"
			for _, q := range []string{
				"INSERT INTO organizations (id, name, created_at, updated_at) VALUES ('" + org + "', 'Acme', '2030-01-01 00:00:00+00:00', '2030-01-01 00:00:00+00:00')",
				"INSERT INTO clients (id, client_id, name, organization_id, created_at, updated_at) VALUES " +
					"('0191e1a0-0000-7000-8000-0000000000b1', 'web', 'Web', NULL, '2030-01-01 00:00:00+00:00', '2030-01-01 00:00:00+00:00'), " +
					"('0191e1a0-0000-7000-8000-0000000000b2', 'acme-cli', 'CLI', '" + org + "', '2030-01-01 00:00:00+00:00', '2030-01-01 00:00:00+00:00')",
			} {
				if err := db.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			applied, err := db.Migrate(ctx)
			if err != nil || !cmp.Equal(applied, allVersions(t)[8:]) {
				t.Fatalf("Migrate from 8 applied %v (%v), want %v", applied, err, allVersions(t)[8:])
			}
			a, cs := store.NewAuth(db), store.NewClients(db)
			for _, id := range []string{"web", "acme-cli"} {
				c, err := a.ClientByClientID(ctx, id)
				if err != nil || c.Service {
					t.Errorf("ClientByClientID(%s) = %+v, %v; want a login client", id, c, err)
				}
				cred, err := cs.Credentials(ctx, id)
				if err != nil || cred.Service || len(cred.Secrets) != 0 {
					t.Errorf("Credentials(%s) = %+v, %v; want a login client without secrets", id, cred, err)
				}
			}
			if got, err := cs.ServiceClients(ctx, org); err != nil || len(got) != 0 {
				t.Errorf("ServiceClients after the upgrade = %v, %v; want none", got, err)
			}
			if _, err := cs.ServiceClient(ctx, org, "acme-cli"); !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("ServiceClient(acme-cli) = %v, want not found", err)
			}
			c := mustServiceClient(t, db, org, "nxc_sync", readScopes, 0)
			if got, err := cs.ServiceClients(ctx, org); err != nil || len(got) != 1 || got[0].ID != c.ID {
				t.Errorf("ServiceClients after adding one = %v, %v; want it", got, err)
			}
		})
	}
}
