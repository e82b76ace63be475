package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// listed is a user that TestListUsers inserts as is: key is its name and the local part of its email, n places
// its id in the id order, and after is its creation time after t0.
type listed struct {
	key    string
	n      int
	after  time.Duration
	role   nexus.Role
	status nexus.UserStatus
}

// fixedID returns a UUID whose place in the id order (as text and as a PostgreSQL uuid) is n.
func fixedID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// insertListed inserts the users into the organization in the given order and returns them by key.
func insertListed(t *testing.T, db *store.DB, orgID string, ls []listed) map[string]nexus.User {
	t.Helper()
	us := make([]nexus.User, len(ls))
	byKey := make(map[string]nexus.User, len(ls))
	for i, l := range ls {
		us[i] = nexus.User{ID: fixedID(l.n), OrganizationID: orgID, Email: l.key + "@example.com", Name: l.key,
			Role: l.role, Status: l.status, CreatedAt: t0.Add(l.after), UpdatedAt: t0.Add(l.after)}
		byKey[l.key] = us[i]
	}
	if err := db.InsertUsers(context.Background(), us, "hash"); err != nil {
		t.Fatalf("InsertUsers: %v", err)
	}
	return byKey
}

func TestListUsers(t *testing.T) {
	const (
		admin, manager, analyst, member = nexus.RoleAdmin, nexus.RoleManager, nexus.RoleAnalyst, nexus.RoleMember
		active, inactive                = nexus.UserActive, nexus.UserInactive
	)
	// Inserted in this order, which is neither the creation order nor the id order. Ordered by creation time
	// then id they are: ad | mg an | m1 m3 a2 | m2 (the bars separate creation times).
	acmeUsers := []listed{
		{"m3", 3, 2 * time.Second, member, active},
		{"ad", 9, 0, admin, active},
		{"an", 7, time.Second, analyst, inactive},
		{"m1", 1, 2 * time.Second, member, inactive},
		{"mg", 5, time.Second, manager, active},
		{"m2", 2, 3 * time.Second, member, active},
		{"a2", 8, 2 * time.Second, admin, inactive},
	}
	// The other organization's users fall between Acme's in both orders.
	globexUsers := []listed{
		{"gy", 6, 2500 * time.Millisecond, member, active},
		{"gx", 4, 0, admin, active},
	}
	all := []string{"ad", "mg", "an", "m1", "m3", "a2", "m2"}
	tests := []struct {
		name  string
		org   string // acme, ACME (its id in upper case), globex, or an id as is
		q     users.ListQuery
		want  []string
		total int
	}{
		{"everyone", "acme", users.ListQuery{Limit: 100}, all, 7},
		{"first page", "acme", users.ListQuery{Limit: 3}, all[:3], 7},
		{"page across a tie", "acme", users.ListQuery{Limit: 2, Offset: 2}, []string{"an", "m1"}, 7},
		{"inside a tie", "acme", users.ListQuery{Limit: 1, Offset: 4}, []string{"m3"}, 7},
		{"last page, short", "acme", users.ListQuery{Limit: 5, Offset: 5}, []string{"a2", "m2"}, 7},
		{"offset at the end", "acme", users.ListQuery{Limit: 5, Offset: 7}, []string{}, 7},
		{"offset past the end", "acme", users.ListQuery{Limit: 5, Offset: 10_000}, []string{}, 7},
		{"active", "acme", users.ListQuery{Limit: 100, Status: active}, []string{"ad", "mg", "m3", "m2"}, 4},
		{"inactive", "acme", users.ListQuery{Limit: 100, Status: inactive}, []string{"an", "m1", "a2"}, 3},
		{"inactive, second page", "acme", users.ListQuery{Limit: 2, Offset: 2, Status: inactive}, []string{"a2"}, 3},
		{"admins", "acme", users.ListQuery{Limit: 100, Role: admin}, []string{"ad", "a2"}, 2},
		{"members", "acme", users.ListQuery{Limit: 100, Role: member}, []string{"m1", "m3", "m2"}, 3},
		{"analysts", "acme", users.ListQuery{Limit: 100, Role: analyst}, []string{"an"}, 1},
		{"active admins", "acme", users.ListQuery{Limit: 100, Role: admin, Status: active}, []string{"ad"}, 1},
		{"inactive members", "acme", users.ListQuery{Limit: 100, Role: member, Status: inactive}, []string{"m1"}, 1},
		{"active members, second", "acme", users.ListQuery{Limit: 1, Offset: 1, Role: member, Status: active}, []string{"m2"}, 2},
		{"active members, past the end", "acme", users.ListQuery{Limit: 1, Offset: 2, Role: member, Status: active}, []string{}, 2},
		{"no match", "acme", users.ListQuery{Limit: 100, Role: manager, Status: inactive}, []string{}, 0},
		{"organization id in upper case", "ACME", users.ListQuery{Limit: 100}, all, 7},
		{"the other organization", "globex", users.ListQuery{Limit: 100}, []string{"gx", "gy"}, 2},
		{"the other organization's admins", "globex", users.ListQuery{Limit: 100, Role: admin}, []string{"gx"}, 1},
		{"unknown organization", uuid.NewString(), users.ListQuery{Limit: 100}, []string{}, 0},
	}
	for _, id := range badIDs {
		tests = append(tests, struct {
			name  string
			org   string
			q     users.ListQuery
			want  []string
			total int
		}{fmt.Sprintf("malformed organization id %q", id), id, users.ListQuery{Limit: 100}, []string{}, 0})
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		byKey := insertListed(t, db, acme.ID, acmeUsers)
		for k, u := range insertListed(t, db, globex.ID, globexUsers) {
			byKey[k] = u
		}
		orgs := map[string]string{"acme": acme.ID, "ACME": strings.ToUpper(acme.ID), "globex": globex.ID}
		s := store.NewUsers(db)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				org, ok := orgs[tt.org]
				if !ok {
					org = tt.org
				}
				got, total, err := s.ListUsers(ctx, org, tt.q)
				if err != nil {
					t.Fatalf("ListUsers(%+v): %v", tt.q, err)
				}
				if total != tt.total {
					t.Errorf("total = %d, want %d", total, tt.total)
				}
				if got == nil {
					t.Error("page is nil, want an empty slice")
				}
				want := make([]nexus.User, len(tt.want))
				for i, k := range tt.want {
					want[i] = byKey[k]
				}
				if diff := cmp.Diff(want, got, equalTimes); diff != "" {
					t.Errorf("ListUsers(%+v) (-want +got):\n%s", tt.q, diff)
				}
				for _, u := range got {
					checkUTC(t, u.Name, u.CreatedAt, u.UpdatedAt)
				}
			})
		}
	})
}

func TestUsersUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		u := mustUser(t, db, acme.ID, "ada@example.com")
		s := store.NewUsers(db)
		for _, ids := range [][2]string{{acme.ID, u.ID}, {strings.ToUpper(acme.ID), strings.ToUpper(u.ID)}} {
			got, err := s.User(ctx, ids[0], ids[1])
			if err != nil {
				t.Fatalf("User(%s, %s): %v", ids[0], ids[1], err)
			}
			if diff := cmp.Diff(u, got, equalTimes); diff != "" {
				t.Errorf("User(%s, %s) (-want +got):\n%s", ids[0], ids[1], diff)
			}
			checkUTC(t, "User", got.CreatedAt, got.UpdatedAt)
		}
		missing := [][2]string{{globex.ID, u.ID}, {uuid.NewString(), u.ID}, {acme.ID, uuid.NewString()}}
		for _, bad := range badIDs {
			missing = append(missing, [2]string{bad, u.ID}, [2]string{acme.ID, bad})
		}
		for _, ids := range missing {
			if got, err := s.User(ctx, ids[0], ids[1]); !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("User(%q, %q) = %+v, %v; want not found", ids[0], ids[1], got, err)
			}
		}
	})
}

func TestUsersCreateUser(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		s := store.NewUsers(db)
		in := nexus.User{OrganizationID: strings.ToUpper(acme.ID), Email: "Grace.Hopper@Example.com", Name: "Grace Hopper",
			Role: nexus.RoleAnalyst, Status: nexus.UserInactive}
		u, err := s.CreateUser(ctx, in, "the-hash", users.Actor{})
		if err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		if id, err := uuid.Parse(u.ID); err != nil || id.Version() != 7 || id.String() != u.ID {
			t.Errorf("ID %q is not a canonical version 7 UUID", u.ID)
		}
		want := in
		want.ID, want.OrganizationID, want.CreatedAt, want.UpdatedAt = u.ID, acme.ID, u.CreatedAt, u.CreatedAt
		if diff := cmp.Diff(want, u, equalTimes); diff != "" {
			t.Errorf("CreateUser (-want +got):\n%s", diff)
		}
		got, err := s.User(ctx, acme.ID, u.ID)
		if err != nil {
			t.Fatalf("User: %v", err)
		}
		if diff := cmp.Diff(u, got, equalTimes); diff != "" {
			t.Errorf("User after CreateUser (-want +got):\n%s", diff)
		}

		for _, again := range []struct{ org, email string }{
			{acme.ID, "Grace.Hopper@Example.com"},
			{acme.ID, "grace.hopper@example.com"},
			{globex.ID, "GRACE.HOPPER@EXAMPLE.COM"},
			{globex.ID, " grace.hopper@example.com "},
		} {
			dup := nexus.User{OrganizationID: again.org, Email: again.email, Name: "Impostor", Role: nexus.RoleAdmin,
				Status: nexus.UserActive}
			_, err := s.CreateUser(ctx, dup, "other-hash", users.Actor{})
			if !errors.Is(err, users.ErrEmailTaken) || nexus.KindOf(err) != nexus.KindConflict {
				t.Errorf("CreateUser(%q in %s) = %v, want users.ErrEmailTaken of kind conflict", again.email, again.org, err)
			}
		}
		if _, total, err := s.ListUsers(ctx, globex.ID, users.ListQuery{Limit: 100}); err != nil || total != 0 {
			t.Errorf("Globex has %d users (%v) after the refused creations, want 0", total, err)
		}
		cred, err := store.NewAuth(db).UserByEmail(ctx, "grace.hopper@example.com")
		if err != nil || cred.User.ID != u.ID || cred.PasswordHash != "the-hash" {
			t.Errorf("UserByEmail = %+v, %v; want the first user with the first hash", cred, err)
		}
	})
}

