package clients

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Reasons recorded on the tokens a change revokes.
const (
	RevokedDisabled      = "client_disabled"
	RevokedScopesChanged = "client_scopes_changed"
	RevokedSecret        = "client_secret_revoked"
)

// UpdateInput is a change of a service client; nil members are left as they are.
type UpdateInput struct {
	Name     *string
	Scopes   *nexus.PermissionSet
	Disabled *bool
}

// Update renames a service client of p's organization, replaces its scopes, or disables or re-enables it.
// Disabling it, or taking a scope away, revokes every live token it holds, in the same transaction.
// Errors: validation_failed, insufficient_permission, not_found, unavailable, internal.
func (s *Service) Update(ctx context.Context, p nexus.Principal, clientID string, in UpdateInput) (Client, error) {
	if err := nexus.Authorize(p, nexus.PermClientsWrite, ""); err != nil {
		return Client{}, err
	}
	var out Client
	err := s.store.UpdateServiceClient(ctx, p.OrganizationID, clientID, func(c Client) (Change, error) {
		now := s.now()
		next := c
		var changes []string
		if in.Name != nil {
			next.Name = strings.TrimSpace(*in.Name)
			changes = append(changes, fmt.Sprintf("name %q", next.Name))
		}
		if in.Scopes != nil {
			next.Scopes = *in.Scopes
			changes = append(changes, fmt.Sprintf("scopes %q", next.Scopes.String()))
		}
		if in.Disabled != nil {
			next.Disabled = *in.Disabled
			changes = append(changes, map[bool]string{true: "disabled", false: "enabled"}[next.Disabled])
		}
		// Only new scopes need the caller to hold them: taking a scope away is always allowed.
		if err := s.check(p, next.Name, next.Scopes&^c.Scopes, time.Time{}, "", now); err != nil {
			return Change{}, err
		}
		next.UpdatedAt = now
		ch := Change{At: now, Client: next,
			Audit: audit(p, now, "client_update", fmt.Sprintf("client %s: %s", c.ClientID, strings.Join(changes, ", ")))}
		switch {
		case next.Disabled && !c.Disabled:
			ch.RevokeTokens = RevokedDisabled
		case c.Scopes&^next.Scopes != 0:
			ch.RevokeTokens = RevokedScopesChanged
		}
		out = next
		return ch, nil
	})
	return out, err
}

// AddSecret adds a secret to a service client of p's organization, to rotate without downtime; a client holds
// at most MaxSecrets that are not revoked. The secret is returned once.
// Errors: validation_failed, insufficient_permission, not_found, conflict, unavailable, internal.
func (s *Service) AddSecret(ctx context.Context, p nexus.Principal, clientID string, expiresAt time.Time) (Secret, string, error) {
	if err := nexus.Authorize(p, nexus.PermClientsWrite, ""); err != nil {
		return Secret{}, "", err
	}
	var sec Secret
	var plain string
	err := s.store.UpdateServiceClient(ctx, p.OrganizationID, clientID, func(c Client) (Change, error) {
		now := s.now()
		if err := s.check(p, c.Name, 0, expiresAt, "/expires_at", now); err != nil {
			return Change{}, err
		}
		if len(c.Secrets) >= MaxSecrets {
			return Change{}, &nexus.Error{Kind: nexus.KindConflict, Code: nexus.CodeConflict,
				Message: fmt.Sprintf("The client already has %d secrets that are not revoked; revoke one first.", MaxSecrets)}
		}
		var err error
		if plain, sec, err = s.newSecret(now, expiresAt); err != nil {
			return Change{}, err
		}
		c.UpdatedAt = now
		return Change{At: now, Client: c, AddSecret: &sec,
			Audit: audit(p, now, "client_secret_add", fmt.Sprintf("client %s: secret %s (…%s) added", c.ClientID, sec.ID, sec.Hint))}, nil
	})
	if err != nil {
		return Secret{}, "", err
	}
	sec.Hash = nil
	return sec, plain, nil
}

// RevokeSecret revokes a secret of a service client of p's organization, and every live token issued with it.
// A secret that is not the client's, or already revoked, is not_found.
// Errors: insufficient_permission, not_found, unavailable, internal.
func (s *Service) RevokeSecret(ctx context.Context, p nexus.Principal, clientID, secretID string) error {
	if err := nexus.Authorize(p, nexus.PermClientsWrite, ""); err != nil {
		return err
	}
	return s.store.UpdateServiceClient(ctx, p.OrganizationID, clientID, func(c Client) (Change, error) {
		found := false
		for _, sec := range c.Secrets {
			found = found || strings.EqualFold(sec.ID, secretID)
		}
		if !found {
			return Change{}, nexus.ErrNotFound
		}
		now := s.now()
		c.UpdatedAt = now
		return Change{At: now, Client: c, RevokeSecret: strings.ToLower(secretID),
			Audit: audit(p, now, "client_secret_revoke", fmt.Sprintf("client %s: secret %s revoked", c.ClientID, secretID))}, nil
	})
}
