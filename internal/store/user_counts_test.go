package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// everyFilter lists each filter of a listing: none, each status, each role, and each status with each role.
func everyFilter() []users.ListQuery {
	var qs []users.ListQuery
	for _, status := range []nexus.UserStatus{"", nexus.UserActive, nexus.UserInactive} {
		for _, role := range append([]nexus.Role{""}, nexus.Roles()...) {
			qs = append(qs, users.ListQuery{Limit: users.MaxLimit, Status: status, Role: role})
		}
	}
	return qs
}

// checkTotals compares ListUsers' total for every filter with the users counted one by one, both on the first
// page and past the last one (where the page is empty and the total must still be there).
func checkTotals(t *testing.T, db *store.DB, orgID, when string) {
	t.Helper()
	ctx := context.Background()
	s := store.NewUsers(db)
	for _, q := range everyFilter() {
		want, err := db.CountUsers(ctx, orgID, q)
		if err != nil {
			t.Fatalf("CountUsers: %v", err)
		}
		for _, offset := range []int{0, want, users.MaxOffset} {
			q.Offset = offset
			page, total, err := s.ListUsers(ctx, orgID, q)
			if err != nil {
				t.Fatalf("%s: ListUsers(%+v): %v", when, q, err)
			}
			if wantLen := max(0, min(q.Limit, want-offset)); total != want || len(page) != wantLen {
				t.Errorf("%s: ListUsers(%+v) = %d users, total %d; want %d users, total %d", when, q, len(page), total,
					wantLen, want)
			}
		}
	}
}

// TestListUsersTotals checks that the listing's totals follow every way users are added, changed and removed,
// per organization and for every filter.
func TestListUsersTotals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
		s, dir := store.NewUsers(db), store.NewDirectory(db)
		checkTotals(t, db, acme.ID, "no users")

		var created []nexus.User
		for i, role := range nexus.Roles() {
			for _, status := range []nexus.UserStatus{nexus.UserActive, nexus.UserInactive} {
				u, err := s.CreateUser(ctx, nexus.User{OrganizationID: acme.ID, Email: fmt.Sprintf("%s-%s@acme.example", role, status),
					Name: "N", Role: role, Status: status}, "h", users.Actor{})
				if err != nil {
					t.Fatalf("CreateUser: %v", err)
				}
				created = append(created, u)
				if _, err := dir.CreateUser(ctx, nexus.User{OrganizationID: globex.ID, Email: fmt.Sprintf("g%d-%s@globex.example", i, status),
					Name: "N", Role: role, Status: status}, "h"); err != nil {
					t.Fatalf("Directory.CreateUser: %v", err)
				}
			}
		}
		checkTotals(t, db, acme.ID, "after CreateUser")
		checkTotals(t, db, globex.ID, "after Directory.CreateUser")

		// Many users in one statement.
		bulk := make([]nexus.User, 250)
		for i := range bulk {
			bulk[i] = nexus.User{ID: uuid.NewString(), OrganizationID: acme.ID, Email: fmt.Sprintf("bulk%d@acme.example", i),
				Name: "B", Role: nexus.Roles()[i%4], Status: []nexus.UserStatus{nexus.UserActive, nexus.UserInactive}[i%3/2],
				CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		}
		if err := db.InsertUsers(ctx, bulk, "h"); err != nil {
			t.Fatalf("InsertUsers: %v", err)
		}
		checkTotals(t, db, acme.ID, "after InsertUsers")

		// created is, in order: admin, manager, analyst, member; each active then inactive.
		for _, c := range []struct {
			i    int
			what string
			users.Change
		}{
			{2, "manager to member", users.Change{Role: ptr(nexus.RoleMember)}},
			{4, "deactivate an analyst", users.Change{Status: ptr(nexus.UserInactive)}},
			{7, "inactive member to active analyst", users.Change{Role: ptr(nexus.RoleAnalyst), Status: ptr(nexus.UserActive)}},
			{5, "rename", users.Change{Name: ptr("Renamed")}},
		} {
			if _, err := updateUser(ctx, s, acme.ID, created[c.i].ID, c.Change, t0); err != nil {
				t.Fatalf("UpdateUser(%s): %v", c.what, err)
			}
			checkTotals(t, db, acme.ID, "after UpdateUser("+c.what+")")
		}
		if _, err := updateUser(ctx, s, acme.ID, created[3].ID, users.Change{Status: ptr(nexus.UserActive)}, t0); err != nil {
			t.Fatalf("UpdateUser(reactivate): %v", err)
		}
		checkTotals(t, db, acme.ID, "after UpdateUser(reactivate)")
		if err := db.DeleteUser(ctx, bulk[0].ID); err != nil {
			t.Fatalf("DeleteUser: %v", err)
		}
		checkTotals(t, db, acme.ID, "after a user was deleted")
		checkTotals(t, db, globex.ID, "after Acme's changes")
	})
}

