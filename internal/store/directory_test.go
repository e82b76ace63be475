package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

func TestCreateUserEmailUnique(t *testing.T) {
	// %d becomes the case number, so that every case has its own address.
	tests := []struct {
		name         string
		first, again string
		sameOrg      bool
	}{
		{"same case, same organization", "ada@example%d.com", "ada@example%d.com", true},
		{"other case, other organization", "ada@example%d.com", "ADA@Example%d.com", false},
		{"other case, same organization", "Ada@Example%d.com", "ada@EXAMPLE%d.com", true},
		{"surrounding spaces", "ada@example%d.com", "  ada@example%d.com ", false},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				first, again := fmt.Sprintf(tt.first, i), fmt.Sprintf(tt.again, i)
				org1 := mustOrg(t, db, "one")
				org2 := org1
				if !tt.sameOrg {
					org2 = mustOrg(t, db, "two")
				}
				mustUser(t, db, org1.ID, first)
				_, err := store.NewDirectory(db).CreateUser(ctx, newUser(org2.ID, again), "hash")
				if !errors.Is(err, nexus.ErrConflict) {
					t.Fatalf("second CreateUser(%q) = %v, want conflict", again, err)
				}
				got, err := store.NewAuth(db).UserByEmail(ctx, first)
				if err != nil {
					t.Fatalf("UserByEmail: %v", err)
				}
				if got.User.OrganizationID != org1.ID || got.User.Email != first {
					t.Errorf("the address belongs to %q in organization %s, want the first user %q in %s",
						got.User.Email, got.User.OrganizationID, first, org1.ID)
				}
			})
		}
	})
}

func TestCreateUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		org := mustOrg(t, db, "Acme")
		in := nexus.User{OrganizationID: org.ID, Email: "Grace.Hopper@Example.com", Name: "Grace Hopper",
			Role: nexus.RoleAdmin, Status: nexus.UserActive}
		u, err := store.NewDirectory(db).CreateUser(ctx, in, "the-hash")
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if _, err := uuid.Parse(u.ID); err != nil {
			t.Errorf("ID %q is not a UUID", u.ID)
		}
		if u.CreatedAt.IsZero() || !u.CreatedAt.Equal(u.UpdatedAt) {
			t.Errorf("CreatedAt = %v, UpdatedAt = %v; want equal and set", u.CreatedAt, u.UpdatedAt)
		}
		got, err := store.NewUsers(db).User(ctx, org.ID, u.ID)
		if err != nil {
			t.Fatalf("User: %v", err)
		}
		if !got.CreatedAt.Equal(u.CreatedAt) || !got.UpdatedAt.Equal(u.UpdatedAt) {
			t.Errorf("times read back %v/%v, want %v/%v", got.CreatedAt, got.UpdatedAt, u.CreatedAt, u.UpdatedAt)
		}
		want := in
		want.ID, want.CreatedAt, want.UpdatedAt = u.ID, got.CreatedAt, got.UpdatedAt
		if got != want {
			t.Errorf("User = %+v, want %+v", got, want)
		}

		_, err = store.NewDirectory(db).CreateUser(ctx, newUser(uuid.NewString(), "nobody@example.com"), "h")
		if err == nil {
			t.Error("CreateUser in an unknown organization succeeded")
		}
	})
}

func TestCreateClient(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir := store.NewDirectory(db)
		org := mustOrg(t, db, "Acme")
		if _, err := dir.CreateClient(ctx, store.NewClient{ClientID: "web", Name: "Web"}); err != nil {
			t.Fatalf("CreateClient(web): %v", err)
		}
		if _, err := dir.CreateClient(ctx, store.NewClient{ClientID: "acme-cli", Name: "CLI", OrganizationID: org.ID}); err != nil {
			t.Fatalf("CreateClient(acme-cli): %v", err)
		}
		_, err := dir.CreateClient(ctx, store.NewClient{ClientID: "web", Name: "Another web", OrganizationID: org.ID})
		if !errors.Is(err, nexus.ErrConflict) {
			t.Errorf("duplicate CreateClient(web) = %v, want conflict", err)
		}

		a := store.NewAuth(db)
		web, err := a.ClientByClientID(ctx, "web")
		if err != nil {
			t.Fatalf("ClientByClientID(web): %v", err)
		}
		if web.Name != "Web" || web.OrganizationID != "" || web.Disabled {
			t.Errorf("web = %+v, want the first registration, any organization, enabled", web)
		}
		cli, err := a.ClientByClientID(ctx, "acme-cli")
		if err != nil {
			t.Fatalf("ClientByClientID(acme-cli): %v", err)
		}
		if cli.OrganizationID != org.ID {
			t.Errorf("acme-cli organization = %q, want %q", cli.OrganizationID, org.ID)
		}
		if _, err := a.ClientByClientID(ctx, "WEB"); !errors.Is(err, nexus.ErrNotFound) {
			t.Errorf("ClientByClientID(WEB) = %v, want not found (client ids are case-sensitive)", err)
		}
	})
}

