package nexus_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/nexus/nexustest"
)

// Shorthands for the cells of the matrix as openapi.yaml writes them: "yes", "own record" and "–".
const (
	yes = nexus.ScopeOrganization
	own = nexus.ScopeOwn
	no  = nexus.ScopeNone
)

// contractMatrix is the "Roles and permissions" table of openapi.yaml's info.description, cell by cell, as
// nexustest states it for this package's tests and httpapi's alike; deliberately not derived from the code's table.
var contractMatrix = nexustest.ContractGrants

// contractScope returns the contract's cell for role r in row i of contractMatrix.
func contractScope(t *testing.T, r nexus.Role, i int) nexus.Scope {
	t.Helper()
	s, ok := contractMatrix[i].Scope(r)
	if !ok {
		t.Fatalf("no column for role %q", r)
	}
	return s
}

var contractRoles = nexustest.ContractRoles

func TestGrantMatchesContract(t *testing.T) {
	for i, row := range contractMatrix {
		for _, r := range contractRoles {
			want := contractScope(t, r, i)
			if got := r.Grant(row.Perm); got != want {
				t.Errorf("Role(%q).Grant(%q) = %v, want %v", r, row.Perm, got, want)
			}
		}
	}
}

func TestPermissionConstants(t *testing.T) {
	got := []nexus.Permission{
		nexus.PermUsersList, nexus.PermUsersRead, nexus.PermUsersReadPermissions, nexus.PermUsersReadActivity,
		nexus.PermUsersWrite, nexus.PermEventsWrite, nexus.PermEventsWriteAnyUser, nexus.PermAnalyticsRead,
		nexus.PermClientsRead, nexus.PermClientsWrite, nexus.PermTokensIntrospect,
	}
	var want []nexus.Permission
	for _, row := range contractMatrix {
		want = append(want, row.Perm)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("permission constants (-contract +code):\n%s", diff)
	}
	if diff := cmp.Diff(want, nexus.Permissions()); diff != "" {
		t.Errorf("Permissions() (-contract +code):\n%s", diff)
	}
	if got, want := nexus.PermUsersRead.Own(), nexus.Permission("users:read:own"); got != want {
		t.Errorf("PermUsersRead.Own() = %q, want %q", got, want)
	}
}

func TestGrantUnknown(t *testing.T) {
	roles := []nexus.Role{"", "owner", "Admin", "ADMIN", " admin", "admin "}
	perms := []nexus.Permission{"", "users", "users:read:own", "users:delete", "USERS:LIST", "*"}
	for _, r := range roles {
		for _, row := range contractMatrix {
			if got := r.Grant(row.Perm); got != no {
				t.Errorf("unknown Role(%q).Grant(%q) = %v, want ScopeNone", r, row.Perm, got)
			}
		}
	}
	for _, r := range contractRoles {
		for _, p := range perms {
			if got := r.Grant(p); got != no {
				t.Errorf("Role(%q).Grant(unknown %q) = %v, want ScopeNone", r, p, got)
			}
		}
	}
}

func TestRolePermissions(t *testing.T) {
	tests := []struct {
		role nexus.Role
		want []nexus.Permission
	}{
		{"admin", []nexus.Permission{
			"users:list", "users:read", "users:read_permissions", "users:read_activity", "users:write",
			"events:write", "events:write_any_user", "analytics:read", "clients:read", "clients:write", "tokens:introspect",
		}},
		{"manager", []nexus.Permission{
			"users:list", "users:read", "users:read_permissions", "users:read_activity",
			"events:write", "analytics:read",
		}},
		{"analyst", []nexus.Permission{
			"users:read:own", "users:read_permissions:own", "users:read_activity:own",
			"events:write", "events:write_any_user", "analytics:read",
		}},
		{"member", []nexus.Permission{
			"users:read:own", "users:read_permissions:own", "users:read_activity:own",
			"events:write",
		}},
		{"", nil},
		{"owner", nil},
		{"Admin", nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			got := nexus.RolePermissions(tt.role)
			if len(tt.want) == 0 {
				if len(got) != 0 {
					t.Errorf("RolePermissions(%q) = %q, want none", tt.role, got)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RolePermissions(%q) (-want +got):\n%s", tt.role, diff)
			}
		})
	}
}

func TestKnownPermission(t *testing.T) {
	tests := []struct {
		perm nexus.Permission
		want bool
	}{
		{"users:list", true},
		{"users:read", true},
		{"users:read_permissions", true},
		{"users:read_activity", true},
		{"users:write", true},
		{"events:write", true},
		{"events:write_any_user", true},
		{"analytics:read", true},
		{"clients:read", true},
		{"clients:write", true},
		{"tokens:introspect", true},

		{"users:read:own", false},
		{"users:read_permissions:own", false},
		{"users:read_activity:own", false},
		{"users:list:own", false},
		{"events:write:own", false},
		{"", false},
		{"users", false},
		{"users:", false},
		{":list", false},
		{"users:*", false},
		{"*", false},
		{"users:delete", false},
		{"USERS:LIST", false},
		{"Users:List", false},
		{" users:list", false},
		{"users:list ", false},
		{"users:list\n", false},
		{"users.list", false},
		{"admin", false},
	}
	for _, tt := range tests {
		if got := nexus.KnownPermission(tt.perm); got != tt.want {
			t.Errorf("KnownPermission(%q) = %v, want %v", tt.perm, got, tt.want)
		}
	}
}