// TestListUsersTotalsConcurrent creates and changes users from several goroutines while others list them: every
// listing's total counts exactly the users of its page (total and page come from one snapshot), and once the
// writers are done every total is exact.
func TestListUsersTotalsConcurrent(t *testing.T) {
	const (
		creators, perCreator = 4, 15 // at most 61 users: a page of 100 holds them all
		updaters, perUpdater = 2, 15
		readers              = 2
	)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		org := mustOrg(t, db, "Acme")
		s := store.NewUsers(db)
		if _, err := store.NewDirectory(db).CreateUser(ctx, nexus.User{OrganizationID: org.ID, Email: "first@acme.example",
			Name: "First", Role: nexus.RoleAdmin, Status: nexus.UserActive}, "h"); err != nil {
			t.Fatalf("CreateUser: %v", err)
		}
		var (
			mu      sync.Mutex
			ids     []string
			writers sync.WaitGroup
			all     sync.WaitGroup
			done    = make(chan struct{})
		)
		statuses := []nexus.UserStatus{nexus.UserActive, nexus.UserInactive}
		for c := range creators {
			writers.Go(func() {
				r := rand.New(rand.NewPCG(uint64(c), 1))
				for i := range perCreator {
					u, err := s.CreateUser(ctx, nexus.User{OrganizationID: org.ID, Email: fmt.Sprintf("c%d-%d@acme.example", c, i),
						Name: "C", Role: nexus.Roles()[r.IntN(4)], Status: statuses[r.IntN(2)]}, "h", users.Actor{})
					if err != nil {
						t.Errorf("CreateUser: %v", err)
						return
					}
					mu.Lock()
					ids = append(ids, u.ID)
					mu.Unlock()
				}
			})
		}
		for w := range updaters {
			writers.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), 2))
				for range perUpdater {
					mu.Lock()
					n := len(ids)
					var id string
					if n > 0 {
						id = ids[r.IntN(n)]
					}
					mu.Unlock()
					if id == "" {
						time.Sleep(time.Millisecond)
						continue
					}
					// Never to admin, and the first user, never changed, stays the organization's active admin.
					c := users.Change{Role: ptr(nexus.Roles()[1+r.IntN(3)]), Status: ptr(statuses[r.IntN(2)])}
					if _, err := updateUser(ctx, s, org.ID, id, c, t0); err != nil {
						t.Errorf("UpdateUser: %v", err)
						return
					}
				}
			})
		}
		for rd := range readers {
			all.Go(func() {
				r := rand.New(rand.NewPCG(uint64(rd), 3))
				qs := everyFilter()
				for {
					select {
					case <-done:
						return
					default:
					}
					q := qs[r.IntN(len(qs))]
					page, total, err := s.ListUsers(ctx, org.ID, q)
					if err != nil {
						t.Errorf("ListUsers: %v", err)
						return
					}
					if len(page) != total {
						t.Errorf("ListUsers(%+v) = %d users with total %d, want the total of the page", q, len(page), total)
						return
					}
				}
			})
		}
		writers.Wait()
		close(done)
		all.Wait()
		checkTotals(t, db, org.ID, "after the concurrent changes")
	})
}

// TestMigrateUserCounts migrates an installation that has users already: the counters start from them.
func TestMigrateUserCounts(t *testing.T) {
	ctx := context.Background()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			db := open(t, openBare(t, d))
			if _, err := db.MigrateTo(ctx, 5); err != nil {
				t.Fatalf("MigrateTo(5): %v", err)
			}
			acme, globex := mustOrg(t, db, "Acme"), mustOrg(t, db, "Globex")
			var us []nexus.User
			for i := range 40 {
				org := acme.ID
				if i%5 == 0 {
					org = globex.ID
				}
				us = append(us, nexus.User{ID: uuid.NewString(), OrganizationID: org, Email: fmt.Sprintf("u%d@example.com", i),
					Name: "U", Role: nexus.Roles()[i%4], Status: []nexus.UserStatus{nexus.UserActive, nexus.UserInactive}[i%3/2],
					CreatedAt: t0.Add(time.Duration(i) * time.Second)})
			}
			if err := db.InsertUsers(ctx, us, "h"); err != nil {
				t.Fatalf("InsertUsers: %v", err)
			}
			applied, err := db.Migrate(ctx)
			if err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if diff := cmp.Diff(allVersions(t)[5:], applied); diff != "" {
				t.Errorf("Migrate applied (-want +got):\n%s", diff)
			}
			checkTotals(t, db, acme.ID, "after the migration")
			checkTotals(t, db, globex.ID, "after the migration")
			if _, err := updateUser(ctx, store.NewUsers(db), acme.ID, us[1].ID, users.Change{Status: ptr(nexus.UserInactive)}, t0); err != nil {
				t.Fatalf("UpdateUser: %v", err)
			}
			mustUser(t, db, acme.ID, "new@example.com")
			checkTotals(t, db, acme.ID, "after changes that followed the migration")
		})
	}
}
