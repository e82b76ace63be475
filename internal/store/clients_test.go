package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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

// actor is the user the tests' service-client changes are made by.
var actor = clients.Audit{ActorUserID: "0191e1a0-0000-7000-8000-000000000001", ActorClientID: "web",
	SessionID: "0191e1a0-0000-7000-8000-000000000002"}

// newSecret returns a secret created at the given time, never expiring.
func newSecret(at time.Time) clients.Secret {
	hash := make([]byte, 32)
	_, _ = rand.Read(hash) // never fails (crypto/rand)
	return clients.Secret{ID: uuid.NewString(), Hash: hash, Hint: "ab12", CreatedAt: at}
}

// newServiceClient returns a service client of the organization created at the given time, with one secret.
func newServiceClient(orgID, clientID string, scopes nexus.PermissionSet, at time.Time) clients.Client {
	return clients.Client{ID: uuid.NewString(), ClientID: clientID, Name: "Sync " + clientID, OrganizationID: orgID,
		Service: true, Scopes: scopes, CreatedAt: at, UpdatedAt: at, Secrets: []clients.Secret{newSecret(at)}}
}

// createAudit is the audit entry of c's creation.
func createAudit(c clients.Client) clients.Audit {
	a := actor
	a.OccurredAt, a.Action, a.OrganizationID, a.Detail = c.CreatedAt, "client_create", c.OrganizationID, "client "+c.ClientID
	return a
}

func noLimit(int) error { return nil }

// mustServiceClient stores a new service client of the organization (created at t0 plus offset) and returns it.
func mustServiceClient(t *testing.T, db *store.DB, orgID, clientID string, scopes nexus.PermissionSet, offset time.Duration) clients.Client {
	t.Helper()
	c := newServiceClient(orgID, clientID, scopes, t0.Add(offset))
	if err := store.NewClients(db).CreateServiceClient(context.Background(), c, noLimit, createAudit(c)); err != nil {
		t.Fatalf("CreateServiceClient(%s): %v", clientID, err)
	}
	return c
}

var readScopes = nexus.PermissionSet(0).With(nexus.PermUsersRead).With(nexus.PermUsersList)

func TestServiceClients(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cs := store.NewClients(db)
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		// Created out of order: the listing is by creation time.
		second := mustServiceClient(t, db, acme.ID, "nxc_second", readScopes.With(nexus.PermEventsWrite), time.Minute)
		first := mustServiceClient(t, db, acme.ID, "nxc_first", 0, 0) // grants nothing, still a service client
		other := mustServiceClient(t, db, globex.ID, "nxc_globex", readScopes, 0)
		if _, err := store.NewDirectory(db).CreateClient(ctx, store.NewClient{ClientID: "acme-cli", Name: "CLI", OrganizationID: acme.ID}); err != nil {
			t.Fatal(err)
		}

		got, err := cs.ServiceClients(ctx, acme.ID)
		if err != nil {
			t.Fatalf("ServiceClients: %v", err)
		}
		if diff := cmp.Diff([]clients.Client{first, second}, got, equalTimes); diff != "" {
			t.Errorf("ServiceClients(acme) (-want +got):\n%s", diff)
		}
		for _, c := range got {
			checkUTC(t, "client", c.CreatedAt, c.UpdatedAt, c.Secrets[0].CreatedAt)
		}
		if got, err := cs.ServiceClients(ctx, "not-a-uuid"); err != nil || len(got) != 0 {
			t.Errorf("ServiceClients(not-a-uuid) = %v, %v; want none", got, err)
		}

		c, err := cs.ServiceClient(ctx, acme.ID, "nxc_second")
		if err != nil {
			t.Fatalf("ServiceClient: %v", err)
		}
		if diff := cmp.Diff(second, c, equalTimes); diff != "" {
			t.Errorf("ServiceClient (-want +got):\n%s", diff)
		}
		for _, tc := range []struct{ org, clientID, why string }{
			{globex.ID, "nxc_second", "another organization's client"},
			{acme.ID, "nxc_globex", "another organization's client, asked for by its client_id"},
			{acme.ID, "acme-cli", "a login client"},
			{acme.ID, "nxc_missing", "no such client"},
			{"not-a-uuid", "nxc_second", "a malformed organization id"},
			{"ACME", "nxc_second", "a malformed organization id"},
		} {
			if _, err := cs.ServiceClient(ctx, tc.org, tc.clientID); !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("ServiceClient(%s): %v, want not found (%s)", tc.clientID, err, tc.why)
			}
		}

		// Credentials: either kind of client, with its secrets' hashes.
		cred, err := cs.Credentials(ctx, "nxc_globex")
		if err != nil {
			t.Fatalf("Credentials(nxc_globex): %v", err)
		}
		want := other
		want.Secrets[0].LastUsedAt = time.Time{}
		if diff := cmp.Diff(want, cred, equalTimes); diff != "" {
			t.Errorf("Credentials(nxc_globex) (-want +got):\n%s", diff)
		}
		cred, err = cs.Credentials(ctx, "acme-cli")
		if err != nil || cred.Service || len(cred.Secrets) != 0 || cred.OrganizationID != acme.ID {
			t.Errorf("Credentials(acme-cli) = %+v, %v; want a login client of acme without secrets", cred, err)
		}
		if _, err := cs.Credentials(ctx, "nxc_missing"); !errors.Is(err, nexus.ErrNotFound) {
			t.Errorf("Credentials(nxc_missing) = %v, want not found", err)
		}

		// auth sees which kind a client is.
		a := store.NewAuth(db)
		for id, service := range map[string]bool{"nxc_first": true, "acme-cli": false} {
			c, err := a.ClientByClientID(ctx, id)
			if err != nil || c.Service != service {
				t.Errorf("ClientByClientID(%s) = %+v, %v; want Service %v", id, c, err, service)
			}
		}

		// Every creation is audited.
		events, err := a.AuthEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var creates []auth.AuditEvent
		for _, e := range events {
			if e.Action == "client_create" {
				creates = append(creates, e)
			}
		}
		wantEvent := auth.AuditEvent{OccurredAt: first.CreatedAt, Action: "client_create", Result: "success",
			OrganizationID: acme.ID, ClientID: "web", SessionID: actor.SessionID, ActorUserID: actor.ActorUserID, Detail: "client nxc_first"}
		if len(creates) != 3 {
			t.Fatalf("%d client_create entries, want 3", len(creates))
		}
		if diff := cmp.Diff(wantEvent, creates[0], equalTimes); diff != "" {
			t.Errorf("client_create entry (-want +got):\n%s", diff)
		}
	})
}