// sessionOf stores a session of u that was last used at lastUsed and expires at expires, revoked with reason
// at revokedAt unless that is zero.
func sessionOf(t *testing.T, db *store.DB, u nexus.User, lastUsed, expires, revokedAt time.Time, reason string) auth.Session {
	t.Helper()
	s := auth.Session{ID: uuid.NewString(), UserID: u.ID, OrganizationID: u.OrganizationID, ClientID: "web",
		Salt: randomBytes(t, 32), CreatedAt: lastUsed.Add(-time.Hour), LastUsedAt: lastUsed, ExpiresAt: expires,
		RevokedAt: revokedAt, RevokedReason: reason}
	if err := createSession(store.NewAuth(db), s); err != nil {
		t.Fatalf("StartSession: %v", err)
	}
	return s
}

// checkSessions reads the sessions back and compares them with want.
func checkSessions(t *testing.T, db *store.DB, want ...auth.Session) {
	t.Helper()
	for _, w := range want {
		got, err := store.NewAuth(db).Session(context.Background(), w.ID)
		if err != nil {
			t.Errorf("Session(%s): %v", w.ID, err)
			continue
		}
		if diff := cmp.Diff(w, got, equalTimes); diff != "" {
			t.Errorf("session %s (-want +got):\n%s", w.ID, diff)
		}
	}
}

