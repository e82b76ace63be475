package clients_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// TestAuthenticateWithPreviousKey: with NEXUS_SECRET_KEY_PREVIOUS, a secret hashed under it authenticates and is
// hashed again under the current key (once, of many requests at once), so that the current key alone then
// authenticates it; a wrong secret, and one hashed under another key, are refused.
func TestAuthenticateWithPreviousKey(t *testing.T) {
	keyA := []byte("A123456789abcdef0123456789abcdef")
	keyB := []byte("B123456789abcdef0123456789abcdef")
	keyC := []byte("C123456789abcdef0123456789abcdef")
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		service := func(secret, previous []byte) *clients.Service {
			t.Helper()
			svc, err := clients.NewService(clients.Options{Store: store.NewClients(db), Secret: secret, PreviousSecret: previous,
				Now: func() time.Time { return f.now }})
			if err != nil {
				t.Fatal(err)
			}
			return svc
		}
		create := func(svc *clients.Service) clients.Created {
			t.Helper()
			c, err := svc.Create(ctx, f.admin, clients.CreateInput{Name: "svc", Scopes: scopes(nexus.PermUsersRead)})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		underA, underC := create(service(keyA, nil)), create(service(keyC, nil))
		rotated, onlyB := service(keyB, keyA), service(keyB, nil)
		if _, _, err := onlyB.Authenticate(ctx, underA.Client.ClientID, underA.Secret); !errors.Is(err, clients.ErrAuthentication) {
			t.Fatalf("a secret hashed under A, with B alone: %v", err)
		}
		for name, try := range map[string][2]string{
			"wrong secret":             {underA.Client.ClientID, underA.Secret + "x"},
			"hashed under a third key": {underC.Client.ClientID, underC.Secret},
		} {
			if _, _, err := rotated.Authenticate(ctx, try[0], try[1]); !errors.Is(err, clients.ErrAuthentication) {
				t.Errorf("%s: %v, want ErrAuthentication", name, err)
			}
		}

		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				_, id, err := rotated.Authenticate(ctx, underA.Client.ClientID, underA.Secret)
				if err == nil && id != underA.Client.Secrets[0].ID {
					err = errors.New("matched secret " + id)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("request %d with a secret hashed under A: %v", i, err)
			}
		}
		if _, _, err := onlyB.Authenticate(ctx, underA.Client.ClientID, underA.Secret); err != nil {
			t.Errorf("the secret once used, with B alone: %v", err)
		}
		if _, _, err := service(keyA, nil).Authenticate(ctx, underA.Client.ClientID, underA.Secret); !errors.Is(err, clients.ErrAuthentication) {
			t.Errorf("the secret once used, with A alone: %v (still hashed under A)", err)
		}
	})
}

// TestPreviousKeyRefused: the previous key must be a key, and not the current one.
func TestPreviousKeyRefused(t *testing.T) {
	for name, previous := range map[string][]byte{"the current key": secretKey, "short": make([]byte, 16)} {
		if _, err := clients.NewService(clients.Options{Secret: secretKey, PreviousSecret: previous}); err == nil {
			t.Errorf("%s as the previous key: accepted", name)
		}
	}
}

// BenchmarkAuthenticatePreviousKey compares client authentication (SQLite) without and with a previous secret
// key, which adds one HMAC and two comparisons to every attempt, for a wrong secret and the right one (hashed
// under the current key: nothing to re-hash).
func BenchmarkAuthenticatePreviousKey(b *testing.B) {
	db := storetest.Open(b, "sqlite")
	org, err := store.NewDirectory(db).CreateOrganization(context.Background(), "Org")
	if err != nil {
		b.Fatal(err)
	}
	admin := nexus.Principal{UserID: "01934a91-8c53-75b1-8ae4-af5cb5e9d2c1", OrganizationID: org.ID, Role: nexus.RoleAdmin}
	ctx := context.Background()
	for _, previous := range []struct {
		name string
		key  []byte
	}{{"current-only", nil}, {"with-previous", []byte("P123456789abcdef0123456789abcdef")}} {
		svc, err := clients.NewService(clients.Options{Store: store.NewClients(db), Secret: secretKey, PreviousSecret: previous.key})
		if err != nil {
			b.Fatal(err)
		}
		c, err := svc.Create(ctx, admin, clients.CreateInput{Name: "svc", Scopes: scopes(nexus.PermUsersRead)})
		if err != nil {
			b.Fatal(err)
		}
		for _, try := range []struct {
			name, secret string
			ok           bool
		}{{"wrong-secret", c.Secret + "x", false}, {"right-secret", c.Secret, true}} {
			b.Run(previous.name+"/"+try.name, func(b *testing.B) {
				for b.Loop() {
					if _, _, err := svc.Authenticate(ctx, c.Client.ClientID, try.secret); (err == nil) != try.ok {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
