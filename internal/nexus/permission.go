package nexus

import "strings"

// Permission is something a role allows. Names are resource:action; the ":own" form of a permission (see Own)
// limits it to the caller's own record.
type Permission string

// The permissions. The table of which role grants which is RolePermissions.
const (
	PermUsersList            Permission = "users:list"
	PermUsersRead            Permission = "users:read"
	PermUsersReadPermissions Permission = "users:read_permissions"
	PermUsersReadActivity    Permission = "users:read_activity"
	PermUsersWrite           Permission = "users:write"
	PermEventsWrite          Permission = "events:write"
	PermEventsWriteAnyUser   Permission = "events:write_any_user"
	PermAnalyticsRead        Permission = "analytics:read"
	PermClientsRead          Permission = "clients:read"
	PermClientsWrite         Permission = "clients:write"
	PermTokensIntrospect     Permission = "tokens:introspect"
)

// Own returns the form of p that is limited to the caller's own record: "users:read" → "users:read:own".
func (p Permission) Own() Permission { return p + ":own" }

// Scope says how far a role's grant of a permission reaches.
type Scope uint8

// The scopes of a grant, narrowest first.
const (
	ScopeNone         Scope = iota // not granted
	ScopeOwn                       // only for the caller's own record
	ScopeOrganization              // for every record of the caller's organization
)

// grants is the permission matrix. A role absent from a permission's row has ScopeNone; every role may read its
// own record with both includes.
var grants = []struct {
	perm  Permission
	roles map[Role]Scope
}{
	{PermUsersList, map[Role]Scope{RoleAdmin: ScopeOrganization, RoleManager: ScopeOrganization}},
	{PermUsersRead, map[Role]Scope{RoleAdmin: ScopeOrganization, RoleManager: ScopeOrganization, RoleAnalyst: ScopeOwn, RoleMember: ScopeOwn}},
	{PermUsersReadPermissions, map[Role]Scope{RoleAdmin: ScopeOrganization, RoleManager: ScopeOrganization, RoleAnalyst: ScopeOwn, RoleMember: ScopeOwn}},
	{PermUsersReadActivity, map[Role]Scope{RoleAdmin: ScopeOrganization, RoleManager: ScopeOrganization, RoleAnalyst: ScopeOwn, RoleMember: ScopeOwn}},
	{PermUsersWrite, map[Role]Scope{RoleAdmin: ScopeOrganization}},
	{PermEventsWrite, map[Role]Scope{RoleAdmin: ScopeOrganization, RoleManager: ScopeOrganization, RoleAnalyst: ScopeOrganization, RoleMember: ScopeOrganization}},
	{PermEventsWriteAnyUser, map[Role]Scope{RoleAdmin: ScopeOrganization, RoleAnalyst: ScopeOrganization}},
	{PermAnalyticsRead, map[Role]Scope{RoleAdmin: ScopeOrganization, RoleManager: ScopeOrganization, RoleAnalyst: ScopeOrganization}},
	// Service clients: admins manage them and may grant them any scope, tokens:introspect included (which only a
	// client's own credentials exercise, at the introspection endpoint).
	{PermClientsRead, map[Role]Scope{RoleAdmin: ScopeOrganization}},
	{PermClientsWrite, map[Role]Scope{RoleAdmin: ScopeOrganization}},
	{PermTokensIntrospect, map[Role]Scope{RoleAdmin: ScopeOrganization}},
}

// Permissions lists every permission, in the order of the matrix.
func Permissions() []Permission {
	out := make([]Permission, len(grants))
	for i, g := range grants {
		out[i] = g.perm
	}
	return out
}

// Grant returns how far r grants p; unknown roles and permissions grant nothing.
func (r Role) Grant(p Permission) Scope {
	for _, g := range grants {
		if g.perm == p {
			return g.roles[r]
		}
	}
	return ScopeNone
}

// RolePermissions returns the effective permissions of r, in the order of the matrix: p where r grants p for
// the whole organization, p.Own() where it grants p for the user's own record only.
func RolePermissions(r Role) []Permission {
	var out []Permission
	for _, g := range grants {
		switch g.roles[r] {
		case ScopeOrganization:
			out = append(out, g.perm)
		case ScopeOwn:
			out = append(out, g.perm.Own())
		}
	}
	return out
}

// KnownPermission reports whether p names a permission of the matrix (not its ":own" form).
func KnownPermission(p Permission) bool {
	for _, g := range grants {
		if g.perm == p {
			return true
		}
	}
	return false
}

// ErrInsufficientPermission is returned when the caller's role does not grant what a request needs.
var ErrInsufficientPermission = &Error{Kind: KindPermissionDenied, Code: CodeInsufficientPermission,
	Message: "Your role does not grant the permission this request needs."}

// Authorize decides whether p may exercise perm on the record of the user subjectUserID ("" when the request
// is not about one user). It is the only place where roles and scopes turn into decisions: a user's role grants
// a permission for the organization or for the user's own record; a service client's scopes grant it for the
// organization or not at all (a service principal has no record of its own).
// Errors: insufficient_permission.
func Authorize(p Principal, perm Permission, subjectUserID string) error {
	if p.Service {
		if p.Scopes.Has(perm) {
			return nil
		}
		e := *ErrInsufficientPermission
		e.Message = "This request needs the " + string(perm) + " scope, which the client's token does not carry."
		return &e
	}
	switch p.Role.Grant(perm) {
	case ScopeOrganization:
		return nil
	case ScopeOwn:
		if subjectUserID != "" && strings.EqualFold(subjectUserID, p.UserID) {
			return nil
		}
	}
	e := *ErrInsufficientPermission
	e.Message = "This request needs the " + string(perm) + " permission, which your role does not grant."
	return &e
}