func TestAuthorize(t *testing.T) {
	const (
		self      = "0f8fad5b-d9cb-469f-a165-70867728950e"
		selfUpper = "0F8FAD5B-D9CB-469F-A165-70867728950E"
		selfMixed = "0f8FAD5b-d9CB-469f-A165-70867728950e"
		other     = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	)
	// subjects, and whether a grant limited to the caller's own record reaches each.
	subjects := []struct {
		name    string
		id      string
		ownSelf bool
	}{
		{"no subject", "", false},
		{"self", self, true},
		{"self upper-case", selfUpper, true},
		{"self mixed case", selfMixed, true},
		{"other user", other, false},
		{"self prefix", self[:8], false},
		{"self with space", " " + self, false},
	}
	for i, row := range contractMatrix {
		for _, r := range contractRoles {
			scope := contractScope(t, r, i)
			for _, s := range subjects {
				var allowed bool
				switch scope {
				case yes:
					allowed = true
				case own:
					allowed = s.ownSelf
				}
				p := nexus.Principal{UserID: self, OrganizationID: "org-1", Role: r}
				err := nexus.Authorize(p, row.Perm, s.id)
				checkAuthorize(t, r, row.Perm, s.name, err, allowed)
			}
		}
	}

	// A principal whose id is written in upper case still matches its lower-case form.
	p := nexus.Principal{UserID: selfUpper, OrganizationID: "org-1", Role: "member"}
	checkAuthorize(t, "member", "users:read", "self lower-case, principal upper-case",
		nexus.Authorize(p, "users:read", self), true)

	// An empty principal id never matches an empty subject.
	p = nexus.Principal{OrganizationID: "org-1", Role: "analyst"}
	checkAuthorize(t, "analyst", "users:read", "empty principal id, no subject",
		nexus.Authorize(p, "users:read", ""), false)

	// Unknown roles and unknown permissions grant nothing, not even for the caller's own record.
	for _, r := range []nexus.Role{"", "owner", "Admin"} {
		p := nexus.Principal{UserID: self, OrganizationID: "org-1", Role: r}
		for _, row := range contractMatrix {
			for _, subj := range []string{"", self, other} {
				checkAuthorize(t, r, row.Perm, "subject "+subj, nexus.Authorize(p, row.Perm, subj), false)
			}
		}
	}
	for _, r := range contractRoles {
		p := nexus.Principal{UserID: self, OrganizationID: "org-1", Role: r}
		for _, perm := range []nexus.Permission{"users:read:own", "users:delete", ""} {
			checkAuthorize(t, r, perm, "self", nexus.Authorize(p, perm, self), false)
		}
	}

	// Refusals are copies: the sentinel keeps its own message.
	if want := "Your role does not grant the permission this request needs."; nexus.ErrInsufficientPermission.Message != want {
		t.Errorf("ErrInsufficientPermission.Message = %q after Authorize, want %q", nexus.ErrInsufficientPermission.Message, want)
	}
}

func checkAuthorize(t *testing.T, r nexus.Role, perm nexus.Permission, subject string, err error, allowed bool) {
	t.Helper()
	if allowed {
		if err != nil {
			t.Errorf("Authorize(%s, %q, %s) = %v, want nil", r, perm, subject, err)
		}
		return
	}
	if err == nil {
		t.Errorf("Authorize(%s, %q, %s) = nil, want insufficient_permission", r, perm, subject)
		return
	}
	if !errors.Is(err, nexus.ErrInsufficientPermission) {
		t.Errorf("Authorize(%s, %q, %s) = %v, want errors.Is ErrInsufficientPermission", r, perm, subject, err)
	}
	if k := nexus.KindOf(err); k != nexus.KindPermissionDenied {
		t.Errorf("Authorize(%s, %q, %s): kind %v, want %v", r, perm, subject, k, nexus.KindPermissionDenied)
	}
	var e *nexus.Error
	if !errors.As(err, &e) {
		t.Fatalf("Authorize(%s, %q, %s) = %T, want *nexus.Error", r, perm, subject, err)
	}
	if e.Code != "insufficient_permission" {
		t.Errorf("Authorize(%s, %q, %s): code %q, want insufficient_permission", r, perm, subject, e.Code)
	}
	if e == nexus.ErrInsufficientPermission {
		t.Errorf("Authorize(%s, %q, %s) returned the sentinel itself, want a copy", r, perm, subject)
	}
	if perm != "" && !strings.Contains(e.Message, string(perm)) {
		t.Errorf("Authorize(%s, %q, %s): message %q does not name the permission", r, perm, subject, e.Message)
	}
}
