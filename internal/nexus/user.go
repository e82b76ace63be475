package nexus

import (
	"strings"
	"time"
)

// Role is a user's role within an organization.
type Role string

// The built-in roles.
const (
	RoleAdmin   Role = "admin"
	RoleManager Role = "manager"
	RoleAnalyst Role = "analyst"
	RoleMember  Role = "member"
)

// Roles lists the built-in roles, most privileged first.
func Roles() []Role { return []Role{RoleAdmin, RoleManager, RoleAnalyst, RoleMember} }

// Valid reports whether r is a built-in role.
func (r Role) Valid() bool {
	switch r {
	case RoleAdmin, RoleManager, RoleAnalyst, RoleMember:
		return true
	}
	return false
}

// UserStatus tells whether a user may log in.
type UserStatus string

// The user statuses.
const (
	UserActive   UserStatus = "active"
	UserInactive UserStatus = "inactive"
)

// User is a user's public profile.
type User struct {
	ID             string
	OrganizationID string
	Email          string
	Name           string
	Role           Role
	Status         UserStatus
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// NormalizeEmail returns the form of an email address that uniqueness and lookups use: trimmed and lower-cased.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}
