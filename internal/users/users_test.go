package users_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// testNow is the fixed clock of every test.
var testNow = time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC)

const (
	orgA    = "org-a"
	orgB    = "org-b"
	orgC    = "org-c"
	idleTTL = 14 * 24 * time.Hour
)

// loginActivityCall records the arguments of one Store.LoginActivity call.
type loginActivityCall struct {
	OrgID, UserID string
	Since, Now    time.Time
	IdleTTL       time.Duration
}

// listCall records the arguments of one Store.ListUsers call.
type listCall struct {
	OrgID string
	Query users.ListQuery
}

// createCall records the arguments of one Store.CreateUser call.
type createCall struct {
	User nexus.User
	Hash string
}

// updateCall records one Store.UpdateUser call: what the callback was given and what it returned (Locked and
// Write empty, Save false, when the user was not found).
type updateCall struct {
	OrgID, UserID string
	Locked        users.Locked
	Write         users.Write
	Save          bool
	Err           error
}

// orgCall records the arguments of one Store.CreateOrganization call.
type orgCall struct {
	Name string
	By   users.Actor
}

// fakeStore is an in-memory users.Store that records every call. Like the real stores it hides users of other
// organizations as nexus.ErrNotFound, treats email addresses as unique across the installation, and refuses a
// change that would leave an organization without an active admin.
type fakeStore struct {
	users      []nexus.User              // in creation order
	activities map[string]users.Activity // by user id
	nextID     int

	// err, if set for a method name, is returned by that method instead of doing anything.
	err map[string]error

	lists    []listCall
	gets     []string // "org/user"
	activity []loginActivityCall
	creates  []createCall
	updates  []updateCall
	orgs     []orgCall
	revoked  map[string]string // the reason each user's sessions were revoked with, by user id
}

var _ users.Store = (*fakeStore)(nil)

func newFakeStore(seed ...nexus.User) *fakeStore {
	f := &fakeStore{activities: map[string]users.Activity{}, err: map[string]error{}, revoked: map[string]string{}}
	for i, u := range seed {
		if u.CreatedAt.IsZero() {
			u.CreatedAt = testNow.Add(-time.Duration(len(seed)-i) * time.Hour)
			u.UpdatedAt = u.CreatedAt
		}
		f.users = append(f.users, u)
	}
	return f
}

func (f *fakeStore) ListUsers(_ context.Context, orgID string, q users.ListQuery) ([]nexus.User, int, error) {
	f.lists = append(f.lists, listCall{orgID, q})
	if err := f.err["ListUsers"]; err != nil {
		return nil, 0, err
	}
	var match []nexus.User
	for _, u := range f.users {
		if u.OrganizationID == orgID && (q.Status == "" || u.Status == q.Status) && (q.Role == "" || u.Role == q.Role) {
			match = append(match, u)
		}
	}
	sort.SliceStable(match, func(i, j int) bool {
		if !match[i].CreatedAt.Equal(match[j].CreatedAt) {
			return match[i].CreatedAt.Before(match[j].CreatedAt)
		}
		return match[i].ID < match[j].ID
	})
	total := len(match)
	lo, hi := min(q.Offset, total), min(q.Offset+q.Limit, total)
	return match[lo:hi], total, nil
}

func (f *fakeStore) find(orgID, userID string) (int, bool) {
	for i, u := range f.users {
		if u.OrganizationID == orgID && u.ID == userID {
			return i, true
		}
	}
	return 0, false
}

func (f *fakeStore) User(_ context.Context, orgID, userID string) (nexus.User, error) {
	f.gets = append(f.gets, orgID+"/"+userID)
	if err := f.err["User"]; err != nil {
		return nexus.User{}, err
	}
	i, ok := f.find(orgID, userID)
	if !ok {
		return nexus.User{}, nexus.ErrNotFound
	}
	return f.users[i], nil
}

func (f *fakeStore) LoginActivity(_ context.Context, orgID, userID string, since, now time.Time, ttl time.Duration) (users.Activity, error) {
	f.activity = append(f.activity, loginActivityCall{orgID, userID, since, now, ttl})
	if err := f.err["LoginActivity"]; err != nil {
		return users.Activity{}, err
	}
	if _, ok := f.find(orgID, userID); !ok {
		return users.Activity{}, nexus.ErrNotFound
	}
	return f.activities[userID], nil
}

func (f *fakeStore) CreateUser(_ context.Context, u nexus.User, hash string, _ users.Actor) (nexus.User, error) {
	f.creates = append(f.creates, createCall{u, hash})
	if err := f.err["CreateUser"]; err != nil {
		return nexus.User{}, err
	}
	for _, o := range f.users {
		if nexus.NormalizeEmail(o.Email) == nexus.NormalizeEmail(u.Email) {
			return nexus.User{}, users.ErrEmailTaken
		}
	}
	f.nextID++
	u.ID = "new-" + string(rune('0'+f.nextID))
	u.CreatedAt, u.UpdatedAt = testNow, testNow
	f.users = append(f.users, u)
	return u, nil
}

func (f *fakeStore) UpdateUser(_ context.Context, orgID, userID string, fn func(users.Locked) (users.Write, bool, error)) (nexus.User, error) {
	if err := f.err["UpdateUser"]; err != nil {
		f.updates = append(f.updates, updateCall{OrgID: orgID, UserID: userID})
		return nexus.User{}, err
	}
	i, ok := f.find(orgID, userID)
	if !ok {
		f.updates = append(f.updates, updateCall{OrgID: orgID, UserID: userID})
		return nexus.User{}, nexus.ErrNotFound
	}
	cur := users.Locked{User: f.users[i]}
	for _, o := range f.users {
		if o.OrganizationID == orgID && o.Role == nexus.RoleAdmin && o.Status == nexus.UserActive {
			cur.ActiveAdmins++
		}
	}
	w, save, err := fn(cur)
	f.updates = append(f.updates, updateCall{orgID, userID, cur, w, save, err})
	if err != nil {
		return nexus.User{}, err
	}
	if !save {
		return cur.User, nil
	}
	u := cur.User
	u.Name, u.Role, u.Status, u.UpdatedAt = w.User.Name, w.User.Role, w.User.Status, w.User.UpdatedAt
	f.users[i] = u
	if w.Revoke != "" {
		f.revoked[userID] = w.Revoke
	}
	return u, nil
}