// revoked returns s revoked at at for reason, or s itself if reason is empty.
func revoked(s auth.Session, at time.Time, reason string) auth.Session {
	if reason != "" {
		s.RevokedAt, s.RevokedReason = at, reason
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func TestUpdateUser(t *testing.T) {
	const (
		admin, manager, analyst, member = nexus.RoleAdmin, nexus.RoleManager, nexus.RoleAnalyst, nexus.RoleMember
		active, inactive                = nexus.UserActive, nexus.UserInactive
	)
	at := t0.Add(time.Hour)
	tests := []struct {
		name       string
		role       nexus.Role
		status     nexus.UserStatus
		change     users.Change
		wantName   string // empty: unchanged
		wantRole   nexus.Role
		wantStatus nexus.UserStatus
		revoke     string // the reason the live sessions are revoked with; empty: they are not
	}{
		{"name only", member, active, users.Change{Name: ptr("Grace Hopper")}, "Grace Hopper", member, active, ""},
		{"name of an admin", admin, active, users.Change{Name: ptr("Grace Hopper")}, "Grace Hopper", admin, active, ""},
		{"no-op", member, active, users.Change{Name: ptr("Ada Lovelace"), Role: ptr(member), Status: ptr(active)}, "", member, active, ""},
		{"no-op on an inactive admin", admin, inactive, users.Change{Role: ptr(admin), Status: ptr(inactive)}, "", admin, inactive, ""},
		{"role", member, active, users.Change{Role: ptr(analyst)}, "", analyst, active, "role_changed"},
		{"name and role", member, active, users.Change{Name: ptr("Grace Hopper"), Role: ptr(manager)}, "Grace Hopper", manager, active, "role_changed"},
		{"promotion to admin", analyst, active, users.Change{Role: ptr(admin)}, "", admin, active, "role_changed"},
		{"demotion of one of two admins", admin, active, users.Change{Role: ptr(member)}, "", member, active, "role_changed"},
		{"role of an inactive user", member, inactive, users.Change{Role: ptr(manager)}, "", manager, inactive, "role_changed"},
		{"deactivation", member, active, users.Change{Status: ptr(inactive)}, "", member, inactive, "user_deactivated"},
		{"deactivation of one of two admins", admin, active, users.Change{Status: ptr(inactive)}, "", admin, inactive, "user_deactivated"},
		{"deactivation and role", manager, active, users.Change{Role: ptr(member), Status: ptr(inactive)}, "", member, inactive, "user_deactivated"},
		{"reactivation", member, inactive, users.Change{Status: ptr(active)}, "", member, active, ""},
		{"reactivation and role", member, inactive, users.Change{Role: ptr(analyst), Status: ptr(active)}, "", analyst, active, "role_changed"},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := store.NewUsers(db)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				org := mustOrg(t, db, "Acme")
				// keeper is an active admin, so that the last-admin rule never applies here.
				keeper, err := s.CreateUser(ctx, nexus.User{OrganizationID: org.ID, Email: uuid.NewString() + "@example.com",
					Name: "Keeper", Role: admin, Status: active}, "h", users.Actor{})
				if err != nil {
					t.Fatalf("CreateUser(keeper): %v", err)
				}
				before, err := s.CreateUser(ctx, nexus.User{OrganizationID: org.ID, Email: uuid.NewString() + "@example.com",
					Name: "Ada Lovelace", Role: tt.role, Status: tt.status}, "h", users.Actor{})
				if err != nil {
					t.Fatalf("CreateUser: %v", err)
				}
				live1 := sessionOf(t, db, before, t0, t0.Add(24*time.Hour), time.Time{}, "")
				live2 := sessionOf(t, db, before, t0.Add(-time.Minute), t0.Add(48*time.Hour), time.Time{}, "")
				gone := sessionOf(t, db, before, t0.Add(-2*time.Hour), t0.Add(24*time.Hour), t0.Add(-90*time.Minute), "logout")
				keepers := sessionOf(t, db, keeper, t0, t0.Add(24*time.Hour), time.Time{}, "")

				got, err := updateUser(ctx, s, org.ID, before.ID, tt.change, at)
				if err != nil {
					t.Fatalf("UpdateUser(%+v): %v", tt.change, err)
				}
				want := before
				if tt.wantName != "" {
					want.Name = tt.wantName
				}
				want.Role, want.Status = tt.wantRole, tt.wantStatus
				if want != before {
					want.UpdatedAt = at
				}
				if diff := cmp.Diff(want, got, equalTimes); diff != "" {
					t.Errorf("UpdateUser returned (-want +got):\n%s", diff)
				}
				stored, err := s.User(ctx, org.ID, before.ID)
				if err != nil {
					t.Fatalf("User: %v", err)
				}
				if diff := cmp.Diff(want, stored, equalTimes); diff != "" {
					t.Errorf("stored user (-want +got):\n%s", diff)
				}
				checkSessions(t, db, revoked(live1, at, tt.revoke), revoked(live2, at, tt.revoke), gone, keepers)
			})
		}
	})
}

