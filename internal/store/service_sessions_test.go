package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// TestStartServiceSession: fn sees the client and the secret as they are; its error comes back as is with
// nothing stored; a session is stored with its audit entry and read back as it was; a missing client or secret
// (another client's included) is an invalid client.
func TestStartServiceSession(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := store.NewAuth(db)
		acme := mustOrg(t, db, "Acme")
		c := mustServiceClient(t, db, acme.ID, "nxc_sync", readScopes, 0)
		b := mustServiceClient(t, db, acme.ID, "nxc_other", readScopes, 0)
		loginRef, err := store.NewDirectory(db).CreateClient(ctx, store.NewClient{ClientID: "acme-cli", Name: "CLI", OrganizationID: acme.ID})
		if err != nil {
			t.Fatal(err)
		}
		// A second secret that expires, and the first revoked; the client disabled.
		s2 := newSecret(t0)
		s2.ExpiresAt = t0.Add(24 * time.Hour)
		if err := update(db, acme.ID, c.ClientID, func(cur clients.Client) clients.Change {
			cur.Disabled = true
			return clients.Change{At: t0, Client: cur, AddSecret: &s2, RevokeSecret: c.Secrets[0].ID}
		}); err != nil {
			t.Fatal(err)
		}

		sess := auth.ServiceSession{ID: uuid.NewString(), ClientRef: c.ID, ClientID: c.ClientID, SecretID: c.Secrets[0].ID,
			OrganizationID: acme.ID, Scopes: readScopes, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		var seen []auth.ServiceClientState
		errNo := errors.New("no")
		refuse := func(st auth.ServiceClientState) error { seen = append(seen, st); return errNo }
		if err := a.StartServiceSession(ctx, sess, refuse, &auth.AuditEvent{OccurredAt: t0, Action: "token", Result: "success"}); err != errNo {
			t.Fatalf("StartServiceSession with a refusing fn = %v, want its error as is", err)
		}
		sess2 := sess
		sess2.ID, sess2.SecretID = uuid.NewString(), s2.ID
		if err := a.StartServiceSession(ctx, sess2, refuse, nil); err != errNo {
			t.Fatal(err)
		}
		want := []auth.ServiceClientState{
			{Disabled: true, Scopes: readScopes, SecretRevoked: true},
			{Disabled: true, Scopes: readScopes, SecretExpiresAt: s2.ExpiresAt},
		}
		if diff := cmp.Diff(want, seen, equalTimes); diff != "" {
			t.Errorf("fn saw (-want +got):\n%s", diff)
		}
		for _, id := range []string{sess.ID, sess2.ID} {
			if _, err := a.ServiceSession(ctx, id); !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("a refused session was stored (%v)", err)
			}
		}

		// Stored, with its audit entry, and read back.
		audit := auth.AuditEvent{OccurredAt: t0, Action: "token", Result: "success", OrganizationID: acme.ID, ClientID: c.ClientID, SessionID: sess2.ID}
		if err := a.StartServiceSession(ctx, sess2, func(auth.ServiceClientState) error { return nil }, &audit); err != nil {
			t.Fatalf("StartServiceSession: %v", err)
		}
		got := serviceSession(t, db, sess2.ID)
		if diff := cmp.Diff(sess2, got, equalTimes); diff != "" {
			t.Errorf("ServiceSession (-want +got):\n%s", diff)
		}
		checkUTC(t, "ServiceSession", got.CreatedAt, got.ExpiresAt)
		events, err := a.AuthEvents(ctx)
		if err != nil || len(events) == 0 || !cmp.Equal(audit, events[len(events)-1], equalTimes) {
			t.Errorf("the token's audit entry is missing (%v)", err)
		}

		for _, tc := range []struct {
			why       string
			ref, secr string
		}{
			{"no such client", uuid.NewString(), s2.ID},
			{"a malformed client ref", "junk", s2.ID},
			{"a login client", loginRef, s2.ID},
			{"no such secret", c.ID, uuid.NewString()},
			{"another client's secret", c.ID, b.Secrets[0].ID},
			{"a malformed secret id", c.ID, "junk"},
		} {
			s := sess
			s.ID, s.ClientRef, s.SecretID = uuid.NewString(), tc.ref, tc.secr
			err := a.StartServiceSession(ctx, s, func(auth.ServiceClientState) error {
				t.Errorf("%s: fn called", tc.why)
				return nil
			}, nil)
			if !errors.Is(err, nexus.ErrInvalidClient) {
				t.Errorf("%s: StartServiceSession = %v, want invalid client", tc.why, err)
			}
		}
		if _, err := a.ServiceSession(ctx, "junk"); !errors.Is(err, nexus.ErrNotFound) {
			t.Errorf("ServiceSession(junk) = %v, want not found", err)
		}
	})
}

