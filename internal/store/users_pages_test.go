package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// TestListUsersPageStarts: on PostgreSQL a store remembers where pages start and reads a deep page from there
// while the listing's membership is unchanged. Whatever changes in between (new users, role and status changes
// before and after the page), every page equals the one a store that remembers nothing reads by offset.
func TestListUsersPageStarts(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres)
	org := mustOrg(t, db, "Acme")
	roles := nexus.Roles()
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var us []nexus.User
	for i := range 400 {
		status := nexus.UserActive
		if i%7 == 0 {
			status = nexus.UserInactive
		}
		// Every third user shares its creation time with the one before: the order falls back to the id.
		us = append(us, nexus.User{ID: uuid.NewString(), OrganizationID: org.ID, Email: fmt.Sprintf("u%03d@example.com", i),
			Name: "U", Role: roles[i%len(roles)], Status: status, CreatedAt: base.Add(time.Duration(i-i/3) * time.Second)})
	}
	if err := db.InsertUsers(ctx, us, "hash"); err != nil {
		t.Fatal(err)
	}
	remembering := store.NewUsers(db)
	check := func(what string, q users.ListQuery) {
		t.Helper()
		got, gotTotal, err := remembering.ListUsers(ctx, org.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		want, wantTotal, err := store.NewUsers(db).ListUsers(ctx, org.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		if gotTotal != wantTotal {
			t.Fatalf("%s %+v: total %d, want %d", what, q, gotTotal, wantTotal)
		}
		if diff := cmp.Diff(want, got, equalTimes); diff != "" {
			t.Fatalf("%s %+v: page differs from the page read by offset (-want +got):\n%s", what, q, diff)
		}
	}
	member := users.ListQuery{Role: nexus.RoleMember, Limit: 20, Offset: 40}
	check("first read", member)
	check("from the remembered start", member)
	if remembering.PageStarts() == 0 {
		t.Fatal("no page start remembered")
	}
	// A member listed before the page becomes an analyst: every later member moves up one place.
	var early nexus.User
	for _, u := range us {
		if u.Role == nexus.RoleMember {
			early = u
			break
		}
	}
	analyst := nexus.RoleAnalyst
	if _, err := updateUser(ctx, store.NewUsers(db), org.ID, early.ID, users.Change{Role: &analyst}, base); err != nil {
		t.Fatal(err)
	}
	check("after a change before the page", member)

	// Paging through every filter in order, with changes in between.
	rng := rand.New(rand.NewPCG(1, 2))
	filters := []users.ListQuery{{}, {Status: nexus.UserActive}, {Status: nexus.UserInactive}, {Role: nexus.RoleMember},
		{Role: nexus.RoleAdmin, Status: nexus.UserActive}}
	for round := range 3 {
		for fi, f := range filters {
			for off := 0; off < 420; off += 30 {
				q := f
				q.Limit, q.Offset = 30, off
				check(fmt.Sprintf("round %d", round), q)
				if rng.IntN(10) == 0 {
					u := us[rng.IntN(len(us))]
					role, status := roles[rng.IntN(len(roles))], nexus.UserActive
					if rng.IntN(2) == 0 {
						status = nexus.UserInactive
					}
					if _, err := updateUser(ctx, store.NewUsers(db), org.ID, u.ID, users.Change{Role: &role, Status: &status}, base); err != nil &&
						!errors.Is(err, users.ErrLastAdmin) {
						t.Fatal(err)
					}
				}
				if rng.IntN(15) == 0 {
					mustUser(t, db, org.ID, fmt.Sprintf("new%d-%d-%d@example.com", round, fi, off))
				}
			}
		}
	}
}
