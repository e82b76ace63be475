package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// migration is one versioned schema change. Its SQL uses placeholders that each dialect fills in:
// {{uuid}}, {{ts}} (a timestamp with time zone), {{bytes}} and {{json}}.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists every schema change in order. Never edit one that has shipped; add a new one.
var migrations = []migration{
	{1, "auth", `
CREATE TABLE organizations (
	id {{uuid}} PRIMARY KEY,
	name TEXT NOT NULL,
	created_at {{ts}} NOT NULL,
	updated_at {{ts}} NOT NULL
);
CREATE TABLE users (
	id {{uuid}} PRIMARY KEY,
	organization_id {{uuid}} NOT NULL REFERENCES organizations (id),
	email TEXT NOT NULL,
	email_key TEXT NOT NULL,
	name TEXT NOT NULL,
	role TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'analyst', 'member')),
	status TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
	password_hash TEXT NOT NULL,
	created_at {{ts}} NOT NULL,
	updated_at {{ts}} NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email_key);
CREATE INDEX users_organization_created ON users (organization_id, created_at, id);
CREATE TABLE clients (
	id {{uuid}} PRIMARY KEY,
	client_id TEXT NOT NULL,
	name TEXT NOT NULL,
	organization_id {{uuid}} REFERENCES organizations (id),
	disabled_at {{ts}},
	created_at {{ts}} NOT NULL,
	updated_at {{ts}} NOT NULL
);
CREATE UNIQUE INDEX clients_client_id ON clients (client_id);
CREATE TABLE refresh_sessions (
	id {{uuid}} PRIMARY KEY,
	user_id {{uuid}} NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	organization_id {{uuid}} NOT NULL REFERENCES organizations (id),
	client_id TEXT NOT NULL,
	device_id TEXT,
	salt {{bytes}} NOT NULL,
	generation BIGINT NOT NULL,
	rotated_at {{ts}},
	created_at {{ts}} NOT NULL,
	last_used_at {{ts}} NOT NULL,
	expires_at {{ts}} NOT NULL,
	revoked_at {{ts}},
	revoked_reason TEXT
);
CREATE INDEX refresh_sessions_user ON refresh_sessions (user_id);
CREATE TABLE signing_keys (
	id TEXT PRIMARY KEY,
	algorithm TEXT NOT NULL,
	public_jwk TEXT NOT NULL,
	sealed_private_key {{bytes}} NOT NULL,
	created_at {{ts}} NOT NULL,
	active_from {{ts}} NOT NULL
);
CREATE TABLE auth_events (
	id {{uuid}} PRIMARY KEY,
	occurred_at {{ts}} NOT NULL,
	action TEXT NOT NULL,
	result TEXT NOT NULL,
	user_id {{uuid}},
	organization_id {{uuid}},
	client_id TEXT,
	email_hash TEXT,
	socket_ip TEXT,
	reported_ip TEXT,
	device_id TEXT,
	user_agent TEXT,
	session_id {{uuid}}
);
CREATE INDEX auth_events_user ON auth_events (user_id, occurred_at);
CREATE INDEX auth_events_organization ON auth_events (organization_id, occurred_at);
CREATE INDEX auth_events_email_hash ON auth_events (email_hash, occurred_at);
`},
	// Listing users: each filter combination pages in index order and counts from an index alone (see
	// BenchmarkListUsers for the plans); users_organization keeps the unfiltered count small.
	{2, "user listing indexes", `
CREATE INDEX users_organization ON users (organization_id);
CREATE INDEX users_organization_status_created ON users (organization_id, status, created_at, id);
CREATE INDEX users_organization_role_created ON users (organization_id, role, created_at, id);
CREATE INDEX users_organization_status_role_created ON users (organization_id, status, role, created_at, id);
`},
	// User management is audited next to logins: who (actor_user_id) changed what (detail) of whom (user_id).
	{3, "audit actors", `
ALTER TABLE auth_events ADD COLUMN actor_user_id {{uuid}};
ALTER TABLE auth_events ADD COLUMN detail TEXT;
`},
	// Analytics: events (unique per organization and client event id), the backlog the processor consumes
	// (written in the ingest transaction, deleted in the processing one), and the rollups it maintains.
	{4, "analytics", `
CREATE TABLE events (
	id {{uuid}} PRIMARY KEY,
	organization_id {{uuid}} NOT NULL,
	event_id {{uuid}} NOT NULL,
	user_id {{uuid}} NOT NULL,
	event_name TEXT NOT NULL,
	event_category TEXT NOT NULL,
	source TEXT,
	properties {{json}} NOT NULL,
	occurred_at {{ts}} NOT NULL,
	received_at {{ts}} NOT NULL,
	fingerprint TEXT NOT NULL
);
CREATE UNIQUE INDEX events_organization_event_id ON events (organization_id, event_id);
CREATE INDEX events_organization_occurred ON events (organization_id, occurred_at, id);
CREATE INDEX events_organization_user_occurred ON events (organization_id, user_id, occurred_at, id);
CREATE TABLE event_backlog (
	id {{uuid}} PRIMARY KEY,
	organization_id {{uuid}} NOT NULL,
	user_id {{uuid}} NOT NULL,
	event_name TEXT NOT NULL,
	event_category TEXT NOT NULL,
	occurred_at {{ts}} NOT NULL,
	received_at {{ts}} NOT NULL
);
CREATE INDEX event_backlog_received ON event_backlog (received_at);
CREATE TABLE event_daily_counts (
	organization_id {{uuid}} NOT NULL,
	day TEXT NOT NULL,
	event_name TEXT NOT NULL,
	event_category TEXT NOT NULL,
	count BIGINT NOT NULL,
	PRIMARY KEY (organization_id, day, event_name, event_category)
);
CREATE TABLE user_event_stats (
	user_id {{uuid}} PRIMARY KEY,
	organization_id {{uuid}} NOT NULL,
	total BIGINT NOT NULL,
	last_event_at {{ts}} NOT NULL
);
CREATE TABLE user_event_days (
	user_id {{uuid}} NOT NULL,
	organization_id {{uuid}} NOT NULL,
	day TEXT NOT NULL,
	count BIGINT NOT NULL,
	PRIMARY KEY (user_id, day)
);
`},
	// A session records the role its access tokens carry, so that verification compares the token's role claim
	// with it. Role changes revoke every session, so a live session's user still has the role it was started
	// with.
	{5, "session roles", `
ALTER TABLE refresh_sessions ADD COLUMN role TEXT;
UPDATE refresh_sessions SET role = (SELECT role FROM users WHERE users.id = refresh_sessions.user_id);
`},
	// The revocation log: every transaction that revokes sessions takes the next numbers from the one-row
	// counter, which it holds until it commits, so numbers are given out in commit order with no gaps, and
	// appends one row per session. Nodes read it from the last number they applied (see revocations.go).
	{6, "session revocation log", `
CREATE TABLE revocation_counter (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	seq BIGINT NOT NULL
);
INSERT INTO revocation_counter (id, seq) VALUES (1, 0);
CREATE TABLE session_revocations (
	seq BIGINT PRIMARY KEY,
	session_id {{uuid}} NOT NULL,
	revoked_at {{ts}} NOT NULL
);
CREATE INDEX session_revocations_revoked_at ON session_revocations (revoked_at);
`},
}

