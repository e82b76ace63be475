// Package users is the organization-scoped user directory: listing and lookup with filters and paging, the
// effective permissions and recent activity of a user, and user management (creation, role and status changes
// that revoke sessions, and the rule that an organization always keeps an active admin). Every method takes the
// authenticated Principal and works inside its organization only; which principal may call which method is
// decided before, by nexus.Authorize. The installation's own commands (cmd/nexus) call it as
// nexus.SystemPrincipal, and they alone create organizations. The rules of a change (the last active admin, which
// change revokes sessions and why) are decided here; the store only locks, counts and writes what was decided.
package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Store is the storage the users service needs. Every method is scoped to one organization: a user of another
// organization is reported exactly like a missing one, as nexus.ErrNotFound.
type Store interface {
	// ListUsers returns one page of the organization's users, ordered by creation time then id, and how many
	// match the filter in all.
	ListUsers(ctx context.Context, orgID string, q ListQuery) (page []nexus.User, total int, err error)
	// User returns a user of the organization.
	User(ctx context.Context, orgID, userID string) (nexus.User, error)
	// LoginActivity summarizes the logins of a user of the organization since the given time, counts their
	// live sessions at now, and reads their event counts (per day, for the days after the day of since). It does not look the user up: for an id outside the organization it finds nothing.
	LoginActivity(ctx context.Context, orgID, userID string, since, now time.Time, idleTTL time.Duration) (Activity, error)
	// CreateUser stores a new user with the given password hash and records who created it in the audit log,
	// in one transaction; an email in use anywhere is a conflict whose error matches ErrEmailTaken.
	CreateUser(ctx context.Context, u nexus.User, passwordHash string, by Actor) (nexus.User, error)
	// UpdateUser runs fn on a user of the organization inside one transaction that first locks the
	// organization, so that changes to one organization's users take turns: what fn is given (the user and the
	// organization's active admins) stays true until its write commits. When fn returns save=true and a nil
	// error, the store writes w.User's name, role, status and update time, appends a user_update entry by w.By
	// with w.Detail to the audit log, and, when w.Revoke is set, revokes every live session of the user with that
	// reason, all in the same transaction. An error from fn is returned as is and nothing is written; a user not
	// in the organization is nexus.ErrNotFound, fn not called. It returns the user as stored.
	UpdateUser(ctx context.Context, orgID, userID string, fn func(cur Locked) (w Write, save bool, err error)) (nexus.User, error)
	// CreateOrganization stores a new organization and records who created it in the audit log, in one
	// transaction.
	CreateOrganization(ctx context.Context, name string, by Actor) (Organization, error)
}

// ListQuery selects a page of users.
type ListQuery struct {
	Limit  int
	Offset int
	Status nexus.UserStatus // empty: any
	Role   nexus.Role       // empty: any
}

// Change lists the fields of a user to change; nil fields stay as they are. By is who asks: Update fills it in
// from the principal.
type Change struct {
	Name   *string
	Role   *nexus.Role
	Status *nexus.UserStatus
	By     Actor
}

// Locked is a user as a change's transaction holds it, with what the rules of a change need to know.
type Locked struct {
	User nexus.User
	// ActiveAdmins is how many active admins the user's organization has, the user included if they are one.
	ActiveAdmins int
}

// Write is what a change to a user stores.
type Write struct {
	User   nexus.User // the user as changed, UpdatedAt the time of the change
	By     Actor
	Detail string // what changed, for the audit log
	Revoke string // the reason every live session of the user is revoked with; empty: they are kept
}

// The reasons a change to a user revokes their sessions with.
const (
	RevokedRoleChanged = "role_changed"
	RevokedDeactivated = "user_deactivated"
)

// Organization is a tenant.
type Organization struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// MaxOrganizationName is the longest organization name, in bytes.
const MaxOrganizationName = 200

// Actor is who made a change, for the audit log.
type Actor struct {
	UserID    string
	SessionID string
	ClientID  string
}

func actorOf(p nexus.Principal) Actor {
	return Actor{UserID: p.UserID, SessionID: p.SessionID, ClientID: p.ClientID}
}

// Activity is a user's recent sign-in activity.
type Activity struct {
	LastLoginAt    time.Time // zero if never
	LastLoginIP    string    // as reported by the calling application; empty if none
	Logins         int       // successful logins in the window
	FailedLogins   int       // failed logins in the window
	ActiveSessions int
	Events         EventActivity
}

// EventActivity counts the events recorded about a user, as the analytics processor has counted them so far.
type EventActivity struct {
	Total       int64
	LastEventAt time.Time  // zero if none
	Days        []DayCount // the last 30 days (UTC), oldest first; days without events left out
}

// DayCount is a number of events on one UTC day ("2006-01-02").
type DayCount struct {
	Day   string
	Count int64
}

// Details is a user with the optional parts a caller asked for.
type Details struct {
	User        nexus.User
	Permissions []nexus.Permission // nil unless asked for
	Activity    *Activity          // nil unless asked for
}

// Page is one page of a listing.
type Page struct {
	Users   []nexus.User
	Limit   int
	Offset  int
	Total   int
	HasMore bool
}

