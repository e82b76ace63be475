package nexus

import "context"

// Principal is the authenticated caller of a request, as proven by a verified access token: a user (UserID and
// Role set), or a service client acting for itself (Service, with Scopes and no UserID or Role).
type Principal struct {
	UserID         string
	OrganizationID string
	Role           Role
	SessionID      string
	ClientID       string
	TokenID        string
	Service        bool          // a service client's token (client credentials grant)
	Scopes         PermissionSet // what a service token grants
}

// Subject returns who the principal is, for rate limits and logs: the user's id, or a service client's client_id
// (which is never a UUID, so never a user's id).
func (p Principal) Subject() string {
	if p.Service {
		return p.ClientID
	}
	return p.UserID
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx that carries p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal carried by ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
