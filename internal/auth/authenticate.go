package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Authenticate verifies a bearer access token and checks that its session is still live, so that a logout or a
// revocation takes effect on every node at once (see caches for what is remembered between requests).
// Errors: unauthenticated, unavailable, internal.
func (s *Service) Authenticate(ctx context.Context, bearer string) (nexus.Principal, error) {
	p, err := s.verifyAccessToken(ctx, bearer)
	if err != nil {
		return nexus.Principal{}, err
	}
	sess, err := s.sessionState(ctx, p.SessionID, p.Service)
	switch {
	case errors.Is(err, nexus.ErrNotFound):
		return nexus.Principal{}, nexus.ErrUnauthenticated
	case err != nil:
		return nexus.Principal{}, fmt.Errorf("look up session: %w", err)
	case sess.revoked, !s.now().Before(sess.expiresAt):
		return nexus.Principal{}, nexus.ErrUnauthenticated
	case sess.userID != p.UserID, sess.organizationID != p.OrganizationID, sess.clientID != p.ClientID,
		sess.role != "" && sess.role != p.Role, sess.scopes != p.Scopes:
		// The claims the session records must be the session's: a token is never believed over its session. (A
		// session without a role was started by a server older than the session roles, during a rolling upgrade;
		// its next refresh records the role.)
		return nexus.Principal{}, nexus.ErrUnauthenticated
	}
	return p, nil
}