func TestSetClientDisabled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir, a := store.NewDirectory(db), store.NewAuth(db)
		if _, err := dir.CreateClient(ctx, store.NewClient{ClientID: "web", Name: "Web"}); err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		for _, disabled := range []bool{true, true, false} {
			if err := dir.SetClientDisabled(ctx, "web", disabled); err != nil {
				t.Fatalf("SetClientDisabled(web, %v): %v", disabled, err)
			}
			c, err := a.ClientByClientID(ctx, "web")
			if err != nil {
				t.Fatalf("ClientByClientID: %v", err)
			}
			if c.Disabled != disabled {
				t.Errorf("after SetClientDisabled(%v), Disabled = %v", disabled, c.Disabled)
			}
		}
		for _, id := range []string{"unknown", "", "WEB"} {
			if err := dir.SetClientDisabled(ctx, id, true); !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("SetClientDisabled(%q) = %v, want not found", id, err)
			}
		}
	})
}

func TestSetUserStatus(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir, us := store.NewDirectory(db), store.NewUsers(db)
		u := mustUser(t, db, mustOrg(t, db, "Acme").ID, "ada@example.com")
		for _, status := range []nexus.UserStatus{nexus.UserInactive, nexus.UserActive} {
			if err := dir.SetUserStatus(ctx, u.ID, status); err != nil {
				t.Fatalf("SetUserStatus(%s): %v", status, err)
			}
			got, err := us.User(ctx, u.OrganizationID, u.ID)
			if err != nil {
				t.Fatalf("User: %v", err)
			}
			if got.Status != status {
				t.Errorf("status = %s, want %s", got.Status, status)
			}
		}
		for _, id := range []string{uuid.NewString(), "not-a-uuid", "", "' OR 1=1 --"} {
			if err := dir.SetUserStatus(ctx, id, nexus.UserInactive); !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("SetUserStatus(%q) = %v, want not found", id, err)
			}
		}
	})
}

func TestOrganizations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir := store.NewDirectory(db)
		empty, err := dir.Empty(ctx)
		if err != nil || !empty {
			t.Fatalf("Empty() on a new database = %v, %v; want true", empty, err)
		}
		org := mustOrg(t, db, "Acme")
		empty, err = dir.Empty(ctx)
		if err != nil || empty {
			t.Fatalf("Empty() after CreateOrganization = %v, %v; want false", empty, err)
		}
		tests := []struct {
			id   string
			want bool
		}{
			{org.ID, true},
			{uuid.NewString(), false},
			{"not-a-uuid", false},
			{"", false},
		}
		for _, tt := range tests {
			got, err := dir.OrganizationExists(ctx, tt.id)
			if err != nil || got != tt.want {
				t.Errorf("OrganizationExists(%q) = %v, %v; want %v", tt.id, got, err, tt.want)
			}
		}
	})
}

func TestSeedIsAtomic(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir := store.NewDirectory(db)
		errStop := errors.New("stop")
		err := dir.Seed(ctx, func(tx *store.Directory) error {
			org, err := tx.CreateOrganization(ctx, "Acme")
			if err != nil {
				return err
			}
			if _, err := tx.CreateUser(ctx, newUser(org.ID, "ada@example.com"), "h"); err != nil {
				return err
			}
			return errStop
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("Seed = %v, want the callback's error", err)
		}
		if empty, err := dir.Empty(ctx); err != nil || !empty {
			t.Errorf("after a failed Seed, Empty() = %v, %v; want true", empty, err)
		}
		if _, err := store.NewAuth(db).UserByEmail(ctx, "ada@example.com"); !errors.Is(err, nexus.ErrNotFound) {
			t.Errorf("after a failed Seed, UserByEmail = %v, want not found", err)
		}
	})
}

// TestOrganizationIDCase checks that an organization id in upper case, which OrganizationExists accepts, works
// alike on both databases and is stored in canonical form.
func TestOrganizationIDCase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir, a := store.NewDirectory(db), store.NewAuth(db)
		org := mustOrg(t, db, "Acme")
		upper := strings.ToUpper(org.ID)
		if ok, err := dir.OrganizationExists(ctx, upper); err != nil || !ok {
			t.Fatalf("OrganizationExists(%q) = %v, %v; want true", upper, ok, err)
		}
		u, err := dir.CreateUser(ctx, newUser(upper, "ada@example.com"), "h")
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if u.OrganizationID != org.ID {
			t.Errorf("CreateUser returned organization %q, want %q", u.OrganizationID, org.ID)
		}
		if _, err := dir.CreateClient(ctx, store.NewClient{ClientID: "acme", Name: "Acme", OrganizationID: upper}); err != nil {
			t.Fatalf("CreateClient: %v", err)
		}
		c, err := a.ClientByClientID(ctx, "acme")
		if err != nil {
			t.Fatalf("ClientByClientID: %v", err)
		}
		got, err := store.NewUsers(db).User(ctx, org.ID, u.ID)
		if err != nil {
			t.Fatalf("User: %v", err)
		}
		if c.OrganizationID != org.ID || got.OrganizationID != org.ID {
			t.Errorf("stored organizations: client %q, user %q; want %q", c.OrganizationID, got.OrganizationID, org.ID)
		}
	})
}