func TestCreateServiceClientConflict(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cs := store.NewClients(db)
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		mustServiceClient(t, db, acme.ID, "nxc_taken", readScopes, 0)
		if _, err := store.NewDirectory(db).CreateClient(ctx, store.NewClient{ClientID: "web", Name: "Web"}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"nxc_taken", "web"} {
			c := newServiceClient(globex.ID, id, readScopes, t0)
			if err := cs.CreateServiceClient(ctx, c, noLimit, createAudit(c)); !errors.Is(err, nexus.ErrConflict) {
				t.Errorf("CreateServiceClient(%s) = %v, want conflict", id, err)
			}
		}
		if got, err := cs.ServiceClients(ctx, globex.ID); err != nil || len(got) != 0 {
			t.Errorf("globex's clients after the conflicts = %v, %v; want none", got, err)
		}
		events, err := store.NewAuth(db).AuthEvents(ctx)
		if err != nil || len(events) != 1 {
			t.Errorf("audit log holds %d entries (%v), want only the one creation", len(events), err)
		}
		c := newServiceClient(uuid.NewString(), "nxc_orphan", readScopes, t0)
		if err := cs.CreateServiceClient(ctx, c, noLimit, createAudit(c)); !errors.Is(err, nexus.ErrNotFound) {
			t.Errorf("CreateServiceClient in no organization = %v, want not found", err)
		}
	})
}

// TestCreateServiceClientLimit: limit sees the organization's count of service clients (not its login clients,
// not another organization's), its error is returned as is with nothing stored, and concurrent creations in
// one organization cannot overshoot it.
func TestCreateServiceClientLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		cs := store.NewClients(db)
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		mustServiceClient(t, db, globex.ID, "nxc_globex", readScopes, 0)
		if _, err := store.NewDirectory(db).CreateClient(ctx, store.NewClient{ClientID: "acme-cli", Name: "CLI", OrganizationID: acme.ID}); err != nil {
			t.Fatal(err)
		}
		errFull := errors.New("full")
		const maxClients = 3
		limit := func(n int) error {
			if n >= maxClients {
				return errFull
			}
			return nil
		}
		for i := range maxClients {
			c := newServiceClient(acme.ID, fmt.Sprintf("nxc_%d", i), readScopes, t0)
			var seen []int
			err := cs.CreateServiceClient(ctx, c, func(n int) error { seen = append(seen, n); return limit(n) }, createAudit(c))
			if err != nil || !cmp.Equal(seen, []int{i}) {
				t.Fatalf("creation %d: %v, limit saw %v; want it to see %d", i, err, seen, i)
			}
		}
		c := newServiceClient(acme.ID, "nxc_over", readScopes, t0)
		if err := cs.CreateServiceClient(ctx, c, limit, createAudit(c)); err != errFull {
			t.Fatalf("creation over the limit = %v, want limit's error as is", err)
		}
		if _, err := cs.ServiceClient(ctx, acme.ID, "nxc_over"); !errors.Is(err, nexus.ErrNotFound) {
			t.Errorf("the refused client was stored (%v)", err)
		}

		// Concurrent creations in a fresh organization: exactly maxClients of them get through. limit dawdles, so
		// that without the organization's lock they would all count the same clients.
		initech := mustOrg(t, db, "Initech")
		slow := func(n int) error { time.Sleep(2 * time.Millisecond); return limit(n) }
		const tries = 8
		var wg sync.WaitGroup
		errs := make([]error, tries)
		for i := range tries {
			wg.Go(func() {
				c := newServiceClient(initech.ID, fmt.Sprintf("nxc_race_%d", i), readScopes, t0)
				errs[i] = cs.CreateServiceClient(ctx, c, slow, createAudit(c))
			})
		}
		wg.Wait()
		created := 0
		for _, err := range errs {
			switch err {
			case nil:
				created++
			case errFull:
			default:
				t.Errorf("concurrent creation: %v", err)
			}
		}
		got, err := cs.ServiceClients(ctx, initech.ID)
		if err != nil || created != maxClients || len(got) != maxClients {
			t.Errorf("concurrent creations: %d succeeded, %d stored (%v); want %d", created, len(got), err, maxClients)
		}
	})
}
