package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// HasTable reports whether the database has a table called name. Only tests use it.
func (db *DB) HasTable(name string) bool { return db.gorm.Migrator().HasTable(name) }

// MigrationVersions lists the versions of every migration, in order (for the external tests).
func MigrationVersions() []int {
	out := make([]int, len(migrations))
	for i, m := range migrations {
		out[i] = m.version
	}
	return out
}

// MigrateTo applies the pending migrations up to version v only, as an older server would have.
func (db *DB) MigrateTo(ctx context.Context, v int) ([]int, error) {
	return db.migrate(ctx, migrations[:v])
}

// CountUsers counts the organization's users that match q's filters one by one, as ListUsers' total must.
func (db *DB) CountUsers(ctx context.Context, orgID string, q users.ListQuery) (int, error) {
	tx := db.gorm.WithContext(ctx).Model(&userRow{}).Where("organization_id = ?", orgID)
	if q.Status != "" {
		tx = tx.Where("status = ?", string(q.Status))
	}
	if q.Role != "" {
		tx = tx.Where("role = ?", string(q.Role))
	}
	var n int64
	err := tx.Count(&n).Error
	return int(n), err
}

// DeleteUser deletes a user (the API never does; the counters of the listing must follow anyway).
func (db *DB) DeleteUser(ctx context.Context, id string) error {
	return db.gorm.WithContext(ctx).Where("id = ?", id).Delete(&userRow{}).Error
}

// InsertUsers stores the users exactly as given, ids and creation times included (UpdatedAt defaults to
// CreatedAt), all with the one password hash, in one transaction of multi-row INSERTs of up to 1,000 rows.
// Tests use it to make creation-time ties and to seed large organizations fast.
func (db *DB) InsertUsers(ctx context.Context, us []nexus.User, passwordHash string) error {
	rows := make([]userRow, len(us))
	for i, u := range us {
		if u.UpdatedAt.IsZero() {
			u.UpdatedAt = u.CreatedAt
		}
		rows[i] = toUserRow(u, passwordHash)
	}
	return translate(db.transaction(ctx, func(tx *gorm.DB) error {
		return tx.CreateInBatches(rows, 1000).Error
	}))
}

// Analyze refreshes the planner's statistics: ANALYZE on SQLite; on PostgreSQL, VACUUM ANALYZE, repeated
// until every page of every table is marked all-visible (for at most 10 s), as index-only scans need. (On the
// test server, which commits asynchronously, one VACUUM right after a bulk insert leaves most pages unmarked,
// and the planner then prices index-only scans as if they visited the heap.)
func (db *DB) Analyze(ctx context.Context) error {
	if db.dialect != Postgres {
		_, err := db.sql.ExecContext(ctx, "ANALYZE")
		return translate(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := db.sql.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			return translate(err)
		}
		var notVisible int
		if err := db.sql.QueryRowContext(ctx, `SELECT count(*) FROM pg_class
			WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r' AND relallvisible < relpages`).
			Scan(&notVisible); err != nil {
			return translate(err)
		}
		if notVisible == 0 || time.Now().After(deadline) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// QueryPlan is one statement that a store method sent, and the database's plan for it.
type QueryPlan struct {
	SQL string // with the arguments written in
	// Plan is EXPLAIN (ANALYZE, BUFFERS) of SQL on PostgreSQL, EXPLAIN QUERY PLAN on SQLite.
	Plan string
	// GenericPlan is, on PostgreSQL only, EXPLAIN (ANALYZE, BUFFERS) of the statement prepared with its
	// placeholders and run with plan_cache_mode = force_generic_plan: the plan PostgreSQL may switch to after
	// five executions of a statement that pgx keeps prepared.
	GenericPlan string
}

// ExplainListUsers explains the statement ListUsers sends for q.
func (u *Users) ExplainListUsers(ctx context.Context, orgID string, q users.ListQuery) (QueryPlan, error) {
	org, _ := canonicalUUID(orgID)
	query, args := u.listUsersSQL(org, q, nil)
	p := QueryPlan{SQL: u.db.gorm.Dialector.Explain(query, args...)}
	var err error
	if u.db.dialect == Postgres {
		if p.Plan, err = u.db.pgExplain(ctx, query, args, false); err != nil {
			return p, err
		}
		p.GenericPlan, err = u.db.pgExplain(ctx, query, args, true)
		return p, err
	}
	p.Plan, err = u.db.sqliteExplain(ctx, query, args)
	return p, err
}

// pgExplain runs EXPLAIN (ANALYZE, BUFFERS) of the statement with its arguments written in, or, if generic, of
// the statement prepared with placeholders under plan_cache_mode = force_generic_plan.
func (db *DB) pgExplain(ctx context.Context, sql string, vars []any, generic bool) (string, error) {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	var lines []string
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		mode := pgx.QueryExecModeSimpleProtocol
		explain := "EXPLAIN (ANALYZE, BUFFERS) " + db.gorm.Dialector.Explain(sql, vars...)
		if generic {
			placeholders := make([]string, len(vars))
			for i := range vars {
				placeholders[i] = fmt.Sprintf("$%d", i+1)
			}
			defer func() {
				_, _ = c.Exec(context.Background(), "RESET plan_cache_mode", mode)
				_, _ = c.Exec(context.Background(), "DEALLOCATE store_test_plan", mode)
			}()
			for _, s := range []string{"SET plan_cache_mode = force_generic_plan", "PREPARE store_test_plan AS " + sql} {
				if _, err := c.Exec(ctx, s, mode); err != nil {
					return fmt.Errorf("%s: %w", s, err)
				}
			}
			explain = "EXPLAIN (ANALYZE, BUFFERS) " +
				db.gorm.Dialector.Explain("EXECUTE store_test_plan("+strings.Join(placeholders, ", ")+")", vars...)
		}
		rows, err := c.Query(ctx, explain, mode)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			lines = append(lines, line)
		}
		return rows.Err()
	})
	return strings.Join(lines, "\n"), err
}

