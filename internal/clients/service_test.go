package clients_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

var secretKey = []byte("0123456789abcdef0123456789abcdef")

type fixture struct {
	svc   *clients.Service
	now   time.Time
	admin nexus.Principal
}

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	org, err := store.NewDirectory(db).CreateOrganization(context.Background(), "Org")
	if err != nil {
		t.Fatal(err)
	}
	f.admin = nexus.Principal{UserID: "01934a91-8c53-75b1-8ae4-af5cb5e9d2c1", OrganizationID: org.ID, Role: nexus.RoleAdmin}
	f.svc, err = clients.NewService(clients.Options{Store: store.NewClients(db), Secret: secretKey, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func scopes(perms ...nexus.Permission) nexus.PermissionSet {
	s, _ := nexus.PermissionSetOf(perms)
	return s
}

// TestAuthenticate: a service client by a live secret of its own only, with the same answer for every failure
// (the HTTP tests compare the bytes and BenchmarkInvalidClient the cost).
func TestAuthenticate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		c, err := f.svc.Create(ctx, f.admin, clients.CreateInput{Name: "svc", Scopes: scopes(nexus.PermUsersRead),
			SecretExpiresAt: f.now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		got, secretID, err := f.svc.Authenticate(ctx, c.Client.ClientID, c.Secret)
		if err != nil || got.ClientID != c.Client.ClientID || secretID != c.Client.Secrets[0].ID || got.Scopes != scopes(nexus.PermUsersRead) {
			t.Fatalf("right secret: %+v %q %v", got, secretID, err)
		}
		for name, try := range map[string][2]string{
			"unknown client":          {"nxc_aaaaaaaaaaaaaaaaaaaaaaaaaa", c.Secret},
			"wrong secret":            {c.Client.ClientID, c.Secret + "x"},
			"no secret":               {c.Client.ClientID, ""},
			"the decoy's id":          {"", ""},
			"its secret id as secret": {c.Client.ClientID, c.Client.Secrets[0].ID},
		} {
			if _, _, err := f.svc.Authenticate(ctx, try[0], try[1]); !errors.Is(err, clients.ErrAuthentication) {
				t.Errorf("%s: %v, want ErrAuthentication", name, err)
			}
		}
		f.now = f.now.Add(time.Hour) // the secret's expiry
		if _, _, err := f.svc.Authenticate(ctx, c.Client.ClientID, c.Secret); !errors.Is(err, clients.ErrAuthentication) {
			t.Errorf("expired secret: %v", err)
		}
	})
}

// TestGrantRules: a caller grants only what it holds for the whole organization; taking a scope away needs
// nothing; a service principal is held to its own scopes.
func TestGrantRules(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		manager := f.admin
		manager.Role = nexus.RoleManager
		if _, err := f.svc.Create(ctx, manager, clients.CreateInput{Name: "x", Scopes: scopes(nexus.PermUsersList)}); !errors.Is(err, nexus.ErrInsufficientPermission) {
			t.Fatalf("a manager creates a client: %v", err)
		}
		service := nexus.Principal{Service: true, ClientID: "nxc_bbbbbbbbbbbbbbbbbbbbbbbbbb", OrganizationID: f.admin.OrganizationID,
			Scopes: scopes(nexus.PermClientsWrite, nexus.PermUsersRead)}
		if _, err := f.svc.Create(ctx, service, clients.CreateInput{Name: "x", Scopes: scopes(nexus.PermUsersRead, nexus.PermUsersWrite)}); !errors.Is(err, nexus.ErrInsufficientPermission) {
			t.Fatalf("a service grants users:write it does not hold: %v", err)
		}
		c, err := f.svc.Create(ctx, service, clients.CreateInput{Name: "x", Scopes: scopes(nexus.PermUsersRead)})
		if err != nil {
			t.Fatalf("a service grants a scope it holds: %v", err)
		}
		widened := scopes(nexus.PermUsersRead, nexus.PermAnalyticsRead)
		if _, err := f.svc.Update(ctx, service, c.Client.ClientID, clients.UpdateInput{Scopes: &widened}); !errors.Is(err, nexus.ErrInsufficientPermission) {
			t.Fatalf("a service widens a client beyond its own scopes: %v", err)
		}
		none := nexus.PermissionSet(0)
		if _, err := f.svc.Update(ctx, service, c.Client.ClientID, clients.UpdateInput{Scopes: &none}); err != nil {
			t.Fatalf("taking a scope away needs nothing: %v", err)
		}
		for name, bad := range map[string]string{"blank": " \t", "control character": "a\x00b", "too long": string(make([]rune, 101))} {
			if _, err := f.svc.Create(ctx, f.admin, clients.CreateInput{Name: bad}); nexus.KindOf(err) != nexus.KindInvalid {
				t.Errorf("name %s: %v, want invalid", name, err)
			}
		}
	})
}