// TestServiceSessionPruning: a token start deletes up to 100 sessions of its client that expired more than an
// hour before it, and no other session; a secret's last use is the newest retained token issued with it.
func TestServiceSessionPruning(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme := mustOrg(t, db, "Acme")
		c := mustServiceClient(t, db, acme.ID, "nxc_sync", readScopes, 0)
		b := mustServiceClient(t, db, acme.ID, "nxc_other", readScopes, 0)
		secret := c.Secrets[0].ID
		old := t0.Add(-3 * time.Hour)
		for i := range 105 {
			startToken(t, db, c, secret, old.Add(time.Duration(i)*time.Second), time.Hour) // expired by t0-1h56m
		}
		oldB := startToken(t, db, b, b.Secrets[0].ID, old, time.Hour)
		recent := startToken(t, db, c, secret, t0.Add(-2*time.Hour), 61*time.Minute) // expired 59 minutes before t0
		count := func() int {
			n, err := db.ServiceSessionCount(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(); n != 106 {
			t.Fatalf("%d sessions before pruning, want 106", n)
		}
		startToken(t, db, c, secret, t0, time.Hour)
		if n := count(); n != 7 {
			t.Errorf("%d sessions after one start, want 7 (100 pruned)", n)
		}
		last := startToken(t, db, c, secret, t0.Add(time.Second), time.Hour)
		if n := count(); n != 3 {
			t.Errorf("%d sessions after two starts, want 3 (every old one pruned)", n)
		}
		serviceSession(t, db, recent.ID)
		serviceSession(t, db, oldB.ID) // another client's

		got, err := store.NewClients(db).ServiceClient(ctx, acme.ID, c.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Secrets[0].LastUsedAt.Equal(last.CreatedAt) {
			t.Errorf("LastUsedAt = %v, want %v", got.Secrets[0].LastUsedAt, last.CreatedAt)
		}
		fresh := mustServiceClient(t, db, acme.ID, "nxc_fresh", readScopes, 0)
		if got, _ := store.NewClients(db).ServiceClient(ctx, acme.ID, fresh.ClientID); !got.Secrets[0].LastUsedAt.IsZero() {
			t.Errorf("an unused secret's LastUsedAt = %v, want zero", got.Secrets[0].LastUsedAt)
		}
	})
}

// TestRevokeServiceSession: a revocation is logged once and told before the call returns; revoking again
// changes nothing; an unknown session is not found.
func TestRevokeServiceSession(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		here := follow(t, db)
		a := store.NewAuth(db)
		acme := mustOrg(t, db, "Acme")
		c := mustServiceClient(t, db, acme.ID, "nxc_sync", readScopes, 0)
		s := startToken(t, db, c, c.Secrets[0].ID, t0, time.Hour)
		keep := startToken(t, db, c, c.Secrets[0].ID, t0, time.Hour)
		at := t0.Add(time.Minute)
		if err := a.RevokeServiceSession(ctx, s.ID, "token_revoked", at); err != nil {
			t.Fatalf("RevokeServiceSession: %v", err)
		}
		if !here.has(s.ID) {
			t.Error("the revocation was not told before RevokeServiceSession returned")
		}
		if err := a.RevokeServiceSession(ctx, s.ID, "again", at.Add(time.Minute)); err != nil {
			t.Fatalf("RevokeServiceSession again: %v", err)
		}
		got := serviceSession(t, db, s.ID)
		if !got.RevokedAt.Equal(at) || got.RevokedReason != "token_revoked" {
			t.Errorf("revoked at %v for %q, want %v for token_revoked", got.RevokedAt, got.RevokedReason, at)
		}
		checkRevoked(t, db, map[string]string{keep.ID: ""})
		if _, logged, err := db.RevocationLog(ctx); err != nil || !slices.Equal(logged, []string{s.ID}) {
			t.Errorf("revocation log = %v (%v), want the one session once", logged, err)
		}
		for _, id := range []string{uuid.NewString(), "junk"} {
			if err := a.RevokeServiceSession(ctx, id, "token_revoked", at); !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("RevokeServiceSession(%s) = %v, want not found", id, err)
			}
		}
	})
}

// TestStartServiceSessionRacesDisable races token starts against a disable that revokes the client's tokens,
// round after round: once the disable has committed, every session of the client is revoked. Without the lock
// on the client's row, a start that read the client before the disable stores its session after the disable's
// revocations, and the token lives on.
func TestStartServiceSessionRacesDisable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := store.NewAuth(db)
		acme := mustOrg(t, db, "Acme")
		errDisabled := errors.New("disabled")
		const rounds, starters = 25, 4
		for round := range rounds {
			c := mustServiceClient(t, db, acme.ID, fmt.Sprintf("nxc_%d", round), readScopes, 0)
			at := t0.Add(time.Minute)
			var (
				mu      sync.Mutex
				started []string
				wg      sync.WaitGroup
			)
			for range starters {
				wg.Go(func() {
					// Until the disable refuses them (or, should it fail, a while): a pause between starts keeps
					// SQLite's write lock, which its busy handler hands out unfairly, within the disable's reach.
					for range 500 {
						s := auth.ServiceSession{ID: uuid.NewString(), ClientRef: c.ID, ClientID: c.ClientID, SecretID: c.Secrets[0].ID,
							OrganizationID: acme.ID, Scopes: readScopes, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
						err := a.StartServiceSession(ctx, s, func(st auth.ServiceClientState) error {
							if st.Disabled {
								return errDisabled
							}
							time.Sleep(100 * time.Microsecond) // widen the window between the read and the write
							return nil
						}, nil)
						switch {
						case errors.Is(err, errDisabled):
							return
						case err != nil:
							t.Errorf("StartServiceSession: %v", err)
							return
						}
						mu.Lock()
						started = append(started, s.ID)
						mu.Unlock()
						time.Sleep(200 * time.Microsecond)
					}
					t.Error("a starter was never refused")
				})
			}
			time.Sleep(time.Duration(round%5) * time.Millisecond)
			err := update(db, acme.ID, c.ClientID, func(cur clients.Client) clients.Change {
				cur.Disabled = true
				return clients.Change{At: at, Client: cur, RevokeTokens: "client_disabled"}
			})
			wg.Wait()
			if err != nil {
				t.Fatalf("disable: %v", err)
			}
			for _, id := range started {
				if s := serviceSession(t, db, id); s.RevokedAt.IsZero() {
					t.Fatalf("round %d: session %s of the disabled client is live (of %d started)", round, id, len(started))
				}
			}
		}
	})
}
