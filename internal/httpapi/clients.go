package httpapi

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// ClientsService is what the HTTP layer needs from the clients domain.
type ClientsService interface {
	Authenticate(ctx context.Context, clientID, secret string) (clients.Client, string, error)
	List(ctx context.Context, p nexus.Principal) ([]clients.Client, error)
	Get(ctx context.Context, p nexus.Principal, clientID string) (clients.Client, error)
	Create(ctx context.Context, p nexus.Principal, in clients.CreateInput) (clients.Created, error)
	Update(ctx context.Context, p nexus.Principal, clientID string, in clients.UpdateInput) (clients.Client, error)
	AddSecret(ctx context.Context, p nexus.Principal, clientID string, expiresAt time.Time) (clients.Secret, string, error)
	RevokeSecret(ctx context.Context, p nexus.Principal, clientID, secretID string) error
}

var _ ClientsService = (*clients.Service)(nil)

// ListClients implements gen.StrictServerInterface.
func (s *Server) ListClients(ctx context.Context, _ gen.ListClientsRequestObject) (gen.ListClientsResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.clients.List(ctx, p)
	if err != nil {
		return nil, err
	}
	out := gen.ServiceClientList{Data: make([]gen.ServiceClient, len(list))}
	for i, c := range list {
		out.Data[i] = toServiceClient(c)
	}
	return gen.ListClients200JSONResponse{Body: out, Headers: gen.ListClients200ResponseHeaders{CacheControl: &privateNoStore}}, nil
}

// CreateClient implements gen.StrictServerInterface.
func (s *Server) CreateClient(ctx context.Context, req gen.CreateClientRequestObject) (gen.CreateClientResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	in := clients.CreateInput{Name: b.Name, Scopes: toScopes(b.Scopes)}
	if b.SecretExpiresAt != nil {
		in.SecretExpiresAt = b.SecretExpiresAt.UTC()
	}
	created, err := s.clients.Create(ctx, p, in)
	if err != nil {
		return nil, err
	}
	loc := BasePath + "/clients/" + created.Client.ClientID
	return gen.CreateClient201JSONResponse{
		Body: gen.ServiceClientCreated{Client: toServiceClient(created.Client),
			SecretId: uuid.MustParse(created.Client.Secrets[0].ID), ClientSecret: created.Secret},
		Headers: gen.CreateClient201ResponseHeaders{CacheControl: &noStore, Location: &loc},
	}, nil
}

// GetClient implements gen.StrictServerInterface.
func (s *Server) GetClient(ctx context.Context, req gen.GetClientRequestObject) (gen.GetClientResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.clients.Get(ctx, p, req.ClientId)
	if err != nil {
		return nil, err
	}
	return gen.GetClient200JSONResponse{Body: toServiceClient(c), Headers: gen.GetClient200ResponseHeaders{CacheControl: &privateNoStore}}, nil
}

// UpdateClient implements gen.StrictServerInterface.
func (s *Server) UpdateClient(ctx context.Context, req gen.UpdateClientRequestObject) (gen.UpdateClientResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	var in clients.UpdateInput
	in.Name = b.Name
	if b.Scopes != nil {
		set := toScopes(*b.Scopes)
		in.Scopes = &set
	}
	if b.Status != nil {
		disabled := *b.Status == gen.ClientDisabled
		in.Disabled = &disabled
	}
	c, err := s.clients.Update(ctx, p, req.ClientId, in)
	if err != nil {
		return nil, err
	}
	return gen.UpdateClient200JSONResponse{Body: toServiceClient(c), Headers: gen.UpdateClient200ResponseHeaders{CacheControl: &noStore}}, nil
}

// AddClientSecret implements gen.StrictServerInterface.
func (s *Server) AddClientSecret(ctx context.Context, req gen.AddClientSecretRequestObject) (gen.AddClientSecretResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	var expires time.Time
	if req.Body != nil && req.Body.ExpiresAt != nil {
		expires = req.Body.ExpiresAt.UTC()
	}
	sec, plain, err := s.clients.AddSecret(ctx, p, req.ClientId, expires)
	if err != nil {
		return nil, err
	}
	return gen.AddClientSecret201JSONResponse{Body: gen.ClientSecretCreated{Secret: toClientSecret(sec), ClientSecret: plain},
		Headers: gen.AddClientSecret201ResponseHeaders{CacheControl: &noStore}}, nil
}

// RevokeClientSecret implements gen.StrictServerInterface.
func (s *Server) RevokeClientSecret(ctx context.Context, req gen.RevokeClientSecretRequestObject) (gen.RevokeClientSecretResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.clients.RevokeSecret(ctx, p, req.ClientId, req.SecretId.String()); err != nil {
		return nil, err
	}
	return gen.RevokeClientSecret204Response{Headers: gen.RevokeClientSecret204ResponseHeaders{CacheControl: &noStore}}, nil
}

func toScopes(list []gen.Scope) nexus.PermissionSet {
	perms := make([]nexus.Permission, len(list))
	for i, sc := range list {
		perms[i] = nexus.Permission(sc)
	}
	set, _ := nexus.PermissionSetOf(perms) // the schema's enum admits only permissions of the matrix
	return set
}

func toServiceClient(c clients.Client) gen.ServiceClient {
	out := gen.ServiceClient{ClientId: c.ClientID, Name: c.Name, OrganizationId: uuid.MustParse(c.OrganizationID),
		Scopes: []gen.Scope{}, Status: gen.ClientActive, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		Secrets: make([]gen.ClientSecret, len(c.Secrets))}
	for _, p := range c.Scopes.List() {
		out.Scopes = append(out.Scopes, gen.Scope(p))
	}
	if c.Disabled {
		out.Status = gen.ClientDisabled
	}
	for i, sec := range c.Secrets {
		out.Secrets[i] = toClientSecret(sec)
	}
	return out
}

func toClientSecret(sec clients.Secret) gen.ClientSecret {
	out := gen.ClientSecret{Id: uuid.MustParse(sec.ID), Hint: sec.Hint, CreatedAt: sec.CreatedAt}
	if !sec.ExpiresAt.IsZero() {
		t := sec.ExpiresAt
		out.ExpiresAt = &t
	}
	if !sec.LastUsedAt.IsZero() {
		t := sec.LastUsedAt
		out.LastUsedAt = &t
	}
	return out
}