func TestUpdateUserLastAdmin(t *testing.T) {
	const (
		admin, manager, member = nexus.RoleAdmin, nexus.RoleManager, nexus.RoleMember
		active, inactive       = nexus.UserActive, nexus.UserInactive
	)
	type roleStatus struct {
		role   nexus.Role
		status nexus.UserStatus
	}
	tests := []struct {
		name    string
		target  roleStatus
		others  []roleStatus // the organization's other users
		change  users.Change
		refused bool
	}{
		{"only admin demoted", roleStatus{admin, active}, []roleStatus{{manager, active}, {member, active}},
			users.Change{Role: ptr(manager)}, true},
		{"only admin deactivated", roleStatus{admin, active}, []roleStatus{{member, active}},
			users.Change{Status: ptr(inactive)}, true},
		{"only admin demoted and deactivated", roleStatus{admin, active}, nil,
			users.Change{Role: ptr(member), Status: ptr(inactive)}, true},
		{"only active admin demoted, the other admin inactive", roleStatus{admin, active}, []roleStatus{{admin, inactive}},
			users.Change{Role: ptr(member)}, true},
		{"only active admin deactivated, the other admin inactive", roleStatus{admin, active}, []roleStatus{{admin, inactive}},
			users.Change{Status: ptr(inactive)}, true},
		{"only admin renamed", roleStatus{admin, active}, nil, users.Change{Name: ptr("Grace Hopper")}, false},
		{"only admin confirmed", roleStatus{admin, active}, nil, users.Change{Role: ptr(admin), Status: ptr(active)}, false},
		{"one of two active admins demoted", roleStatus{admin, active}, []roleStatus{{admin, active}},
			users.Change{Role: ptr(member)}, false},
		{"one of two active admins deactivated", roleStatus{admin, active}, []roleStatus{{admin, active}, {admin, inactive}},
			users.Change{Status: ptr(inactive)}, false},
		{"inactive admin demoted", roleStatus{admin, inactive}, []roleStatus{{admin, active}},
			users.Change{Role: ptr(member)}, false},
		{"inactive admin demoted in an organization without an active admin", roleStatus{admin, inactive}, []roleStatus{{member, active}},
			users.Change{Role: ptr(member)}, false},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := store.NewUsers(db)
		create := func(t *testing.T, orgID string, rs roleStatus) nexus.User {
			t.Helper()
			u, err := s.CreateUser(ctx, nexus.User{OrganizationID: orgID, Email: uuid.NewString() + "@example.com",
				Name: "Ada Lovelace", Role: rs.role, Status: rs.status}, "h", users.Actor{})
			if err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			return u
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				org := mustOrg(t, db, "Acme")
				// Another organization's active admin never counts.
				create(t, mustOrg(t, db, "Globex").ID, roleStatus{admin, active})
				target := create(t, org.ID, tt.target)
				for _, o := range tt.others {
					create(t, org.ID, o)
				}
				sess := sessionOf(t, db, target, t0, t0.Add(24*time.Hour), time.Time{}, "")

				_, err := updateUser(ctx, s, org.ID, target.ID, tt.change, t0.Add(time.Hour))
				if !tt.refused {
					if err != nil {
						t.Fatalf("UpdateUser(%+v) = %v, want success", tt.change, err)
					}
					return
				}
				if !errors.Is(err, users.ErrLastAdmin) || nexus.KindOf(err) != nexus.KindConflict {
					t.Fatalf("UpdateUser(%+v) = %v, want users.ErrLastAdmin of kind conflict", tt.change, err)
				}
				got, err := s.User(ctx, org.ID, target.ID)
				if err != nil {
					t.Fatalf("User: %v", err)
				}
				if diff := cmp.Diff(target, got, equalTimes); diff != "" {
					t.Errorf("the refused change was stored (-before +after):\n%s", diff)
				}
				checkSessions(t, db, sess)
			})
		}
	})
}

func TestUpdateUserNotFound(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		s := store.NewUsers(db)
		u := mustUser(t, db, acme.ID, "ada@example.com")
		mustUser(t, db, globex.ID, "grace@example.com")
		sess := sessionOf(t, db, u, t0, t0.Add(24*time.Hour), time.Time{}, "")
		ids := [][2]string{{globex.ID, u.ID}, {uuid.NewString(), u.ID}, {acme.ID, uuid.NewString()}}
		for _, bad := range badIDs {
			ids = append(ids, [2]string{bad, u.ID}, [2]string{acme.ID, bad})
		}
		change := users.Change{Name: ptr("Mallory"), Role: ptr(nexus.RoleAdmin), Status: ptr(nexus.UserInactive)}
		for _, id := range ids {
			if got, err := updateUser(ctx, s, id[0], id[1], change, t0); !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("UpdateUser(%q, %q) = %+v, %v; want not found", id[0], id[1], got, err)
			}
		}
		got, err := s.User(ctx, acme.ID, u.ID)
		if err != nil {
			t.Fatalf("User: %v", err)
		}
		if diff := cmp.Diff(u, got, equalTimes); diff != "" {
			t.Errorf("user changed through another organization (-before +after):\n%s", diff)
		}
		checkSessions(t, db, sess)
	})
}