// NewUser is a user to create.
type NewUser struct {
	Email    string
	Name     string
	Role     nexus.Role
	Status   nexus.UserStatus // empty: active
	Password string
}

// Paging limits.
const (
	DefaultLimit = 20
	MaxLimit     = 100
	MaxOffset    = 10_000
	// ActivityWindow is how far back activity counts reach.
	ActivityWindow = 30 * 24 * time.Hour
)

// Sentinel errors of user management.
var (
	ErrEmailTaken = &nexus.Error{Kind: nexus.KindConflict, Code: nexus.CodeConflict, Message: "The email address is already in use.",
		Fields: []nexus.FieldError{nexus.BodyField("/email", "is already in use")}}
	ErrLastAdmin = &nexus.Error{Kind: nexus.KindConflict, Code: nexus.CodeLastAdmin,
		Message: "This user is the organization's last active admin and cannot be demoted or deactivated."}
)

// Options configures a Service.
type Options struct {
	Store Store
	// CheckPassword returns a validation error for a password that may not be set (auth.CheckNewPassword).
	CheckPassword func(password string) error
	// HashPassword turns a password into the stored hash (auth.HashPassword).
	HashPassword func(password string) (string, error)
	// RefreshIdleTTL is how long an unused session stays live, to count active sessions.
	RefreshIdleTTL time.Duration
	Now            func() time.Time
}

// Service is the user directory of one installation.
type Service struct {
	store   Store
	check   func(string) error
	hash    func(string) (string, error)
	idleTTL time.Duration
	now     func() time.Time
}

