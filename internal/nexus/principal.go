package nexus

import "context"

// Principal is the authenticated caller of a request, as proven by a verified access token.
type Principal struct {
	UserID         string
	OrganizationID string
	Role           Role
	SessionID      string
	ClientID       string
	TokenID        string
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
