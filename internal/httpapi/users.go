package httpapi

import (
	"context"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// UsersService is what the HTTP layer needs from the users domain.
type UsersService interface {
	List(ctx context.Context, p nexus.Principal, q users.ListQuery) (users.Page, error)
	Get(ctx context.Context, p nexus.Principal, userID string, withPermissions, withActivity bool) (users.Details, error)
	Create(ctx context.Context, p nexus.Principal, n users.NewUser) (nexus.User, error)
	Update(ctx context.Context, p nexus.Principal, userID string, c users.Change) (nexus.User, error)
}

var _ UsersService = (*users.Service)(nil)

var privateNoStore = "private, no-store"

// principal returns the authenticated caller; the validator put it in the context of every secured operation.
func principal(ctx context.Context) (nexus.Principal, error) {
	p, ok := nexus.PrincipalFrom(ctx)
	if !ok {
		return nexus.Principal{}, nexus.ErrUnauthenticated
	}
	return p, nil
}

// ListUsers implements gen.StrictServerInterface.
func (s *Server) ListUsers(ctx context.Context, req gen.ListUsersRequestObject) (gen.ListUsersResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	q := users.ListQuery{}
	if v := req.Params.Limit; v != nil {
		q.Limit = *v
	}
	if v := req.Params.Offset; v != nil {
		q.Offset = *v
	}
	if v := req.Params.Status; v != nil {
		q.Status = nexus.UserStatus(*v)
	}
	if v := req.Params.Role; v != nil {
		q.Role = nexus.Role(*v)
	}
	page, err := s.users.List(ctx, p, q)
	if err != nil {
		return nil, err
	}
	body := gen.UserList{Data: make([]gen.User, len(page.Users)),
		Pagination: gen.Pagination{Limit: page.Limit, Offset: page.Offset, Total: page.Total, HasMore: page.HasMore}}
	for i, u := range page.Users {
		body.Data[i] = toGenUser(u)
	}
	return userListResponse{Body: body, Headers: gen.ListUsers200ResponseHeaders{CacheControl: &privateNoStore}}, nil
}

// GetUser implements gen.StrictServerInterface.
func (s *Server) GetUser(ctx context.Context, req gen.GetUserRequestObject) (gen.GetUserResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.users.Get(ctx, p, req.UserId.String(), isTrue(req.Params.IncludePermissions), isTrue(req.Params.IncludeActivity))
	if err != nil {
		return nil, err
	}
	body := toGenUser(d.User)
	if d.Permissions != nil {
		perms := make([]gen.Permission, len(d.Permissions))
		for i, perm := range d.Permissions {
			perms[i] = gen.Permission(perm)
		}
		body.Permissions = &perms
	}
	if a := d.Activity; a != nil {
		act := gen.UserActivity{LoginsLast30Days: a.Logins, FailedLoginsLast30Days: a.FailedLogins, ActiveSessions: a.ActiveSessions,
			Events: gen.UserEventActivity{Total: int(a.Events.Total), Last30Days: make([]gen.DayCount, len(a.Events.Days))}}
		if !a.Events.LastEventAt.IsZero() {
			t := a.Events.LastEventAt
			act.Events.LastEventAt = &t
		}
		for i, d := range a.Events.Days {
			act.Events.Last30Days[i] = gen.DayCount{Date: toDate(d.Day), Count: int(d.Count)}
		}
		if !a.LastLoginAt.IsZero() {
			t := a.LastLoginAt
			act.LastLoginAt = &t
		}
		if a.LastLoginIP != "" {
			ip := a.LastLoginIP
			act.LastLoginIp = &ip
		}
		body.Activity = &act
	}
	return gen.GetUser200JSONResponse{Body: body, Headers: gen.GetUser200ResponseHeaders{CacheControl: &privateNoStore}}, nil
}

// CreateUser implements gen.StrictServerInterface.
func (s *Server) CreateUser(ctx context.Context, req gen.CreateUserRequestObject) (gen.CreateUserResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	n := users.NewUser{Email: string(b.Email), Name: b.Name, Role: nexus.Role(b.Role), Password: b.Password}
	if b.Status != nil {
		n.Status = nexus.UserStatus(*b.Status)
	}
	u, err := s.users.Create(ctx, p, n)
	if err != nil {
		return nil, err
	}
	location := BasePath + "/users/" + u.ID
	return gen.CreateUser201JSONResponse{Body: toGenUser(u), Headers: gen.CreateUser201ResponseHeaders{Location: &location}}, nil
}

// UpdateUser implements gen.StrictServerInterface.
func (s *Server) UpdateUser(ctx context.Context, req gen.UpdateUserRequestObject) (gen.UpdateUserResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	b := req.Body
	var c users.Change
	if b.Name != nil {
		name := *b.Name
		c.Name = &name
	}
	if b.Role != nil {
		role := nexus.Role(*b.Role)
		c.Role = &role
	}
	if b.Status != nil {
		status := nexus.UserStatus(*b.Status)
		c.Status = &status
	}
	u, err := s.users.Update(ctx, p, req.UserId.String(), c)
	if err != nil {
		return nil, err
	}
	return gen.UpdateUser200JSONResponse{Body: toGenUser(u)}, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

func toGenUser(u nexus.User) gen.User {
	return gen.User{
		Id: uuid.MustParse(u.ID), OrganizationId: uuid.MustParse(u.OrganizationID), Email: openapi_types.Email(u.Email), Name: u.Name,
		Role: gen.Role(u.Role), Status: gen.UserStatus(u.Status), CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}
