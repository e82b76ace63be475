package store_test

import (
	"context"
	"errors"
	"slices"
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

// startToken stores a service session of c issued with the secret secretID, created at the given time and
// living for ttl, and returns it.
func startToken(t *testing.T, db *store.DB, c clients.Client, secretID string, created time.Time, ttl time.Duration) auth.ServiceSession {
	t.Helper()
	s := auth.ServiceSession{ID: uuid.NewString(), ClientRef: c.ID, ClientID: c.ClientID, SecretID: secretID,
		OrganizationID: c.OrganizationID, Scopes: c.Scopes, CreatedAt: created, ExpiresAt: created.Add(ttl)}
	if err := store.NewAuth(db).StartServiceSession(context.Background(), s, func(auth.ServiceClientState) error { return nil }, nil); err != nil {
		t.Fatalf("StartServiceSession: %v", err)
	}
	return s
}

// serviceSession reads the service session with the given id.
func serviceSession(t *testing.T, db *store.DB, id string) auth.ServiceSession {
	t.Helper()
	s, err := store.NewAuth(db).ServiceSession(context.Background(), id)
	if err != nil {
		t.Fatalf("ServiceSession(%s): %v", id, err)
	}
	return s
}

// update runs UpdateServiceClient on the organization's client clientID with a fn that returns change(c).
func update(db *store.DB, orgID, clientID string, change func(c clients.Client) clients.Change) error {
	return store.NewClients(db).UpdateServiceClient(context.Background(), orgID, clientID, func(c clients.Client) (clients.Change, error) {
		return change(c), nil
	})
}

// TestUpdateServiceClient walks one client through the changes an admin makes: name and scopes with a second
// secret, the first secret's revocation (which revokes exactly the live tokens issued with it), a disable that
// revokes every live token of the client (and no other client's), and a re-enable. Every revocation is in the
// revocation log and told to this process's sinks before the call returns, and reaches another process's feed.
func TestUpdateServiceClient(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		other, err := db.Reopen(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = other.Close() })
		here, there := follow(t, db), follow(t, other)
		cs, a := store.NewClients(db), store.NewAuth(db)
		acme := mustOrg(t, db, "Acme")
		c := mustServiceClient(t, db, acme.ID, "nxc_sync", readScopes, 0)
		b := mustServiceClient(t, db, acme.ID, "nxc_other", readScopes, 0)
		s1 := c.Secrets[0].ID

		live1 := startToken(t, db, c, s1, t0, time.Hour)
		expired1 := startToken(t, db, c, s1, t0.Add(-time.Hour), 50*time.Minute) // expired, but not long enough to be pruned
		gone1 := startToken(t, db, c, s1, t0, time.Hour)
		if err := a.RevokeServiceSession(ctx, gone1.ID, "revoked", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		liveB := startToken(t, db, b, b.Secrets[0].ID, t0, time.Hour)
		c.Secrets[0].LastUsedAt = t0 // gone1 and live1, the newest tokens issued with it

		// Name, scopes and a second secret.
		at1 := t0.Add(10 * time.Minute)
		s2 := newSecret(at1)
		if err := update(db, acme.ID, c.ClientID, func(cur clients.Client) clients.Change {
			if diff := cmp.Diff(c, cur, equalTimes); diff != "" {
				t.Errorf("fn's client (-want +got):\n%s", diff)
			}
			cur.Name, cur.Scopes, cur.UpdatedAt = "Renamed", cur.Scopes.With(nexus.PermEventsWrite), at1
			audit := actor
			audit.OccurredAt, audit.Action, audit.OrganizationID, audit.Detail = at1, "client_secret_add", acme.ID, "client nxc_sync: secret …ab12"
			return clients.Change{At: at1, Client: cur, AddSecret: &s2, Audit: audit}
		}); err != nil {
			t.Fatalf("UpdateServiceClient: %v", err)
		}
		got, err := cs.ServiceClient(ctx, acme.ID, c.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		want := c
		want.Name, want.Scopes, want.UpdatedAt = "Renamed", readScopes.With(nexus.PermEventsWrite), at1
		want.Secrets = []clients.Secret{c.Secrets[0], s2}
		if diff := cmp.Diff(want, got, equalTimes); diff != "" {
			t.Errorf("after the first change (-want +got):\n%s", diff)
		}
		live2 := startToken(t, db, got, s2.ID, at1, time.Hour)

		// The first secret's revocation.
		at2 := t0.Add(20 * time.Minute)
		if err := update(db, acme.ID, c.ClientID, func(cur clients.Client) clients.Change {
			return clients.Change{At: at2, Client: cur, RevokeSecret: s1, Audit: clients.Audit{OccurredAt: at2, Action: "client_secret_revoke", OrganizationID: acme.ID}}
		}); err != nil {
			t.Fatalf("revoke the secret: %v", err)
		}
		if !here.has(live1.ID) {
			t.Error("the secret's tokens were not told to this process's sinks before UpdateServiceClient returned")
		}
		got, _ = cs.ServiceClient(ctx, acme.ID, c.ClientID)
		if len(got.Secrets) != 1 || got.Secrets[0].ID != s2.ID || !got.UpdatedAt.Equal(at2) {
			t.Errorf("secrets after the revocation = %+v (updated %v); want only the second, updated at %v", got.Secrets, got.UpdatedAt, at2)
		}
		checkRevoked(t, db, map[string]string{live1.ID: clients.RevokedSecret, gone1.ID: "revoked", expired1.ID: "", live2.ID: "", liveB.ID: ""})

		// A disable revokes every live token of the client.
		at3 := t0.Add(30 * time.Minute)
		if err := update(db, acme.ID, c.ClientID, func(cur clients.Client) clients.Change {
			cur.Disabled = true
			return clients.Change{At: at3, Client: cur, RevokeTokens: "client_disabled", Audit: clients.Audit{OccurredAt: at3, Action: "client_update", OrganizationID: acme.ID}}
		}); err != nil {
			t.Fatalf("disable: %v", err)
		}
		if !here.has(live2.ID) {
			t.Error("the disable's revocations were not told before UpdateServiceClient returned")
		}
		checkRevoked(t, db, map[string]string{live1.ID: clients.RevokedSecret, gone1.ID: "revoked", expired1.ID: "", live2.ID: "client_disabled", liveB.ID: ""})
		if got, _ := cs.ServiceClient(ctx, acme.ID, c.ClientID); !got.Disabled {
			t.Error("the client is not disabled")
		}
		if err := update(db, acme.ID, c.ClientID, func(cur clients.Client) clients.Change {
			cur.Disabled = false
			return clients.Change{At: at3, Client: cur, Audit: clients.Audit{OccurredAt: at3, Action: "client_update", OrganizationID: acme.ID}}
		}); err != nil {
			t.Fatalf("enable: %v", err)
		}
		if got, _ := cs.ServiceClient(ctx, acme.ID, c.ClientID); got.Disabled {
			t.Error("the client is still disabled")
		}

		revoked := []string{gone1.ID, live1.ID, live2.ID}
		_, logged, err := db.RevocationLog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(logged, revoked) {
			t.Errorf("revocation log = %v, want %v", logged, revoked)
		}
		waitUntil(t, "the revocations on another process's feed", func() bool { return there.has(revoked...) })
		events, err := a.AuthEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range events {
			actions = append(actions, e.Action)
		}
		if want := []string{"client_create", "client_create", "client_secret_add", "client_secret_revoke", "client_update", "client_update"}; !slices.Equal(actions, want) {
			t.Errorf("audit log = %v, want %v", actions, want)
		}
	})
}

