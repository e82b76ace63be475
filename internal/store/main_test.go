package store_test

import (
	"context"
	"os"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
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