func (db *DB) render(sql string) string {
	r := strings.NewReplacer("{{uuid}}", "TEXT", "{{ts}}", "DATETIME", "{{bytes}}", "BLOB", "{{json}}", "TEXT")
	if db.dialect == Postgres {
		r = strings.NewReplacer("{{uuid}}", "uuid", "{{ts}}", "timestamptz", "{{bytes}}", "bytea", "{{json}}", "json")
	}
	return r.Replace(sql)
}

// Migrate applies every pending migration in one transaction, and returns the versions it applied. Several
// servers starting at once against one PostgreSQL database take turns on an advisory lock.
func (db *DB) Migrate(ctx context.Context) ([]int, error) {
	var applied []int
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if db.dialect == Postgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(8723461)").Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(db.render(`CREATE TABLE IF NOT EXISTS schema_migrations (
	version INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at {{ts}} NOT NULL)`)).Error; err != nil {
			return err
		}
		var done []int
		if err := tx.Raw("SELECT version FROM schema_migrations").Scan(&done).Error; err != nil {
			return err
		}
		have := make(map[int]bool, len(done))
		for _, v := range done {
			have[v] = true
		}
		for _, m := range migrations {
			if have[m.version] {
				continue
			}
			for _, stmt := range strings.Split(db.render(m.sql), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
				}
			}
			if err := tx.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
				m.version, m.name, time.Now().UTC()).Error; err != nil {
				return err
			}
			applied = append(applied, m.version)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", translate(err))
	}
	return applied, nil
}