// sqliteExplain runs EXPLAIN QUERY PLAN of the statement, and indents the plan's steps by depth.
func (db *DB) sqliteExplain(ctx context.Context, sql string, vars []any) (string, error) {
	rows, err := db.sql.QueryContext(ctx, "EXPLAIN QUERY PLAN "+sql, vars...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	depth := map[int]int{}
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			return "", err
		}
		depth[id] = depth[parent] + 1
		lines = append(lines, strings.Repeat("  ", depth[id]-1)+detail)
	}
	return strings.Join(lines, "\n"), rows.Err()
}

// Reopen opens the same database again through a pool of its own, as another process would (another node on
// PostgreSQL; an admin command beside the server on SQLite).
func (db *DB) Reopen(ctx context.Context) (*DB, error) {
	if db.dialect == Postgres {
		return Open(ctx, Options{URL: db.url})
	}
	var file string
	if err := db.sql.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
		return nil, err
	}
	return Open(ctx, Options{DataDir: strings.TrimSuffix(file, "/"+SQLiteFile)})
}

// RevocationLog returns the revocation log's numbers and session ids, in order.
func (db *DB) RevocationLog(ctx context.Context) (seqs []int64, ids []string, err error) {
	rows, err := db.sql.QueryContext(ctx, "SELECT seq, session_id FROM session_revocations ORDER BY seq")
	if err != nil {
		return nil, nil, err
	}
	return scanLog(rows)
}

// URL returns the PostgreSQL URL the database was opened with.
func (db *DB) URL() string { return db.url }

// PageStarts returns how many page starts the store remembers.
func (u *Users) PageStarts() int {
	u.pages.CleanUp()
	return u.pages.EstimatedSize()
}

// ExplainProcessBatch returns PostgreSQL's generic plan (EXPLAIN, not run) of the processor's batch statement.
func (db *DB) ExplainProcessBatch(ctx context.Context, limit int) (string, error) {
	var lines []string
	err := db.withPgx(ctx, func(c *pgx.Conn) error {
		mode := pgx.QueryExecModeSimpleProtocol
		defer func() {
			_, _ = c.Exec(context.Background(), "RESET plan_cache_mode", mode)
			_, _ = c.Exec(context.Background(), "DEALLOCATE store_test_batch", mode)
		}()
		for _, s := range []string{"SET plan_cache_mode = force_generic_plan",
			"PREPARE store_test_batch AS " + db.rebind(processBatchSQL(Postgres))} {
			if _, err := c.Exec(ctx, s, mode); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		rows, err := c.Query(ctx, fmt.Sprintf("EXPLAIN EXECUTE store_test_batch(%d)", limit), mode)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return err
			}
			lines = append(lines, line)
		}
		return rows.Err()
	})
	return strings.Join(lines, "\n"), err
}

// Exec runs a statement on the database, for tests that set up what the stores never write.
func (db *DB) Exec(ctx context.Context, q string) error {
	_, err := db.sql.ExecContext(ctx, q)
	return err
}

// ServiceSessionCount counts the service sessions of the client with the given row id, revoked and expired ones
// included.
func (db *DB) ServiceSessionCount(ctx context.Context, clientRef string) (int, error) {
	var n int64
	err := db.gorm.WithContext(ctx).Table("service_sessions").Where("client_ref = ?", clientRef).Count(&n).Error
	return int(n), err
}