// checkRevoked checks the revocation reason of each session ("": not revoked).
func checkRevoked(t *testing.T, db *store.DB, want map[string]string) {
	t.Helper()
	for id, reason := range want {
		s := serviceSession(t, db, id)
		if s.RevokedReason != reason || s.RevokedAt.IsZero() != (reason == "") {
			t.Errorf("session %s: revoked at %v for %q, want %q", id, s.RevokedAt, s.RevokedReason, reason)
		}
	}
}

// TestUpdateServiceClientRefusals: fn's error comes back as is and nothing is written; another organization's
// client, a login client, a malformed organization id and an unknown secret to revoke are not found.
func TestUpdateServiceClientRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cs := store.NewClients(db)
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		c := mustServiceClient(t, db, acme.ID, "nxc_sync", readScopes, 0)
		live := startToken(t, db, c, c.Secrets[0].ID, t0, time.Hour)
		if _, err := store.NewDirectory(db).CreateClient(ctx, store.NewClient{ClientID: "acme-cli", Name: "CLI", OrganizationID: acme.ID}); err != nil {
			t.Fatal(err)
		}
		errNo := errors.New("no")
		err := cs.UpdateServiceClient(ctx, acme.ID, c.ClientID, func(clients.Client) (clients.Change, error) { return clients.Change{}, errNo })
		if err != errNo {
			t.Errorf("fn's error came back as %v", err)
		}
		for _, tc := range []struct{ org, clientID string }{{globex.ID, "nxc_sync"}, {acme.ID, "acme-cli"}, {"junk", "nxc_sync"}} {
			err := cs.UpdateServiceClient(ctx, tc.org, tc.clientID, func(clients.Client) (clients.Change, error) {
				t.Errorf("fn called for %s in %s", tc.clientID, tc.org)
				return clients.Change{}, nil
			})
			if !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("UpdateServiceClient(%s, %s) = %v, want not found", tc.org, tc.clientID, err)
			}
		}
		at := t0.Add(time.Minute)
		for _, secret := range []string{uuid.NewString(), "junk"} {
			err := update(db, acme.ID, c.ClientID, func(cur clients.Client) clients.Change {
				cur.Name = "Renamed"
				return clients.Change{At: at, Client: cur, RevokeSecret: secret, RevokeTokens: "client_disabled"}
			})
			if !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("revoking an unknown secret: %v, want not found", err)
			}
		}
		if got, _ := cs.ServiceClient(ctx, acme.ID, c.ClientID); got.Name != c.Name {
			t.Errorf("a refused change was written: name %q", got.Name)
		}
		checkRevoked(t, db, map[string]string{live.ID: ""})
		if events, _ := store.NewAuth(db).AuthEvents(ctx); len(events) != 1 {
			t.Errorf("audit log holds %d entries, want only the creation", len(events))
		}
	})
}
