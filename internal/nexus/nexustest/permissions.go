// Package nexustest states the contract's roles-and-permissions table for the tests of nexus and httpapi, so
// that both check the code against one copy of it. Only tests import it.
package nexustest

import "github.com/nexus-cloud/nexus-core/internal/nexus"

// Grant is one row of the table: a permission and the cell of each role's column.
type Grant struct {
	Perm                            nexus.Permission
	Admin, Manager, Analyst, Member nexus.Scope
}

// Shorthands for the cells as openapi.yaml writes them: "yes", "own record" and "–".
const (
	yes = nexus.ScopeOrganization
	own = nexus.ScopeOwn
	no  = nexus.ScopeNone
)

// ContractGrants is the "Roles and permissions" table of openapi.yaml's info.description, copied cell by cell
// with the permission names spelled out, in the order of its rows. It is deliberately written out here rather
// than read from nexus.Role.Grant, nexus.Authorize or nexus.RolePermissions, so that the tests fail when the
// code drifts from the contract.
var ContractGrants = []Grant{
	{"users:list", yes, yes, no, no},
	{"users:read", yes, yes, own, own},
	{"users:read_permissions", yes, yes, own, own},
	{"users:read_activity", yes, yes, own, own},
	{"users:write", yes, no, no, no},
	{"events:write", yes, yes, yes, yes},
	{"events:write_any_user", yes, no, yes, no},
	{"analytics:read", yes, yes, yes, no},
	{"clients:read", yes, no, no, no},
	{"clients:write", yes, no, no, no},
	{"tokens:introspect", yes, no, no, no},
}

// ContractRoles are the roles of the table, in the order of its columns.
var ContractRoles = []nexus.Role{"admin", "manager", "analyst", "member"}

// Scope returns the cell of role r in row g; ok is false for a role the table has no column for.
func (g Grant) Scope(r nexus.Role) (s nexus.Scope, ok bool) {
	switch r {
	case "admin":
		return g.Admin, true
	case "manager":
		return g.Manager, true
	case "analyst":
		return g.Analyst, true
	case "member":
		return g.Member, true
	}
	return no, false
}