// NewService returns a Service.
func NewService(o Options) (*Service, error) {
	if o.Store == nil || o.CheckPassword == nil || o.HashPassword == nil {
		return nil, errors.New("users: Store, CheckPassword and HashPassword are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{store: o.Store, check: o.CheckPassword, hash: o.HashPassword, idleTTL: o.RefreshIdleTTL, now: o.Now}, nil
}

// List returns a page of the principal's organization's users. A zero Limit means DefaultLimit.
// Errors: invalid (limit or offset out of range), unavailable, internal.
func (s *Service) List(ctx context.Context, p nexus.Principal, q ListQuery) (Page, error) {
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	var bad []nexus.FieldError
	if q.Limit < 1 || q.Limit > MaxLimit {
		bad = append(bad, nexus.FieldError{In: nexus.InQuery, Name: "limit", Detail: fmt.Sprintf("must be between 1 and %d", MaxLimit)})
	}
	if q.Offset < 0 || q.Offset > MaxOffset {
		bad = append(bad, nexus.FieldError{In: nexus.InQuery, Name: "offset", Detail: fmt.Sprintf("must be between 0 and %d", MaxOffset)})
	}
	if q.Status != "" && q.Status != nexus.UserActive && q.Status != nexus.UserInactive {
		bad = append(bad, nexus.FieldError{In: nexus.InQuery, Name: "status", Detail: "must be one of: active, inactive"})
	}
	if q.Role != "" && !q.Role.Valid() {
		bad = append(bad, nexus.FieldError{In: nexus.InQuery, Name: "role", Detail: "must be one of: admin, manager, analyst, member"})
	}
	if len(bad) > 0 {
		return Page{}, nexus.Invalid(bad...)
	}
	users, total, err := s.store.ListUsers(ctx, p.OrganizationID, q)
	if err != nil {
		return Page{}, fmt.Errorf("list users: %w", err)
	}
	return Page{Users: users, Limit: q.Limit, Offset: q.Offset, Total: total,
		HasMore: q.Offset+len(users) < total}, nil
}

// Get returns a user of the principal's organization, with the permissions and the activity if asked for.
// Errors: not_found (also for users of other organizations), unavailable, internal.
func (s *Service) Get(ctx context.Context, p nexus.Principal, userID string, withPermissions, withActivity bool) (Details, error) {
	u, err := s.store.User(ctx, p.OrganizationID, userID)
	if err != nil {
		return Details{}, fmt.Errorf("get user: %w", err)
	}
	d := Details{User: u}
	if withPermissions {
		d.Permissions = nexus.RolePermissions(u.Role)
		if d.Permissions == nil {
			d.Permissions = []nexus.Permission{}
		}
	}
	if withActivity {
		now := s.now().UTC()
		a, err := s.store.LoginActivity(ctx, p.OrganizationID, u.ID, now.Add(-ActivityWindow), now, s.idleTTL)
		if err != nil {
			return Details{}, fmt.Errorf("user activity: %w", err)
		}
		d.Activity = &a
	}
	return d, nil
}

// Create adds a user to the principal's organization.
// Errors: invalid, conflict (email in use anywhere), unavailable, internal.
func (s *Service) Create(ctx context.Context, p nexus.Principal, n NewUser) (nexus.User, error) {
	if n.Status == "" {
		n.Status = nexus.UserActive
	}
	var bad []nexus.FieldError
	if err := s.check(n.Password); err != nil {
		var perr *nexus.Error
		switch {
		case !errors.As(err, &perr) || perr.Kind != nexus.KindInvalid:
			return nexus.User{}, err
		case len(perr.Fields) == 0:
			bad = append(bad, nexus.BodyField("/password", "is not allowed"))
		default:
			bad = append(bad, perr.Fields...)
		}
	}
	if !ValidEmail(n.Email) {
		bad = append(bad, nexus.BodyField("/email", "must be a valid email address"))
	}
	if !n.Role.Valid() {
		bad = append(bad, nexus.BodyField("/role", "must be one of: admin, manager, analyst, member"))
	}
	if n.Status != nexus.UserActive && n.Status != nexus.UserInactive {
		bad = append(bad, nexus.BodyField("/status", "must be one of: active, inactive"))
	}
	if len(bad) > 0 {
		return nexus.User{}, nexus.Invalid(bad...)
	}
	hash, err := s.hash(n.Password)
	if err != nil {
		return nexus.User{}, nexus.Internal(fmt.Errorf("hash password: %w", err))
	}
	u, err := s.store.CreateUser(ctx, nexus.User{OrganizationID: p.OrganizationID, Email: n.Email, Name: n.Name,
		Role: n.Role, Status: n.Status}, hash, actorOf(p))
	if err != nil {
		return nexus.User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// Update changes a user of the principal's organization. Changing the role or deactivating revokes the user's
// sessions; demoting or deactivating the last active admin is refused.
// Errors: invalid (nothing to change), not_found, last_admin, unavailable, internal.
func (s *Service) Update(ctx context.Context, p nexus.Principal, userID string, c Change) (nexus.User, error) {
	if c.Name == nil && c.Role == nil && c.Status == nil {
		return nexus.User{}, nexus.Invalid(nexus.BodyField("", "must change at least one of name, role, status"))
	}
	var bad []nexus.FieldError
	if c.Role != nil && !c.Role.Valid() {
		bad = append(bad, nexus.BodyField("/role", "must be one of: admin, manager, analyst, member"))
	}
	if c.Status != nil && *c.Status != nexus.UserActive && *c.Status != nexus.UserInactive {
		bad = append(bad, nexus.BodyField("/status", "must be one of: active, inactive"))
	}
	if len(bad) > 0 {
		return nexus.User{}, nexus.Invalid(bad...)
	}
	c.By = actorOf(p)
	now := s.now().UTC()
	u, err := s.store.UpdateUser(ctx, p.OrganizationID, userID, func(cur Locked) (Write, bool, error) {
		return decide(cur, c, now)
	})
	if err != nil {
		return nexus.User{}, fmt.Errorf("update user: %w", err)
	}
	return u, nil
}

// decide applies the change to the locked user: nothing to store when nothing changes; ErrLastAdmin when the
// organization's last active admin would be demoted or deactivated; otherwise the changed user, what changed,
// and the reason to revoke their sessions with when they are deactivated or their role changes.
func decide(cur Locked, c Change, now time.Time) (Write, bool, error) {
	before, after := cur.User, cur.User
	if c.Name != nil {
		after.Name = *c.Name
	}
	if c.Role != nil {
		after.Role = *c.Role
	}
	if c.Status != nil {
		after.Status = *c.Status
	}
	if after == before {
		return Write{}, false, nil
	}
	if activeAdmin(before) && !activeAdmin(after) && cur.ActiveAdmins <= 1 {
		return Write{}, false, ErrLastAdmin
	}
	after.UpdatedAt = now
	w := Write{User: after, By: c.By, Detail: describeChange(before, after)}
	switch {
	case after.Status == nexus.UserInactive && before.Status != nexus.UserInactive:
		w.Revoke = RevokedDeactivated
	case after.Role != before.Role:
		w.Revoke = RevokedRoleChanged
	}
	return w, true, nil
}

func activeAdmin(u nexus.User) bool { return u.Role == nexus.RoleAdmin && u.Status == nexus.UserActive }

// describeChange says which fields changed, for the audit log: role and status with their old and new values,
// the name only as changed.
func describeChange(before, after nexus.User) string {
	var parts []string
	if before.Role != after.Role {
		parts = append(parts, "role="+string(before.Role)+">"+string(after.Role))
	}
	if before.Status != after.Status {
		parts = append(parts, "status="+string(before.Status)+">"+string(after.Status))
	}
	if before.Name != after.Name {
		parts = append(parts, "name")
	}
	return strings.Join(parts, " ")
}

// CreateOrganization adds an organization; only the installation's own commands do, as nexus.SystemPrincipal.
// The name is trimmed.
// Errors: invalid (empty or longer than MaxOrganizationName), unavailable, internal.
func (s *Service) CreateOrganization(ctx context.Context, p nexus.Principal, name string) (Organization, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxOrganizationName {
		return Organization{}, nexus.Invalid(nexus.BodyField("/name", fmt.Sprintf("must be 1 to %d bytes", MaxOrganizationName)))
	}
	o, err := s.store.CreateOrganization(ctx, name, actorOf(p))
	if err != nil {
		return Organization{}, fmt.Errorf("create organization: %w", err)
	}
	return o, nil
}
