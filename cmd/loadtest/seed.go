package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// password is every seeded user's password.
const password = "loadtest passphrase 0123456789"

// clientID is the client every login and refresh names.
const clientID = "nexus-loadtest"

// user is a seeded user.
type user struct {
	id, email string
	role      nexus.Role
	status    nexus.UserStatus
}

// org is a seeded organization: its admin, made with `nexus user create`, and every user (the admin last,
// being the newest).
type org struct {
	name  string
	id    string
	admin user
	users []user
}

// active returns the organization's active users, the admin first.
func (o *org) active() []user {
	out := []user{o.admin}
	for _, u := range o.users {
		if u.status == nexus.UserActive && u.id != o.admin.id {
			out = append(out, u)
		}
	}
	return out
}

// seedAdmin creates, with the server's admin commands, an organization and its admin.
func seedAdmin(ctx context.Context, bin string, env []string, name, domain string) (*org, error) {
	var o struct{ ID string }
	if err := cli(ctx, bin, env, "", &o, "org", "create", "--name", name); err != nil {
		return nil, err
	}
	admin := user{email: "admin@" + domain, role: nexus.RoleAdmin, status: nexus.UserActive}
	var u struct{ ID string }
	if err := cli(ctx, bin, env, password+"\n", &u, "user", "create", "--org", o.ID, "--email", admin.email,
		"--role", string(admin.role), "--name", "Load Test Admin", "--password-stdin"); err != nil {
		return nil, err
	}
	admin.id = u.ID
	return &org{name: name, id: o.ID, admin: admin, users: []user{admin}}, nil
}

// seedPostgres seeds the PostgreSQL database: the schema (`nexus migrate`), the client and the two
// organizations with their admins through the server's admin commands, then the members of both (big and
// small users in all, admins included) with one COPY into users, and VACUUM ANALYZE, as autovacuum would after
// a bulk load. The members' roles are about 1% admin, 9% manager, 20% analyst and 70% member, and about 10% are
// inactive; their sign-ups interleave in time, the small organization's spread among the big one's. Every member
// shares one argon2id hash of password made by the server's own auth.HashPassword (hash).
func seedPostgres(ctx context.Context, bin string, env []string, dbURL string, big, small int, hash string) (bigOrg, smallOrg *org, err error) {
	if err := cli(ctx, bin, env, "", nil, "migrate"); err != nil {
		return nil, nil, err
	}
	if err := cli(ctx, bin, env, "", &struct{}{}, "client", "create", "--client-id", clientID, "--name", "Load test"); err != nil {
		return nil, nil, err
	}
	if bigOrg, err = seedAdmin(ctx, bin, env, "Load test: big", "big.example.com"); err != nil {
		return nil, nil, err
	}
	if smallOrg, err = seedAdmin(ctx, bin, env, "Load test: small", "small.example.com"); err != nil {
		return nil, nil, err
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	r := rand.New(rand.NewPCG(1, 2)) // #nosec G404 -- a reproducible mix of roles and statuses, nothing secret
	n := big - 1 + small - 1
	every := n / max(1, small-1) // every n-th sign-up is the small organization's
	base := time.Now().UTC().Add(-time.Duration(n+1) * 17 * time.Second).Truncate(time.Microsecond)
	bigMembers, smallMembers := make([]user, 0, big), make([]user, 0, small)
	rows := make([][]any, 0, n)
	for i := range n {
		o, members, domain := bigOrg, &bigMembers, "big.example.com"
		smallTurn := small > 1 && i%every == every-1 && len(smallMembers) < small-1
		if smallTurn || len(bigMembers) == big-1 {
			o, members, domain = smallOrg, &smallMembers, "small.example.com"
		}
		u := user{role: nexus.RoleMember, status: nexus.UserActive}
		switch p := r.IntN(100); {
		case p < 1:
			u.role = nexus.RoleAdmin
		case p < 10:
			u.role = nexus.RoleManager
		case p < 30:
			u.role = nexus.RoleAnalyst
		}
		if r.IntN(10) == 0 {
			u.status = nexus.UserInactive
		}
		id := uuid.Must(uuid.NewV7())
		u.id = id.String()
		u.email = fmt.Sprintf("u%06d@%s", i, domain)
		*members = append(*members, u)
		created := base.Add(time.Duration(i) * 17 * time.Second)
		rows = append(rows, []any{[16]byte(id), [16]byte(uuid.MustParse(o.id)), u.email, nexus.NormalizeEmail(u.email),
			fmt.Sprintf("User %06d", i), string(u.role), string(u.status), hash, created, created})
	}
	cols := []string{"id", "organization_id", "email", "email_key", "name", "role", "status", "password_hash", "created_at", "updated_at"}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"users"}, cols, pgx.CopyFromRows(rows)); err != nil {
		return nil, nil, fmt.Errorf("copy users: %w", err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return nil, nil, fmt.Errorf("vacuum analyze: %w", err)
	}
	bigOrg.users = append(bigMembers, bigOrg.admin)
	smallOrg.users = append(smallMembers, smallOrg.admin)
	return bigOrg, smallOrg, nil
}
