package nexus

import (
	"math/bits"
	"strings"
)

// PermissionSet is a set of permissions of the matrix (never ":own" forms): the scopes granted to a service
// client, or carried by its token. Its zero value is the empty set.
type PermissionSet uint64

// bit returns p's bit, or 0 for a permission outside the matrix.
func bit(p Permission) PermissionSet {
	for i, g := range grants {
		if g.perm == p {
			return 1 << uint(i) // #nosec G115 -- i < len(grants) < 64 (TestPermissionSetFits)
		}
	}
	return 0
}

// Has reports whether s holds p.
func (s PermissionSet) Has(p Permission) bool { b := bit(p); return b != 0 && s&b != 0 }

// With returns s with p added; a permission outside the matrix adds nothing.
func (s PermissionSet) With(p Permission) PermissionSet { return s | bit(p) }

// Contains reports whether every permission of o is in s.
func (s PermissionSet) Contains(o PermissionSet) bool { return o&^s == 0 }

// Len returns the number of permissions in s.
func (s PermissionSet) Len() int { return bits.OnesCount64(uint64(s)) }

// List returns the permissions of s in the order of the matrix.
func (s PermissionSet) List() []Permission {
	out := make([]Permission, 0, s.Len())
	for i, g := range grants {
		if s&(1<<uint(i)) != 0 { // #nosec G115 -- i < 64
			out = append(out, g.perm)
		}
	}
	return out
}

// String returns the scopes of s as an OAuth scope parameter: names separated by one space, in the order of the
// matrix ("" for the empty set).
func (s PermissionSet) String() string {
	var b strings.Builder
	for _, p := range s.List() {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(p))
	}
	return b.String()
}

// ParsePermissionSet reads an OAuth scope parameter (RFC 6749 §3.3: names separated by single spaces), or the
// stored form String writes. It returns the set and the names that are not permissions of the matrix, if any.
// Runs of spaces and leading or trailing spaces are refused as an unknown empty name.
func ParsePermissionSet(scope string) (PermissionSet, []string) {
	var s PermissionSet
	var unknown []string
	if scope == "" {
		return 0, nil
	}
	for _, name := range strings.Split(scope, " ") {
		b := bit(Permission(name))
		if b == 0 {
			unknown = append(unknown, name)
			continue
		}
		s |= b
	}
	return s, unknown
}

// PermissionSetOf returns the set of the given permissions and the ones outside the matrix.
func PermissionSetOf(perms []Permission) (PermissionSet, []Permission) {
	var s PermissionSet
	var unknown []Permission
	for _, p := range perms {
		if b := bit(p); b != 0 {
			s |= b
		} else {
			unknown = append(unknown, p)
		}
	}
	return s, unknown
}

// Grantable returns the scopes that p may grant to a service client: those it holds for the whole organization
// (a user's role at ScopeOrganization, a service's own scopes).
func Grantable(p Principal) PermissionSet {
	if p.Service {
		return p.Scopes
	}
	var s PermissionSet
	for i, g := range grants {
		if g.roles[p.Role] == ScopeOrganization {
			s |= 1 << uint(i) // #nosec G115 -- i < 64
		}
	}
	return s
}

// AllPermissions returns the set of every permission of the matrix.
func AllPermissions() PermissionSet { return PermissionSet(1)<<uint(len(grants)) - 1 } // #nosec G115 -- len(grants) < 64