// TestUpdateUserLastAdminRace has the two active admins of an organization demoted or deactivated at the same
// time: the organization must keep exactly one, and the other change must be refused with ErrLastAdmin.
func TestUpdateUserLastAdminRace(t *testing.T) {
	const rounds = 20
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := store.NewUsers(db)
		for round := range rounds {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			org := mustOrg(t, db, fmt.Sprintf("Acme %d", round))
			var admins [2]nexus.User
			for i := range admins {
				u, err := s.CreateUser(ctx, nexus.User{OrganizationID: org.ID, Email: uuid.NewString() + "@example.com",
					Name: "Admin", Role: nexus.RoleAdmin, Status: nexus.UserActive}, "h", users.Actor{})
				if err != nil {
					t.Fatalf("CreateUser: %v", err)
				}
				admins[i] = u
			}
			mustUser(t, db, org.ID, uuid.NewString()+"@example.com")
			// Even rounds demote both; odd rounds demote one and deactivate the other.
			changes := [2]users.Change{{Role: ptr(nexus.RoleMember)}, {Role: ptr(nexus.RoleManager)}}
			if round%2 == 1 {
				changes[1] = users.Change{Status: ptr(nexus.UserInactive)}
			}
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				errs  [2]error
			)
			for i := range admins {
				wg.Go(func() {
					<-start
					_, errs[i] = updateUser(ctx, s, org.ID, admins[i].ID, changes[i], t0)
				})
			}
			close(start)
			wg.Wait()
			succeeded := 0
			for i, err := range errs {
				switch {
				case err == nil:
					succeeded++
				case !errors.Is(err, users.ErrLastAdmin):
					t.Errorf("round %d: UpdateUser(admin %d, %+v) = %v (kind %v), want success or users.ErrLastAdmin",
						round, i, changes[i], err, nexus.KindOf(err))
				}
			}
			if succeeded != 1 {
				t.Errorf("round %d: %d of the two changes succeeded (errors %v), want exactly 1", round, succeeded, errs)
			}
			left, total, err := s.ListUsers(ctx, org.ID, users.ListQuery{Limit: 10, Role: nexus.RoleAdmin, Status: nexus.UserActive})
			if err != nil {
				t.Fatalf("ListUsers: %v", err)
			}
			if total != 1 {
				t.Errorf("round %d: %d active admins left (%v), want 1", round, total, left)
			}
			cancel()
			if t.Failed() {
				return
			}
		}
	})
}

