package store

// migration is one versioned schema change. Its SQL uses placeholders that each dialect fills in:
// {{uuid}}, {{ts}} (a timestamp with time zone), {{bytes}} and {{json}}; its statements are separated by ";".
// Statements that differ by database and contain ";" themselves (functions, triggers) go in dialect, each
// run whole, after sql; then post runs, split as sql is.
type migration struct {
	version int
	name    string
	sql     string
	dialect map[Dialect][]string
	post    string
}

// migrations lists every schema change in order. Never edit one that has shipped; add a new one.
var migrations = []migration{
	{version: 1, name: "auth", sql: `
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
	{version: 2, name: "user listing indexes", sql: `
CREATE INDEX users_organization ON users (organization_id);
CREATE INDEX users_organization_status_created ON users (organization_id, status, created_at, id);
CREATE INDEX users_organization_role_created ON users (organization_id, role, created_at, id);
CREATE INDEX users_organization_status_role_created ON users (organization_id, status, role, created_at, id);
`},
	// User management is audited next to logins: who (actor_user_id) changed what (detail) of whom (user_id).
	{version: 3, name: "audit actors", sql: `
ALTER TABLE auth_events ADD COLUMN actor_user_id {{uuid}};
ALTER TABLE auth_events ADD COLUMN detail TEXT;
`},
	// Analytics: events (unique per organization and client event id), the backlog the processor consumes
	// (written in the ingest transaction, deleted in the processing one), and the rollups it maintains.
	{version: 4, name: "analytics", sql: `
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
	{version: 5, name: "session roles", sql: `
ALTER TABLE refresh_sessions ADD COLUMN role TEXT;
UPDATE refresh_sessions SET role = (SELECT role FROM users WHERE users.id = refresh_sessions.user_id);
`},
	// Listing users reads its total from counters, one per organization, role and status, instead of counting
	// the matching users (which costs milliseconds of CPU at 100,000 users). Triggers keep the counters in the
	// transaction of every statement that adds, changes or removes users, whichever code (or server version)
	// sends it. Each counter also counts the changes of its membership (changes): the version of a listing's
	// pages (see pageCache). The counters start from the users already stored: on PostgreSQL, CREATE TRIGGER locks users
	// against writes (SHARE ROW EXCLUSIVE) until the migration commits, so no user is missed or counted twice.
	{version: 6, name: "user counts", sql: `
CREATE TABLE user_counts (
	organization_id {{uuid}} NOT NULL,
	role TEXT NOT NULL,
	status TEXT NOT NULL,
	count BIGINT NOT NULL,
	changes BIGINT NOT NULL,
	PRIMARY KEY (organization_id, role, status)
)`, dialect: map[Dialect][]string{
		// Statement-level triggers see every row a statement changed at once (transition tables): one upsert
		// per statement, its rows in key order so that concurrent statements lock counters in the same order.
		Postgres: {`
CREATE FUNCTION user_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'INSERT' THEN
		INSERT INTO user_counts (organization_id, role, status, count, changes)
		SELECT organization_id, role, status, count(*), count(*) FROM new_users
		GROUP BY organization_id, role, status ORDER BY organization_id, role, status
		ON CONFLICT (organization_id, role, status) DO UPDATE
		SET count = user_counts.count + EXCLUDED.count, changes = user_counts.changes + EXCLUDED.changes;
	ELSIF TG_OP = 'DELETE' THEN
		INSERT INTO user_counts (organization_id, role, status, count, changes)
		SELECT organization_id, role, status, -count(*), count(*) FROM old_users
		GROUP BY organization_id, role, status ORDER BY organization_id, role, status
		ON CONFLICT (organization_id, role, status) DO UPDATE
		SET count = user_counts.count + EXCLUDED.count, changes = user_counts.changes + EXCLUDED.changes;
	ELSE
		-- Rows that moved between counters (organization, role or status changed): both counters' changes move
		-- on, whatever the net count, so that a listing's version sees every change of its membership.
		INSERT INTO user_counts (organization_id, role, status, count, changes)
		SELECT organization_id, role, status, sum(n), count(*) FROM (
			SELECT n.organization_id, n.role, n.status, 1 AS n FROM new_users n JOIN old_users o ON o.id = n.id
			WHERE (n.organization_id, n.role, n.status) IS DISTINCT FROM (o.organization_id, o.role, o.status)
			UNION ALL SELECT o.organization_id, o.role, o.status, -1 FROM old_users o JOIN new_users n ON n.id = o.id
			WHERE (n.organization_id, n.role, n.status) IS DISTINCT FROM (o.organization_id, o.role, o.status)) d
		GROUP BY organization_id, role, status ORDER BY organization_id, role, status
		ON CONFLICT (organization_id, role, status) DO UPDATE
		SET count = user_counts.count + EXCLUDED.count, changes = user_counts.changes + EXCLUDED.changes;
	END IF;
	RETURN NULL;
END $$`,
			`CREATE TRIGGER users_count_insert AFTER INSERT ON users REFERENCING NEW TABLE AS new_users
	FOR EACH STATEMENT EXECUTE FUNCTION user_counts_add()`,
			`CREATE TRIGGER users_count_update AFTER UPDATE ON users REFERENCING OLD TABLE AS old_users NEW TABLE AS new_users
	FOR EACH STATEMENT EXECUTE FUNCTION user_counts_add()`,
			`CREATE TRIGGER users_count_delete AFTER DELETE ON users REFERENCING OLD TABLE AS old_users
	FOR EACH STATEMENT EXECUTE FUNCTION user_counts_add()`,
		},
		SQLite: {`
CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN
	INSERT INTO user_counts (organization_id, role, status, count, changes) VALUES (NEW.organization_id, NEW.role, NEW.status, 1, 1)
	ON CONFLICT (organization_id, role, status) DO UPDATE SET count = count + 1, changes = changes + 1;
END`, `
CREATE TRIGGER users_count_update AFTER UPDATE OF organization_id, role, status ON users
WHEN OLD.organization_id IS NOT NEW.organization_id OR OLD.role IS NOT NEW.role OR OLD.status IS NOT NEW.status BEGIN
	UPDATE user_counts SET count = count - 1, changes = changes + 1
	WHERE organization_id = OLD.organization_id AND role = OLD.role AND status = OLD.status;
	INSERT INTO user_counts (organization_id, role, status, count, changes) VALUES (NEW.organization_id, NEW.role, NEW.status, 1, 1)
	ON CONFLICT (organization_id, role, status) DO UPDATE SET count = count + 1, changes = changes + 1;
END`, `
CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN
	UPDATE user_counts SET count = count - 1, changes = changes + 1
	WHERE organization_id = OLD.organization_id AND role = OLD.role AND status = OLD.status;
END`,
		},
	}, post: `
INSERT INTO user_counts (organization_id, role, status, count, changes)
SELECT organization_id, role, status, count(*), 0 FROM users GROUP BY organization_id, role, status
`},
	// The revocation log: every transaction that revokes sessions takes the next numbers from the one-row
	// counter, which it holds until it commits, so numbers are given out in commit order with no gaps, and
	// appends one row per session. Nodes read it from the last number they applied (see revocations.go).
	{version: 7, name: "session revocation log", sql: `
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
	// The processor takes the backlog in the order of its primary key (UUIDv7 ids sort by creation time, which
	// is the receive time), so the index on received_at only cost every ingested event a third index entry.
	// Backlog's MIN(received_at) scans the backlog instead, which is small unless the processor lags.
	{version: 8, name: "event backlog without the received_at index", sql: `
DROP INDEX event_backlog_received;
`},
	// Service clients (issue 15): a client whose scopes are not NULL is a confidential client of one
	// organization that acts for itself (the client credentials grant) with those scopes, in the space-separated
	// form of nexus.PermissionSet ("" grants nothing); clients registered before keep NULL and stay login clients.
	// Its secrets are stored as keyed hashes only. Every access token it is issued has a service session, which
	// is revoked through the revocation log; the last token issued with a secret tells when it was last used.
	{version: 9, name: "service clients", sql: `
ALTER TABLE clients ADD COLUMN scopes TEXT;
CREATE TABLE client_secrets (
	id {{uuid}} PRIMARY KEY,
	client_ref {{uuid}} NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	hash {{bytes}} NOT NULL,
	hint TEXT NOT NULL,
	created_at {{ts}} NOT NULL,
	expires_at {{ts}},
	revoked_at {{ts}}
);
CREATE INDEX client_secrets_client ON client_secrets (client_ref);
CREATE TABLE service_sessions (
	id {{uuid}} PRIMARY KEY,
	client_ref {{uuid}} NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	client_id TEXT NOT NULL,
	secret_id {{uuid}} NOT NULL,
	organization_id {{uuid}} NOT NULL,
	scopes TEXT NOT NULL,
	created_at {{ts}} NOT NULL,
	expires_at {{ts}} NOT NULL,
	revoked_at {{ts}},
	revoked_reason TEXT
);
CREATE INDEX service_sessions_client_expires ON service_sessions (client_ref, expires_at);
CREATE INDEX service_sessions_secret_created ON service_sessions (secret_id, created_at);
`},
	// Client authentication costs the same for a client_id that is not registered: Credentials then reads this
	// decoy (client_id "", which no request can name: every client_id is at least one character), a disabled
	// service client with two secrets whose hashes no secret has, so that an unknown client and a registered one
	// read and scan the same rows (see Clients.Credentials).
	{version: 10, name: "decoy client", sql: `
INSERT INTO clients (id, client_id, name, organization_id, disabled_at, scopes, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-000000000000', '', 'decoy', NULL, '2000-01-01 00:00:00+00:00', '', '2000-01-01 00:00:00+00:00', '2000-01-01 00:00:00+00:00')
`, dialect: map[Dialect][]string{
		Postgres: {`INSERT INTO client_secrets (id, client_ref, hash, hint, created_at) VALUES
('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000000', decode(repeat('00', 32), 'hex'), '....', '2000-01-01 00:00:00+00:00'),
('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000000', decode(repeat('00', 32), 'hex'), '....', '2000-01-01 00:00:00+00:00')`},
		SQLite: {`INSERT INTO client_secrets (id, client_ref, hash, hint, created_at) VALUES
('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000000', zeroblob(32), '....', '2000-01-01 00:00:00+00:00'),
('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000000', zeroblob(32), '....', '2000-01-01 00:00:00+00:00')`},
	}},
	// Rotating NEXUS_SECRET_KEY (issue 16): a refresh session records the id of the secret key that made its newest
	// refresh token, a client secret the id of the key it is hashed under (nexus.SecretKeyID), so that what still
	// depends on a previous key can be counted. Rows made before have none (NULL); a server started without a
	// previous key labels them with its own (every usable row was made with it), through the partial indexes,
	// which stay empty once that is done. Signing keys need no label: which key opens one tells.
	{version: 11, name: "secret key ids", sql: `
ALTER TABLE refresh_sessions ADD COLUMN key_id TEXT;
ALTER TABLE client_secrets ADD COLUMN key_id TEXT;
CREATE INDEX refresh_sessions_key_unset ON refresh_sessions (id) WHERE key_id IS NULL;
CREATE INDEX client_secrets_key_unset ON client_secrets (id) WHERE key_id IS NULL;
`},
	// Events that stay fast as they grow (issue 17): on PostgreSQL, events is partitioned by the day (UTC) of
	// received_at, the server's clock, so that partitions can be made ahead (see events_partitions.go) and
	// NEXUS_EVENT_RETENTION drops whole days. A partitioned table has no unique index without the partition key,
	// so deduplication moves to event_keys, which also holds what a duplicate's receipt and the 409 need. The
	// rows of the old table are copied into one partition per day they were received on, indexes built after the
	// copy; the partitions of today and the next 7 days are made too. SQLite keeps its table (retention deletes
	// in batches there).
	{version: 12, name: "events partitioned by day", dialect: map[Dialect][]string{Postgres: {
		`ALTER TABLE events RENAME TO events_v11`,
		`CREATE TABLE events (
	id uuid NOT NULL,
	organization_id uuid NOT NULL,
	event_id uuid NOT NULL,
	user_id uuid NOT NULL,
	event_name TEXT NOT NULL,
	event_category TEXT NOT NULL,
	source TEXT,
	properties json NOT NULL,
	occurred_at timestamptz NOT NULL,
	received_at timestamptz NOT NULL,
	fingerprint TEXT NOT NULL
) PARTITION BY RANGE (received_at)`,
		`CREATE TABLE event_keys (
	organization_id uuid NOT NULL,
	event_id uuid NOT NULL,
	id uuid NOT NULL,
	received_at timestamptz NOT NULL,
	occurred_at timestamptz NOT NULL,
	fingerprint TEXT NOT NULL
)`,
		`DO $$
DECLARE day timestamp;
BEGIN
	FOR day IN
		SELECT DISTINCT date_trunc('day', received_at AT TIME ZONE 'UTC') FROM events_v11
		UNION SELECT generate_series(date_trunc('day', now() AT TIME ZONE 'UTC'), date_trunc('day', now() AT TIME ZONE 'UTC') + interval '7 days', interval '1 day')
	LOOP
		EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)', 'events_p' || to_char(day, 'YYYYMMDD'),
			to_char(day, 'YYYY-MM-DD') || ' 00:00:00+00', to_char(day + interval '1 day', 'YYYY-MM-DD') || ' 00:00:00+00');
	END LOOP;
END $$`,
		`INSERT INTO events (` + eventColumns + `) SELECT ` + eventColumns + ` FROM events_v11`,
		`INSERT INTO event_keys (organization_id, event_id, id, received_at, occurred_at, fingerprint)
SELECT organization_id, event_id, id, received_at, occurred_at, fingerprint FROM events_v11`,
		`DROP TABLE events_v11`,
		// A unique index rather than a primary key: pg_restore --clean cannot drop a partition's inherited
		// primary key constraint (as `nexus restore` and the README's restore run it), while the index's
		// partitions go with it.
		`CREATE UNIQUE INDEX events_id_received ON events (id, received_at)`,
		`CREATE INDEX events_organization_occurred ON events (organization_id, occurred_at, id)`,
		`CREATE INDEX events_organization_user_occurred ON events (organization_id, user_id, occurred_at, id)`,
		`ALTER TABLE event_keys ADD PRIMARY KEY (organization_id, event_id)`,
	}}},
}
