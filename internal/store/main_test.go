package store_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// mustOrg creates an organization called name.
func mustOrg(t *testing.T, db *store.DB, name string) store.Organization {
	t.Helper()
	org, err := store.NewDirectory(db).CreateOrganization(context.Background(), name)
	if err != nil {
		t.Fatalf("CreateOrganization(%q): %v", name, err)
	}
	return org
}

// mustUser creates an active member of org with the given email.
func mustUser(t *testing.T, db *store.DB, orgID, email string) nexus.User {
	t.Helper()
	u, err := store.NewDirectory(db).CreateUser(context.Background(), newUser(orgID, email), "hash-of-"+email)
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", email, err)
	}
	return u
}

func newUser(orgID, email string) nexus.User {
	return nexus.User{OrganizationID: orgID, Email: email, Name: "Ada Lovelace", Role: nexus.RoleMember, Status: nexus.UserActive}
}

// updateUser changes a user of the organization through users.Service over s at the given time, as the API
// does: the service decides (the last-admin rule, the revocation reason), the store locks, counts and writes.
// c.By is the principal the change is made as.
func updateUser(ctx context.Context, s *store.Users, orgID, userID string, c users.Change, at time.Time) (nexus.User, error) {
	svc, err := users.NewService(users.Options{Store: s, CheckPassword: func(string) error { return nil },
		HashPassword: func(p string) (string, error) { return "hash-of-" + p, nil }, Now: func() time.Time { return at }})
	if err != nil {
		return nexus.User{}, err
	}
	return svc.Update(ctx, nexus.Principal{UserID: c.By.UserID, OrganizationID: orgID, SessionID: c.By.SessionID,
		ClientID: c.By.ClientID}, userID, c)
}
