package main

import (
	"time"

	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// How the client commands print service clients: words for people, and with --json the API's shapes.

func scopeText(s nexus.PermissionSet) string {
	if s == 0 {
		return "(none)"
	}
	return s.String()
}

func status(c clients.Client) string {
	if c.Disabled {
		return "disabled"
	}
	return "active"
}

func when(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339)
}

// clientJSON and secretJSON are a service client and a secret as --json prints them: the API's ServiceClient
// and ClientSecret.
type clientJSON struct {
	ClientID       string       `json:"client_id"`
	Name           string       `json:"name"`
	OrganizationID string       `json:"organization_id"`
	Scopes         []string     `json:"scopes"`
	Status         string       `json:"status"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
	Secrets        []secretJSON `json:"secrets"`
}

type secretJSON struct {
	ID         string     `json:"id"`
	Hint       string     `json:"hint"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func toClientJSON(c clients.Client) clientJSON {
	out := clientJSON{ClientID: c.ClientID, Name: c.Name, OrganizationID: c.OrganizationID, Scopes: []string{},
		Status: status(c), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Secrets: make([]secretJSON, len(c.Secrets))}
	for _, p := range c.Scopes.List() {
		out.Scopes = append(out.Scopes, string(p))
	}
	for i, s := range c.Secrets {
		out.Secrets[i] = toSecretJSON(s)
	}
	return out
}

func toSecretJSON(s clients.Secret) secretJSON {
	out := secretJSON{ID: s.ID, Hint: s.Hint, CreatedAt: s.CreatedAt}
	if !s.ExpiresAt.IsZero() {
		t := s.ExpiresAt
		out.ExpiresAt = &t
	}
	if !s.LastUsedAt.IsZero() {
		t := s.LastUsedAt
		out.LastUsedAt = &t
	}
	return out
}