func TestLoginActivity(t *testing.T) {
	const idle = 7 * 24 * time.Hour
	now := t0
	since := now.Add(-users.ActivityWindow)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		u := mustUser(t, db, acme.ID, "ada@example.com")
		colleague := mustUser(t, db, acme.ID, "grace@example.com")
		newcomer := mustUser(t, db, acme.ID, "alan@example.com")
		a := store.NewAuth(db)
		event := func(who nexus.User, at time.Time, action, result, ip string) {
			t.Helper()
			e := auth.AuditEvent{OccurredAt: at, Action: action, Result: result, UserID: who.ID,
				OrganizationID: who.OrganizationID, ClientID: "web", ReportedIP: ip, SocketIP: "10.0.0.1"}
			if err := a.RecordAuthEvent(ctx, e); err != nil {
				t.Fatalf("RecordAuthEvent: %v", err)
			}
		}
		event(u, now.Add(-40*24*time.Hour), "login", "success", "198.51.100.1")            // before the window
		event(u, now.Add(-31*24*time.Hour), "login", "invalid_credentials", "")            // before the window
		event(u, since, "login", "success", "198.51.100.2")                                // at its start: counts
		event(u, now.Add(-3*24*time.Hour), "login", "invalid_credentials", "198.51.100.3") // failure
		event(u, now.Add(-2*24*time.Hour), "login", "success", "198.51.100.4")
		event(u, now.Add(-time.Hour), "login", "success", "203.0.113.9") // the last login
		event(u, now.Add(-30*time.Minute), "login", "account_inactive", "203.0.113.10")
		event(u, now.Add(-20*time.Minute), "refresh", "success", "203.0.113.11") // not a login
		event(u, now.Add(-10*time.Minute), "refresh", "invalid_grant", "203.0.113.12")
		event(u, now.Add(-5*time.Minute), "logout", "success", "203.0.113.13")
		event(colleague, now.Add(-time.Minute), "login", "success", "192.0.2.1") // someone else
		event(colleague, now.Add(-time.Minute), "login", "invalid_credentials", "192.0.2.1")

		day := 24 * time.Hour
		sessionOf(t, db, u, now.Add(-time.Hour), now.Add(30*day), time.Time{}, "")                 // live
		sessionOf(t, db, u, now.Add(-6*day), now.Add(time.Second), time.Time{}, "")                // live, for a second
		sessionOf(t, db, u, now.Add(-time.Hour), now.Add(30*day), now.Add(-time.Minute), "logout") // revoked
		sessionOf(t, db, u, now.Add(-time.Hour), now, time.Time{}, "")                             // expires now
		sessionOf(t, db, u, now.Add(-2*day), now.Add(-time.Second), time.Time{}, "")               // expired
		sessionOf(t, db, u, now.Add(-8*day), now.Add(30*day), time.Time{}, "")                     // idle too long
		sessionOf(t, db, u, now.Add(-idle), now.Add(30*day), time.Time{}, "")                      // idle exactly the TTL
		sessionOf(t, db, colleague, now.Add(-time.Hour), now.Add(30*day), time.Time{}, "")         // someone else's

		s := store.NewUsers(db)
		tests := []struct {
			name        string
			org, user   string
			idle        time.Duration
			want        users.Activity
			notFoundToo bool // a not-found error is as good as the zero activity
		}{
			{"with idle timeout", acme.ID, u.ID, idle, users.Activity{LastLoginAt: now.Add(-time.Hour), LastLoginIP: "203.0.113.9",
				Logins: 3, FailedLogins: 2, ActiveSessions: 2}, false},
			{"without idle timeout", acme.ID, u.ID, 0, users.Activity{LastLoginAt: now.Add(-time.Hour), LastLoginIP: "203.0.113.9",
				Logins: 3, FailedLogins: 2, ActiveSessions: 4}, false},
			{"ids in upper case", strings.ToUpper(acme.ID), strings.ToUpper(u.ID), idle, users.Activity{LastLoginAt: now.Add(-time.Hour),
				LastLoginIP: "203.0.113.9", Logins: 3, FailedLogins: 2, ActiveSessions: 2}, false},
			{"colleague", acme.ID, colleague.ID, idle, users.Activity{LastLoginAt: now.Add(-time.Minute), LastLoginIP: "192.0.2.1",
				Logins: 1, FailedLogins: 1, ActiveSessions: 1}, false},
			{"never logged in", acme.ID, newcomer.ID, idle, users.Activity{}, false},
			{"through another organization", globex.ID, u.ID, idle, users.Activity{}, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.LoginActivity(ctx, tt.org, tt.user, since, now, tt.idle)
				if err != nil && !(tt.notFoundToo && errors.Is(err, nexus.ErrNotFound)) {
					t.Fatalf("LoginActivity: %v", err)
				}
				if diff := cmp.Diff(tt.want, got, equalTimes); diff != "" {
					t.Errorf("LoginActivity (-want +got):\n%s", diff)
				}
				checkUTC(t, "LastLoginAt", got.LastLoginAt)
			})
		}
		for _, bad := range badIDs {
			if _, err := s.LoginActivity(ctx, acme.ID, bad, since, now, idle); !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("LoginActivity(user %q) = %v, want not found", bad, err)
			}
		}
	})
}

