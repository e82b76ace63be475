package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// BenchmarkStartServiceSession measures a token start of one service client (the lock, the re-read, the prune
// probe and the insert, with an audit entry) against a login's StartSession of one user with its audit entry, on
// each database, one call at a time and from several goroutines (RunParallel) at once: compare the ratio of the
// two within one run.
func BenchmarkStartServiceSession(b *testing.B) {
	for _, d := range storetest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			db := storetest.Open(b, d)
			ctx := context.Background()
			org, err := store.NewDirectory(db).CreateOrganization(ctx, "Acme")
			if err != nil {
				b.Fatal(err)
			}
			user, err := store.NewDirectory(db).CreateUser(ctx, newUser(org.ID, "ada@example.com"), "hash")
			if err != nil {
				b.Fatal(err)
			}
			c := newServiceClient(org.ID, "nxc_bench", readScopes, t0)
			if err := store.NewClients(db).CreateServiceClient(ctx, c, noLimit, createAudit(c)); err != nil {
				b.Fatal(err)
			}
			a := store.NewAuth(db)
			service := func() error {
				s := auth.ServiceSession{ID: uuid.NewString(), ClientRef: c.ID, ClientID: c.ClientID, SecretID: c.Secrets[0].ID,
					OrganizationID: org.ID, Scopes: readScopes, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
				return a.StartServiceSession(ctx, s, func(auth.ServiceClientState) error { return nil },
					&auth.AuditEvent{OccurredAt: t0, Action: "token", Result: "success", OrganizationID: org.ID, ClientID: c.ClientID, SessionID: s.ID})
			}
			login := func() error {
				s := auth.Session{ID: uuid.NewString(), UserID: user.ID, OrganizationID: org.ID, ClientID: "web", Salt: make([]byte, 32),
					CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}
				return a.StartSession(ctx, user.ID, func(auth.Credentials) (auth.Session, error) { return s, nil },
					&auth.AuditEvent{OccurredAt: t0, Action: "login", Result: "success", UserID: user.ID, OrganizationID: org.ID, SessionID: s.ID})
			}
			for _, bc := range []struct {
				name string
				fn   func() error
			}{{"token", service}, {"login", login}} {
				b.Run(bc.name, func(b *testing.B) {
					for b.Loop() {
						if err := bc.fn(); err != nil {
							b.Fatal(err)
						}
					}
				})
				b.Run(bc.name+"_parallel", func(b *testing.B) {
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := bc.fn(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		})
	}
}