func (f *fakeStore) CreateOrganization(_ context.Context, name string, by users.Actor) (users.Organization, error) {
	f.orgs = append(f.orgs, orgCall{name, by})
	if err := f.err["CreateOrganization"]; err != nil {
		return users.Organization{}, err
	}
	f.nextID++
	return users.Organization{ID: "org-new-" + string(rune('0'+f.nextID)), Name: name, CreatedAt: testNow}, nil
}

// fakeHash is the injected HashPassword: deterministic, and never contains the password.
func fakeHash(password string) (string, error) {
	sum := sha256.Sum256([]byte(password))
	return "fakehash$" + hex.EncodeToString(sum[:]), nil
}

func mustHash(t *testing.T, password string) string {
	t.Helper()
	h, err := fakeHash(password)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// seedUsers is the directory of most tests: five users in org A, two in org B, one in org C.
func seedUsers() []nexus.User {
	return []nexus.User{
		{ID: "a1", OrganizationID: orgA, Email: "ada@a.example", Name: "Ada", Role: nexus.RoleAdmin, Status: nexus.UserActive},
		{ID: "a2", OrganizationID: orgA, Email: "max@a.example", Name: "Max", Role: nexus.RoleManager, Status: nexus.UserActive},
		{ID: "a3", OrganizationID: orgA, Email: "ana@a.example", Name: "Ana", Role: nexus.RoleAnalyst, Status: nexus.UserActive},
		{ID: "a4", OrganizationID: orgA, Email: "mo@a.example", Name: "Mo", Role: nexus.RoleMember, Status: nexus.UserInactive},
		{ID: "a5", OrganizationID: orgA, Email: "mia@a.example", Name: "Mia", Role: nexus.RoleMember, Status: nexus.UserActive},
		{ID: "b1", OrganizationID: orgB, Email: "bob@b.example", Name: "Bob", Role: nexus.RoleAdmin, Status: nexus.UserActive},
		{ID: "b2", OrganizationID: orgB, Email: "bea@b.example", Name: "Bea", Role: nexus.RoleMember, Status: nexus.UserActive},
		// A row whose role no release knows (written by a newer version, say): it grants nothing.
		{ID: "c1", OrganizationID: orgC, Email: "cy@c.example", Name: "Cy", Role: "auditor", Status: nexus.UserActive},
	}
}

// hashCalls counts the passwords given to HashPassword.
type hashCalls struct{ passwords []string }

func (h *hashCalls) hash(password string) (string, error) {
	h.passwords = append(h.passwords, password)
	return fakeHash(password)
}

// acceptAll is a CheckPassword that accepts every password.
func acceptAll(string) error { return nil }

// newTestService returns a Service over st with the fixed clock; nil check and hash mean acceptAll and fakeHash.
func newTestService(t *testing.T, st *fakeStore, check func(string) error, hash func(string) (string, error)) *users.Service {
	t.Helper()
	if check == nil {
		check = acceptAll
	}
	if hash == nil {
		hash = fakeHash
	}
	s, err := users.NewService(users.Options{Store: st, CheckPassword: check, HashPassword: hash,
		RefreshIdleTTL: idleTTL, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	return s
}

func principal(org, userID string, role nexus.Role) nexus.Principal {
	return nexus.Principal{UserID: userID, OrganizationID: org, Role: role, SessionID: "s-1", ClientID: "web", TokenID: "t-1"}
}

// fieldNames returns "in:name" for every field of a validation error, or fails the test if err is not one.
func fieldNames(t *testing.T, err error) []string {
	t.Helper()
	var e *nexus.Error
	if !errors.As(err, &e) || e.Kind != nexus.KindInvalid || e.Code != "validation_failed" {
		t.Fatalf("err = %v, want validation_failed", err)
	}
	var out []string
	for _, f := range e.Fields {
		if f.Detail == "" {
			t.Errorf("field %s:%s has no detail", f.In, f.Name)
		}
		out = append(out, f.In+":"+f.Name)
	}
	return out
}

func ids(us []nexus.User) []string {
	out := []string{}
	for _, u := range us {
		out = append(out, u.ID)
	}
	return out
}

func TestNewService(t *testing.T) {
	tests := []struct {
		name    string
		opts    users.Options
		wantErr bool
	}{
		{"store, check and hash", users.Options{Store: newFakeStore(), CheckPassword: acceptAll, HashPassword: fakeHash}, false},
		{"no clock defaults", users.Options{Store: newFakeStore(), CheckPassword: acceptAll, HashPassword: fakeHash, Now: nil}, false},
		{"no store", users.Options{CheckPassword: acceptAll, HashPassword: fakeHash}, true},
		{"no check", users.Options{Store: newFakeStore(), HashPassword: fakeHash}, true},
		{"no hash", users.Options{Store: newFakeStore(), CheckPassword: acceptAll}, true},
		{"nothing", users.Options{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := users.NewService(tt.opts)
			if tt.wantErr {
				if err == nil || s != nil {
					t.Errorf("NewService = %v, %v; want nil and an error", s, err)
				}
				return
			}
			if err != nil || s == nil {
				t.Errorf("NewService = %v, %v; want a service", s, err)
			}
		})
	}
}

func TestListValidation(t *testing.T) {
	tests := []struct {
		name       string
		q          users.ListQuery
		wantFields []string // nil: valid
		wantQuery  users.ListQuery
	}{
		{name: "zero limit defaults to 20", q: users.ListQuery{},
			wantQuery: users.ListQuery{Limit: 20}},
		{name: "limit 1", q: users.ListQuery{Limit: 1}, wantQuery: users.ListQuery{Limit: 1}},
		{name: "limit 100", q: users.ListQuery{Limit: 100}, wantQuery: users.ListQuery{Limit: 100}},
		{name: "offset 10000", q: users.ListQuery{Limit: 5, Offset: 10_000}, wantQuery: users.ListQuery{Limit: 5, Offset: 10_000}},
		{name: "filters pass through",
			q:         users.ListQuery{Status: nexus.UserInactive, Role: nexus.RoleAnalyst},
			wantQuery: users.ListQuery{Limit: 20, Status: nexus.UserInactive, Role: nexus.RoleAnalyst}},
		{name: "every role is a filter", q: users.ListQuery{Role: nexus.RoleMember, Status: nexus.UserActive},
			wantQuery: users.ListQuery{Limit: 20, Role: nexus.RoleMember, Status: nexus.UserActive}},

		{name: "limit 101", q: users.ListQuery{Limit: 101}, wantFields: []string{"query:limit"}},
		{name: "negative limit", q: users.ListQuery{Limit: -1}, wantFields: []string{"query:limit"}},
		{name: "negative offset", q: users.ListQuery{Offset: -1}, wantFields: []string{"query:offset"}},
		{name: "offset 10001", q: users.ListQuery{Offset: 10_001}, wantFields: []string{"query:offset"}},
		{name: "unknown status", q: users.ListQuery{Status: "deleted"}, wantFields: []string{"query:status"}},
		{name: "status in upper case", q: users.ListQuery{Status: "ACTIVE"}, wantFields: []string{"query:status"}},
		{name: "unknown role", q: users.ListQuery{Role: "owner"}, wantFields: []string{"query:role"}},
		{name: "role in upper case", q: users.ListQuery{Role: "Admin"}, wantFields: []string{"query:role"}},
		{name: "every parameter at once",
			q:          users.ListQuery{Limit: 1000, Offset: -5, Status: "gone", Role: "root"},
			wantFields: []string{"query:limit", "query:offset", "query:status", "query:role"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore(seedUsers()...)
			s := newTestService(t, st, nil, nil)
			page, err := s.List(context.Background(), principal(orgA, "a1", nexus.RoleAdmin), tt.q)
			if tt.wantFields != nil {
				if diff := cmp.Diff(tt.wantFields, fieldNames(t, err)); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
				if !errors.Is(err, nexus.Invalid()) {
					t.Errorf("errors.Is(err, validation_failed) = false for %v", err)
				}
				if len(st.lists) != 0 {
					t.Errorf("store called %d times on invalid input", len(st.lists))
				}
				return
			}
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if diff := cmp.Diff([]listCall{{orgA, tt.wantQuery}}, st.lists); diff != "" {
				t.Errorf("store calls (-want +got):\n%s", diff)
			}
			if page.Limit != tt.wantQuery.Limit || page.Offset != tt.wantQuery.Offset {
				t.Errorf("page limit, offset = %d, %d; want %d, %d", page.Limit, page.Offset, tt.wantQuery.Limit, tt.wantQuery.Offset)
			}
		})
	}
}

func TestListPaging(t *testing.T) {
	tests := []struct {
		name        string
		org         string
		q           users.ListQuery
		wantIDs     []string
		wantTotal   int
		wantHasMore bool
	}{
		{"first page", orgA, users.ListQuery{Limit: 2}, []string{"a1", "a2"}, 5, true},
		{"middle page", orgA, users.ListQuery{Limit: 2, Offset: 2}, []string{"a3", "a4"}, 5, true},
		{"last partial page", orgA, users.ListQuery{Limit: 2, Offset: 4}, []string{"a5"}, 5, false},
		{"page ending exactly at the end", orgA, users.ListQuery{Limit: 2, Offset: 3}, []string{"a4", "a5"}, 5, false},
		{"limit equals total", orgA, users.ListQuery{Limit: 5}, []string{"a1", "a2", "a3", "a4", "a5"}, 5, false},
		{"one short of total", orgA, users.ListQuery{Limit: 4}, []string{"a1", "a2", "a3", "a4"}, 5, true},
		{"default limit covers all", orgA, users.ListQuery{}, []string{"a1", "a2", "a3", "a4", "a5"}, 5, false},
		{"offset past the end", orgA, users.ListQuery{Limit: 2, Offset: 10}, []string{}, 5, false},
		{"offset at the end", orgA, users.ListQuery{Limit: 2, Offset: 5}, []string{}, 5, false},
		{"filtered by role", orgA, users.ListQuery{Limit: 1, Role: nexus.RoleMember}, []string{"a4"}, 2, true},
		{"filtered by status", orgA, users.ListQuery{Status: nexus.UserInactive}, []string{"a4"}, 1, false},
		{"other organization sees only its own", orgB, users.ListQuery{}, []string{"b1", "b2"}, 2, false},
		{"organization without users", "org-empty", users.ListQuery{}, []string{}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore(seedUsers()...)
			s := newTestService(t, st, nil, nil)
			page, err := s.List(context.Background(), principal(tt.org, "x", nexus.RoleManager), tt.q)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if diff := cmp.Diff(tt.wantIDs, ids(page.Users)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if page.Total != tt.wantTotal || page.HasMore != tt.wantHasMore {
				t.Errorf("total, has_more = %d, %v; want %d, %v", page.Total, page.HasMore, tt.wantTotal, tt.wantHasMore)
			}
			if len(st.lists) != 1 || st.lists[0].OrgID != tt.org {
				t.Errorf("store calls = %+v, want one for %s", st.lists, tt.org)
			}
		})
	}
}

func TestListStoreError(t *testing.T) {
	st := newFakeStore(seedUsers()...)
	st.err["ListUsers"] = nexus.Unavailable(errors.New("connection refused"))
	s := newTestService(t, st, nil, nil)
	_, err := s.List(context.Background(), principal(orgA, "a1", nexus.RoleAdmin), users.ListQuery{})
	if !errors.Is(err, nexus.ErrUnavailable) || nexus.KindOf(err) != nexus.KindUnavailable {
		t.Errorf("List = %v, want unavailable", err)
	}
}

func TestGet(t *testing.T) {
	since := testNow.Add(-30 * 24 * time.Hour)
	actA3 := users.Activity{LastLoginAt: testNow.Add(-time.Hour), LastLoginIP: "203.0.113.7", Logins: 17,
		FailedLogins: 2, ActiveSessions: 3}
	analystPerms := []nexus.Permission{"users:read:own", "users:read_permissions:own", "users:read_activity:own",
		"events:write", "events:write_any_user", "analytics:read"}
	memberPerms := []nexus.Permission{"users:read:own", "users:read_permissions:own", "users:read_activity:own",
		"events:write"}

	tests := []struct {
		name             string
		p                nexus.Principal
		userID           string
		perms, activity  bool
		wantUser         string // id; "" when an error is expected
		wantPerms        []nexus.Permission
		wantActivity     *users.Activity
		wantActivityCall []loginActivityCall
		wantErr          error
	}{
		{name: "no includes", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a3",
			wantUser: "a3"},
		{name: "permissions are the target's, not the caller's", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a3",
			perms: true, wantUser: "a3", wantPerms: analystPerms},
		{name: "own record with permissions", p: principal(orgA, "a5", nexus.RoleMember), userID: "a5",
			perms: true, wantUser: "a5", wantPerms: memberPerms},
		{name: "permissions of a role that grants nothing are empty, not nil", p: principal(orgC, "c1", "auditor"), userID: "c1",
			perms: true, wantUser: "c1", wantPerms: []nexus.Permission{}},
		{name: "activity", p: principal(orgA, "a2", nexus.RoleManager), userID: "a3",
			activity: true, wantUser: "a3", wantActivity: &actA3,
			wantActivityCall: []loginActivityCall{{orgA, "a3", since, testNow, idleTTL}}},
		{name: "activity of a user who never logged in", p: principal(orgA, "a2", nexus.RoleManager), userID: "a4",
			activity: true, wantUser: "a4", wantActivity: &users.Activity{},
			wantActivityCall: []loginActivityCall{{orgA, "a4", since, testNow, idleTTL}}},
		{name: "both includes", p: principal(orgA, "a3", nexus.RoleAnalyst), userID: "a3",
			perms: true, activity: true, wantUser: "a3", wantPerms: analystPerms, wantActivity: &actA3,
			wantActivityCall: []loginActivityCall{{orgA, "a3", since, testNow, idleTTL}}},
		{name: "user of another organization is not found", p: principal(orgB, "b1", nexus.RoleAdmin), userID: "a3",
			perms: true, activity: true, wantErr: nexus.ErrNotFound},
		{name: "missing user", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "nobody",
			activity: true, wantErr: nexus.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore(seedUsers()...)
			st.activities["a3"] = actA3
			s := newTestService(t, st, nil, nil)
			d, err := s.Get(context.Background(), tt.p, tt.userID, tt.perms, tt.activity)
			if diff := cmp.Diff([]string{tt.p.OrganizationID + "/" + tt.userID}, st.gets); diff != "" {
				t.Errorf("store User calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantActivityCall, st.activity); diff != "" {
				t.Errorf("LoginActivity calls (-want +got):\n%s", diff)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Get = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if d.User.ID != tt.wantUser || d.User.OrganizationID != tt.p.OrganizationID {
				t.Errorf("user = %s of %s, want %s of %s", d.User.ID, d.User.OrganizationID, tt.wantUser, tt.p.OrganizationID)
			}
			if tt.perms {
				if d.Permissions == nil {
					t.Error("permissions are nil although asked for")
				}
			} else if d.Permissions != nil {
				t.Errorf("permissions = %q although not asked for, want nil", d.Permissions)
			}
			if diff := cmp.Diff(tt.wantPerms, d.Permissions, cmpEmptyAsNil()); diff != "" {
				t.Errorf("permissions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantActivity, d.Activity); diff != "" {
				t.Errorf("activity (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpEmptyAsNil lets the want side write nil for "none" without losing the nil/non-nil check done elsewhere.
func cmpEmptyAsNil() cmp.Option {
	return cmp.FilterValues(func(x, y []nexus.Permission) bool { return len(x) == 0 && len(y) == 0 },
		cmp.Comparer(func(_, _ []nexus.Permission) bool { return true }))
}

// TestGetActivityWindow checks that the window is computed from the injected clock, whatever its location.
func TestGetActivityWindow(t *testing.T) {
	zone := time.FixedZone("UTC+5", 5*60*60)
	clock := time.Date(2027, 3, 1, 2, 0, 0, 0, zone) // 2027-02-28T21:00Z; the window crosses February
	st := newFakeStore(seedUsers()...)
	s, err := users.NewService(users.Options{Store: st, CheckPassword: acceptAll, HashPassword: fakeHash, RefreshIdleTTL: time.Hour,
		Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(context.Background(), principal(orgB, "b1", nexus.RoleAdmin), "b2", false, true); err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := []loginActivityCall{{orgB, "b2", time.Date(2027, 1, 29, 21, 0, 0, 0, time.UTC), clock, time.Hour}}
	if diff := cmp.Diff(want, st.activity); diff != "" {
		t.Errorf("LoginActivity calls (-want +got):\n%s", diff)
	}
}

func TestGetStoreErrors(t *testing.T) {
	unavailable := nexus.Unavailable(errors.New("db down"))
	tests := []struct {
		name     string
		method   string
		activity bool
	}{
		{"user lookup", "User", false},
		{"activity", "LoginActivity", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore(seedUsers()...)
			st.err[tt.method] = unavailable
			s := newTestService(t, st, nil, nil)
			d, err := s.Get(context.Background(), principal(orgA, "a1", nexus.RoleAdmin), "a2", true, tt.activity)
			if !errors.Is(err, nexus.ErrUnavailable) || nexus.KindOf(err) != nexus.KindUnavailable {
				t.Errorf("Get = %v, want unavailable", err)
			}
			if !cmp.Equal(d, users.Details{}) {
				t.Errorf("Get returned %+v with an error, want zero Details", d)
			}
		})
	}
}

// passwordChecker is the injected CheckPassword: it records every password it is given and answers err.
type passwordChecker struct {
	calls []string
	err   error
}

func (c *passwordChecker) check(password string) error {
	c.calls = append(c.calls, password)
	return c.err
}

// tooShort is what a password policy answers for a password it refuses.
var tooShort = nexus.Invalid(nexus.BodyField("/password", "must be at least 12 characters"))

func TestCreate(t *testing.T) {
	const password = "a long initial passphrase"
	with := func(f func(n *users.NewUser)) users.NewUser {
		n := users.NewUser{Email: "grace@a.example", Name: "Grace Hopper", Role: nexus.RoleAnalyst, Password: password}
		f(&n)
		return n
	}
	admin := principal(orgA, "a1", nexus.RoleAdmin)

	tests := []struct {
		name       string
		p          nexus.Principal
		n          users.NewUser
		checkErr   error            // what CheckPassword answers
		wantStatus nexus.UserStatus // on success
		wantFields []string         // validation failure
		wantErr    error            // other failure before the store
		wantConfl  error            // conflict from the store
	}{
		{name: "status defaults to active", p: admin, n: with(func(n *users.NewUser) {}), wantStatus: nexus.UserActive},
		{name: "explicit inactive", p: admin,
			n: with(func(n *users.NewUser) { n.Status = nexus.UserInactive }), wantStatus: nexus.UserInactive},
		{name: "explicit active admin", p: admin,
			n: with(func(n *users.NewUser) { n.Status = nexus.UserActive; n.Role = nexus.RoleAdmin }), wantStatus: nexus.UserActive},
		{name: "created in the caller's organization B", p: principal(orgB, "b1", nexus.RoleAdmin),
			n: with(func(n *users.NewUser) { n.Role = nexus.RoleMember }), wantStatus: nexus.UserActive},

		// The password policy is CheckPassword's alone: the service adds no length rule of its own and hands
		// the password on byte for byte.
		{name: "short password the policy accepts", p: admin,
			n: with(func(n *users.NewUser) { n.Password = "abcdefg" }), wantStatus: nexus.UserActive},
		{name: "1,025-byte multi-byte password the policy accepts", p: admin,
			n: with(func(n *users.NewUser) { n.Password = strings.Repeat("é", 512) + "a" }), wantStatus: nexus.UserActive},
		{name: "spaces are not trimmed", p: admin,
			n: with(func(n *users.NewUser) { n.Password = "  🔑 pass phrase 🔑  " }), wantStatus: nexus.UserActive},

		{name: "password refused by the policy", p: admin, n: with(func(n *users.NewUser) {}),
			checkErr: tooShort, wantFields: []string{"body:/password"}},
		{name: "wrapped refusal", p: admin, n: with(func(n *users.NewUser) {}),
			checkErr: fmt.Errorf("policy: %w", tooShort), wantFields: []string{"body:/password"}},
		// Any refusal must stop the creation, even one that names no field.
		{name: "refusal without fields still refuses", p: admin, n: with(func(n *users.NewUser) {}),
			checkErr: nexus.Invalid(), wantErr: nexus.Invalid()},
		{name: "policy failure that is not a refusal", p: admin, n: with(func(n *users.NewUser) {}),
			checkErr: nexus.Unavailable(errors.New("breach list down")), wantErr: nexus.ErrUnavailable},

		{name: "not an email address", p: admin,
			n: with(func(n *users.NewUser) { n.Email = "grace" }), wantFields: []string{"body:/email"}},
		{name: "email without a dot in the domain", p: admin,
			n: with(func(n *users.NewUser) { n.Email = "grace@localhost" }), wantFields: []string{"body:/email"}},
		{name: "unknown role", p: admin,
			n: with(func(n *users.NewUser) { n.Role = "owner" }), wantFields: []string{"body:/role"}},
		{name: "empty role", p: admin,
			n: with(func(n *users.NewUser) { n.Role = "" }), wantFields: []string{"body:/role"}},
		{name: "role in another case", p: admin,
			n: with(func(n *users.NewUser) { n.Role = "Admin" }), wantFields: []string{"body:/role"}},
		{name: "unknown status", p: admin,
			n: with(func(n *users.NewUser) { n.Status = "suspended" }), wantFields: []string{"body:/status"}},
		{name: "every field at once", p: admin,
			n:          users.NewUser{Email: "x@", Name: "X", Role: "Admin", Status: "ACTIVE", Password: "short"},
			checkErr:   tooShort,
			wantFields: []string{"body:/password", "body:/email", "body:/role", "body:/status"}},

		{name: "email in use in the same organization", p: admin,
			n: with(func(n *users.NewUser) { n.Email = "ada@a.example" }), wantConfl: users.ErrEmailTaken},
		{name: "email in use in another organization, other case", p: admin,
			n: with(func(n *users.NewUser) { n.Email = "BOB@b.example" }), wantConfl: users.ErrEmailTaken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore(seedUsers()...)
			c := &passwordChecker{err: tt.checkErr}
			h := &hashCalls{}
			s := newTestService(t, st, c.check, h.hash)
			u, err := s.Create(context.Background(), tt.p, tt.n)

			if diff := cmp.Diff([]string{tt.n.Password}, c.calls); diff != "" {
				t.Errorf("CheckPassword calls (-want +got):\n%s", diff)
			}
			if tt.wantFields != nil || tt.wantErr != nil {
				if tt.wantFields != nil {
					if diff := cmp.Diff(tt.wantFields, fieldNames(t, err)); diff != "" {
						t.Errorf("fields (-want +got):\n%s", diff)
					}
				} else if !errors.Is(err, tt.wantErr) || nexus.KindOf(err) != nexus.KindOf(tt.wantErr) {
					t.Errorf("Create = %v, want %v", err, tt.wantErr)
				}
				if len(st.creates) != 0 || len(h.passwords) != 0 {
					t.Errorf("store called %d times, hash %d times after a refusal", len(st.creates), len(h.passwords))
				}
				return
			}

			// Every accepted request reaches the store exactly once, hashed, in the caller's organization.
			if len(st.creates) != 1 {
				t.Fatalf("store CreateUser called %d times, want 1 (err %v)", len(st.creates), err)
			}
			got := st.creates[0]
			if diff := cmp.Diff([]string{tt.n.Password}, h.passwords); diff != "" {
				t.Errorf("HashPassword calls (-want +got):\n%s", diff)
			}
			if want := mustHash(t, tt.n.Password); got.Hash != want {
				t.Errorf("store got hash %q, want HashPassword's %q", got.Hash, want)
			}
			for _, field := range []string{got.Hash, got.User.ID, got.User.OrganizationID, got.User.Email, got.User.Name,
				string(got.User.Role), string(got.User.Status)} {
				if strings.Contains(field, tt.n.Password) {
					t.Errorf("the plain password reached the store in %q", field)
				}
			}
			wantStatus := tt.wantStatus
			if tt.wantConfl != nil {
				wantStatus = nexus.UserActive
			}
			wantStored := nexus.User{OrganizationID: tt.p.OrganizationID, Email: tt.n.Email, Name: tt.n.Name,
				Role: tt.n.Role, Status: wantStatus}
			if diff := cmp.Diff(wantStored, got.User); diff != "" {
				t.Errorf("user given to the store (-want +got):\n%s", diff)
			}

			if tt.wantConfl != nil {
				if !errors.Is(err, tt.wantConfl) || nexus.KindOf(err) != nexus.KindConflict {
					t.Errorf("Create = %v, want %v (conflict)", err, tt.wantConfl)
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			want := wantStored
			want.ID, want.CreatedAt, want.UpdatedAt = u.ID, testNow, testNow
			if diff := cmp.Diff(want, u); diff != "" || u.ID == "" {
				t.Errorf("created user (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateHashFailure(t *testing.T) {
	st := newFakeStore(seedUsers()...)
	cause := errors.New("argon2: out of memory")
	s := newTestService(t, st, nil, func(string) (string, error) { return "", cause })
	n := users.NewUser{Email: "grace@a.example", Name: "Grace", Role: nexus.RoleMember, Password: "a long passphrase"}
	_, err := s.Create(context.Background(), principal(orgA, "a1", nexus.RoleAdmin), n)
	if nexus.KindOf(err) != nexus.KindInternal || !errors.Is(err, cause) {
		t.Errorf("Create = %v, want internal wrapping the cause", err)
	}
	if strings.Contains(err.Error(), n.Password) {
		t.Errorf("error %q contains the password", err)
	}
	if len(st.creates) != 0 {
		t.Errorf("store called %d times after a hash failure", len(st.creates))
	}
}

func TestCreateStoreError(t *testing.T) {
	st := newFakeStore(seedUsers()...)
	st.err["CreateUser"] = nexus.Unavailable(errors.New("db down"))
	s := newTestService(t, st, nil, nil)
	_, err := s.Create(context.Background(), principal(orgA, "a1", nexus.RoleAdmin),
		users.NewUser{Email: "grace@a.example", Name: "Grace", Role: nexus.RoleMember, Password: "a long passphrase"})
	if !errors.Is(err, nexus.ErrUnavailable) || nexus.KindOf(err) != nexus.KindUnavailable {
		t.Errorf("Create = %v, want unavailable", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestUpdate(t *testing.T) {
	tests := []struct {
		name       string
		p          nexus.Principal
		userID     string
		c          users.Change
		storeErr   error // returned by the fake's UpdateUser instead of its own logic
		wantFields []string
		wantErr    error
		wantUser   nexus.User // ID, Name, Role, Status compared
	}{
		{name: "rename", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a3", c: users.Change{Name: ptr("Ana Lytic")},
			wantUser: nexus.User{ID: "a3", OrganizationID: orgA, Name: "Ana Lytic", Role: nexus.RoleAnalyst, Status: nexus.UserActive}},
		{name: "promote", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a5", c: users.Change{Role: ptr(nexus.RoleManager)},
			wantUser: nexus.User{ID: "a5", OrganizationID: orgA, Name: "Mia", Role: nexus.RoleManager, Status: nexus.UserActive}},
		{name: "reactivate", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a4", c: users.Change{Status: ptr(nexus.UserActive)},
			wantUser: nexus.User{ID: "a4", OrganizationID: orgA, Name: "Mo", Role: nexus.RoleMember, Status: nexus.UserActive}},
		{name: "everything at once", p: principal(orgB, "b1", nexus.RoleAdmin), userID: "b2",
			c:        users.Change{Name: ptr("Beatrice"), Role: ptr(nexus.RoleAdmin), Status: ptr(nexus.UserActive)},
			wantUser: nexus.User{ID: "b2", OrganizationID: orgB, Name: "Beatrice", Role: nexus.RoleAdmin, Status: nexus.UserActive}},

		{name: "empty change", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a3", c: users.Change{},
			wantFields: []string{"body:"}},
		{name: "unknown role", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a3", c: users.Change{Role: ptr(nexus.Role("owner"))},
			wantFields: []string{"body:/role"}},
		{name: "unknown status", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a3", c: users.Change{Status: ptr(nexus.UserStatus("banned"))},
			wantFields: []string{"body:/status"}},

		{name: "demoting the last admin", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a1",
			c: users.Change{Role: ptr(nexus.RoleMember)}, wantErr: users.ErrLastAdmin},
		{name: "deactivating the last admin", p: principal(orgB, "b1", nexus.RoleAdmin), userID: "b1",
			c: users.Change{Status: ptr(nexus.UserInactive)}, wantErr: users.ErrLastAdmin},
		{name: "last admin from the store, wrapped", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a1",
			c:        users.Change{Role: ptr(nexus.RoleMember)},
			storeErr: &nexus.Error{Kind: nexus.KindConflict, Code: "last_admin", Message: "copy", Err: errors.New("tx")},
			wantErr:  users.ErrLastAdmin},
		{name: "user of another organization", p: principal(orgB, "b1", nexus.RoleAdmin), userID: "a3",
			c: users.Change{Name: ptr("Hijacked")}, wantErr: nexus.ErrNotFound},
		{name: "missing user", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "nobody",
			c: users.Change{Name: ptr("Nobody")}, wantErr: nexus.ErrNotFound},
		{name: "store unavailable", p: principal(orgA, "a1", nexus.RoleAdmin), userID: "a3",
			c: users.Change{Name: ptr("Ana")}, storeErr: nexus.Unavailable(errors.New("db down")), wantErr: nexus.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore(seedUsers()...)
			if tt.storeErr != nil {
				st.err["UpdateUser"] = tt.storeErr
			}
			before := append([]nexus.User(nil), st.users...)
			s := newTestService(t, st, nil, nil)
			u, err := s.Update(context.Background(), tt.p, tt.userID, tt.c)

			if tt.wantFields != nil {
				if diff := cmp.Diff(tt.wantFields, fieldNames(t, err)); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
				if len(st.updates) != 0 {
					t.Errorf("store called %d times on invalid input", len(st.updates))
				}
				return
			}

			if len(st.updates) != 1 || st.updates[0].OrgID != tt.p.OrganizationID || st.updates[0].UserID != tt.userID {
				t.Errorf("store UpdateUser calls %+v, want one for %s/%s", st.updates, tt.p.OrganizationID, tt.userID)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Update = %v, want %v", err, tt.wantErr)
				}
				var want *nexus.Error
				errors.As(tt.wantErr, &want)
				if k := nexus.KindOf(err); k != want.Kind {
					t.Errorf("Update: kind %v, want %v", k, want.Kind)
				}
				if diff := cmp.Diff(before, st.users); diff != "" {
					t.Errorf("users changed by a failed update (-before +after):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			tt.wantUser.Email = u.Email
			tt.wantUser.CreatedAt = u.CreatedAt
			tt.wantUser.UpdatedAt = testNow
			if diff := cmp.Diff(tt.wantUser, u); diff != "" {
				t.Errorf("updated user (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUpdateRules covers what Update decides inside the store's transaction, from the user and the count of
// the organization's active admins: whether to write, the last-admin rule, the audit detail and the reason the
// user's sessions are revoked with.
func TestUpdateRules(t *testing.T) {
	const (
		admin, manager, analyst, member = nexus.RoleAdmin, nexus.RoleManager, nexus.RoleAnalyst, nexus.RoleMember
		active, inactive                = nexus.UserActive, nexus.UserInactive
	)
	type rs struct {
		role   nexus.Role
		status nexus.UserStatus
	}
	tests := []struct {
		name       string
		target     rs
		others     []rs // the organization's other users
		c          users.Change
		wantErr    error
		wantSave   bool
		wantAfter  rs
		wantDetail string
		wantRevoke string
	}{
		{name: "rename", target: rs{member, active}, c: users.Change{Name: ptr("Grace")},
			wantSave: true, wantAfter: rs{member, active}, wantDetail: "name"},
		{name: "no-op", target: rs{member, active}, c: users.Change{Name: ptr("Ada"), Role: ptr(member), Status: ptr(active)},
			wantAfter: rs{member, active}},
		{name: "no-op on the only admin", target: rs{admin, active}, c: users.Change{Role: ptr(admin), Status: ptr(active)},
			wantAfter: rs{admin, active}},
		{name: "role", target: rs{member, active}, others: []rs{{admin, active}}, c: users.Change{Role: ptr(analyst)},
			wantSave: true, wantAfter: rs{analyst, active}, wantDetail: "role=member>analyst", wantRevoke: "role_changed"},
		{name: "promotion", target: rs{analyst, active}, c: users.Change{Role: ptr(admin)},
			wantSave: true, wantAfter: rs{admin, active}, wantDetail: "role=analyst>admin", wantRevoke: "role_changed"},
		{name: "role and name", target: rs{member, active}, c: users.Change{Name: ptr("Grace"), Role: ptr(manager)},
			wantSave: true, wantAfter: rs{manager, active}, wantDetail: "role=member>manager name", wantRevoke: "role_changed"},
		{name: "role of an inactive user", target: rs{member, inactive}, c: users.Change{Role: ptr(manager)},
			wantSave: true, wantAfter: rs{manager, inactive}, wantDetail: "role=member>manager", wantRevoke: "role_changed"},
		{name: "deactivation", target: rs{member, active}, c: users.Change{Status: ptr(inactive)},
			wantSave: true, wantAfter: rs{member, inactive}, wantDetail: "status=active>inactive", wantRevoke: "user_deactivated"},
		{name: "deactivation and role", target: rs{manager, active}, c: users.Change{Role: ptr(member), Status: ptr(inactive)},
			wantSave: true, wantAfter: rs{member, inactive}, wantDetail: "role=manager>member status=active>inactive", wantRevoke: "user_deactivated"},
		{name: "reactivation", target: rs{member, inactive}, c: users.Change{Status: ptr(active)},
			wantSave: true, wantAfter: rs{member, active}, wantDetail: "status=inactive>active"},
		{name: "reactivation and role", target: rs{member, inactive}, c: users.Change{Role: ptr(analyst), Status: ptr(active)},
			wantSave: true, wantAfter: rs{analyst, active}, wantDetail: "role=member>analyst status=inactive>active", wantRevoke: "role_changed"},

		{name: "only admin demoted", target: rs{admin, active}, others: []rs{{manager, active}}, c: users.Change{Role: ptr(manager)},
			wantErr: users.ErrLastAdmin},
		{name: "only admin deactivated", target: rs{admin, active}, c: users.Change{Status: ptr(inactive)},
			wantErr: users.ErrLastAdmin},
		{name: "only active admin demoted, the other inactive", target: rs{admin, active}, others: []rs{{admin, inactive}},
			c: users.Change{Role: ptr(member)}, wantErr: users.ErrLastAdmin},
		{name: "only admin renamed", target: rs{admin, active}, c: users.Change{Name: ptr("Grace")},
			wantSave: true, wantAfter: rs{admin, active}, wantDetail: "name"},
		{name: "one of two admins demoted", target: rs{admin, active}, others: []rs{{admin, active}}, c: users.Change{Role: ptr(member)},
			wantSave: true, wantAfter: rs{member, active}, wantDetail: "role=admin>member", wantRevoke: "role_changed"},
		{name: "one of two admins deactivated", target: rs{admin, active}, others: []rs{{admin, active}}, c: users.Change{Status: ptr(inactive)},
			wantSave: true, wantAfter: rs{admin, inactive}, wantDetail: "status=active>inactive", wantRevoke: "user_deactivated"},
		{name: "inactive admin demoted without an active admin", target: rs{admin, inactive}, others: []rs{{member, active}},
			c: users.Change{Role: ptr(member)}, wantSave: true, wantAfter: rs{member, inactive}, wantDetail: "role=admin>member", wantRevoke: "role_changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed := []nexus.User{{ID: "t", OrganizationID: orgA, Email: "ada@a.example", Name: "Ada", Role: tt.target.role, Status: tt.target.status},
				// another organization's active admin never counts
				{ID: "x", OrganizationID: orgB, Email: "bob@b.example", Name: "Bob", Role: admin, Status: active}}
			for i, o := range tt.others {
				seed = append(seed, nexus.User{ID: fmt.Sprintf("o%d", i), OrganizationID: orgA, Email: fmt.Sprintf("o%d@a.example", i),
					Name: "Other", Role: o.role, Status: o.status})
			}
			st := newFakeStore(seed...)
			before := st.users[0]
			p := principal(orgA, "boss", admin)
			u, err := newTestService(t, st, nil, nil).Update(context.Background(), p, "t", tt.c)
			if len(st.updates) != 1 {
				t.Fatalf("%d store UpdateUser calls, want 1", len(st.updates))
			}
			call := st.updates[0]
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || nexus.KindOf(err) != nexus.KindConflict {
					t.Errorf("Update = %v, want %v (conflict)", err, tt.wantErr)
				}
				if call.Save || st.users[0] != before || st.revoked["t"] != "" {
					t.Errorf("a refused change was written: save %v, user %+v, revoked %q", call.Save, st.users[0], st.revoked["t"])
				}
				return
			}
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if call.Save != tt.wantSave {
				t.Fatalf("save = %v, want %v", call.Save, tt.wantSave)
			}
			want := before
			want.Role, want.Status = tt.wantAfter.role, tt.wantAfter.status
			if tt.c.Name != nil {
				want.Name = *tt.c.Name
			}
			if !tt.wantSave {
				if u != before {
					t.Errorf("Update = %+v, want the user unchanged %+v", u, before)
				}
				return
			}
			want.UpdatedAt = testNow
			wantWrite := users.Write{User: want, By: users.Actor{UserID: "boss", SessionID: "s-1", ClientID: "web"},
				Detail: tt.wantDetail, Revoke: tt.wantRevoke}
			if diff := cmp.Diff(wantWrite, call.Write); diff != "" {
				t.Errorf("write (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, u); diff != "" {
				t.Errorf("Update returned (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateOrganization(t *testing.T) {
	sys := nexus.SystemPrincipal("")
	tests := []struct {
		name     string
		in       string
		wantName string // empty: invalid
	}{
		{"name", "Acme", "Acme"},
		{"trimmed", "  Acme Corp\t", "Acme Corp"},
		{"200 bytes", strings.Repeat("é", 100), strings.Repeat("é", 100)},
		{"empty", "", ""},
		{"blank", " \t ", ""},
		{"201 bytes", strings.Repeat("é", 100) + "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore()
			o, err := newTestService(t, st, nil, nil).CreateOrganization(context.Background(), sys, tt.in)
			if tt.wantName == "" {
				if diff := cmp.Diff([]string{"body:/name"}, fieldNames(t, err)); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
				if len(st.orgs) != 0 {
					t.Errorf("store called on invalid input: %+v", st.orgs)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateOrganization: %v", err)
			}
			if diff := cmp.Diff([]orgCall{{tt.wantName, users.Actor{}}}, st.orgs); diff != "" {
				t.Errorf("store calls (-want +got):\n%s", diff)
			}
			if o.Name != tt.wantName || o.ID == "" {
				t.Errorf("CreateOrganization = %+v", o)
			}
		})
	}
}