// TestUpdateUserMechanics drives UpdateUser's callback directly: what it is given (the user, and the active
// admins of the user's organization only), that its error and a no-save write nothing, and that a save writes
// the user, the audit entry and the revocations with the reason the callback chose.
func TestUpdateUserMechanics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, a := store.NewUsers(db), store.NewAuth(db)
		org, other := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		create := func(orgID string, role nexus.Role, status nexus.UserStatus) nexus.User {
			t.Helper()
			u, err := s.CreateUser(ctx, nexus.User{OrganizationID: orgID, Email: uuid.NewString() + "@example.com",
				Name: "Ada Lovelace", Role: role, Status: status}, "h", users.Actor{})
			if err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
			return u
		}
		boss := create(org.ID, nexus.RoleAdmin, nexus.UserActive)
		create(org.ID, nexus.RoleAdmin, nexus.UserActive)
		create(org.ID, nexus.RoleAdmin, nexus.UserInactive)
		create(other.ID, nexus.RoleAdmin, nexus.UserActive)
		target := create(org.ID, nexus.RoleMember, nexus.UserActive)
		sess := sessionOf(t, db, target, t0, t0.Add(24*time.Hour), time.Time{}, "")
		entries := func() int {
			t.Helper()
			ev, err := a.AuthEvents(ctx)
			if err != nil {
				t.Fatalf("AuthEvents: %v", err)
			}
			return len(ev)
		}
		audited := entries()

		refusal := errors.New("refused by the callback")
		var seen users.Locked
		_, err := s.UpdateUser(ctx, org.ID, target.ID, func(cur users.Locked) (users.Write, bool, error) {
			seen = cur
			w := users.Write{User: cur.User, Revoke: "x"}
			w.User.Name = "Mallory"
			return w, true, refusal
		})
		if err != refusal {
			t.Errorf("UpdateUser = %v, want the callback's error as is", err)
		}
		if diff := cmp.Diff(users.Locked{User: target, ActiveAdmins: 2}, seen, equalTimes); diff != "" {
			t.Errorf("the callback was given (-want +got):\n%s", diff)
		}
		got, err := s.UpdateUser(ctx, org.ID, target.ID, func(cur users.Locked) (users.Write, bool, error) {
			return users.Write{User: nexus.User{Name: "Mallory"}, Revoke: "x"}, false, nil
		})
		if err != nil || got != target {
			t.Errorf("UpdateUser without save = %+v, %v; want the user as it was", got, err)
		}
		if stored, err := s.User(ctx, org.ID, target.ID); err != nil || !cmp.Equal(stored, target, equalTimes) {
			t.Errorf("stored user %+v, %v; want it unchanged %+v", stored, err, target)
		}
		checkSessions(t, db, sess)
		if n := entries(); n != audited {
			t.Errorf("%d audit entries written without a save", n-audited)
		}

		at := t0.Add(time.Hour + 1234*time.Nanosecond)
		by := users.Actor{UserID: boss.ID, ClientID: "web"}
		got, err = s.UpdateUser(ctx, org.ID, target.ID, func(cur users.Locked) (users.Write, bool, error) {
			w := users.Write{User: cur.User, By: by, Detail: "what changed", Revoke: "test_reason"}
			w.User.Role, w.User.Name, w.User.UpdatedAt = nexus.RoleAnalyst, "Grace Hopper", at
			w.User.Email, w.User.CreatedAt = "ignored@example.com", at // not written: the stored ones are returned
			return w, true, nil
		})
		if err != nil {
			t.Fatalf("UpdateUser: %v", err)
		}
		want := target
		want.Role, want.Name, want.UpdatedAt = nexus.RoleAnalyst, "Grace Hopper", at.Truncate(time.Microsecond)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("UpdateUser returned (-want +got):\n%s", diff)
		}
		if stored, err := s.User(ctx, org.ID, target.ID); err != nil || !cmp.Equal(stored, want, equalTimes) {
			t.Errorf("stored user %+v, %v; want %+v", stored, err, want)
		}
		checkSessions(t, db, revoked(sess, want.UpdatedAt, "test_reason"))
		ev, err := a.AuthEvents(ctx)
		if err != nil {
			t.Fatalf("AuthEvents: %v", err)
		}
		last := ev[len(ev)-1]
		wantEntry := auth.AuditEvent{OccurredAt: want.UpdatedAt, Action: "user_update", Result: "success", UserID: target.ID,
			OrganizationID: org.ID, ClientID: "web", ActorUserID: boss.ID, Detail: "what changed"}
		if len(ev) != audited+1 || !cmp.Equal(wantEntry, last, equalTimes) {
			t.Errorf("audit: %d new entries, the last %+v; want one, %+v", len(ev)-audited, last, wantEntry)
		}
	})
}

// TestCreateOrganization checks that an organization is stored with its audit entry.
func TestCreateOrganization(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		o, err := store.NewUsers(db).CreateOrganization(ctx, "Acme", users.Actor{ClientID: "cli"})
		if err != nil {
			t.Fatalf("CreateOrganization: %v", err)
		}
		if _, err := uuid.Parse(o.ID); err != nil || o.Name != "Acme" || o.CreatedAt.IsZero() {
			t.Errorf("CreateOrganization = %+v", o)
		}
		if ok, err := store.NewDirectory(db).OrganizationExists(ctx, o.ID); err != nil || !ok {
			t.Errorf("OrganizationExists = %v, %v", ok, err)
		}
		ev, err := store.NewAuth(db).AuthEvents(ctx)
		if err != nil {
			t.Fatalf("AuthEvents: %v", err)
		}
		want := []auth.AuditEvent{{OccurredAt: o.CreatedAt, Action: "organization_create", Result: "success",
			OrganizationID: o.ID, ClientID: "cli"}}
		if diff := cmp.Diff(want, ev, equalTimes); diff != "" {
			t.Errorf("audit (-want +got):\n%s", diff)
		}
	})
}
