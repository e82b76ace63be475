package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

func (db *DB) render(sql string) string {
	r := strings.NewReplacer("{{uuid}}", "TEXT", "{{ts}}", "DATETIME", "{{bytes}}", "BLOB", "{{json}}", "TEXT")
	if db.dialect == Postgres {
		r = strings.NewReplacer("{{uuid}}", "uuid", "{{ts}}", "timestamptz", "{{bytes}}", "bytea", "{{json}}", "json")
	}
	return r.Replace(sql)
}

// Migrate applies every pending migration in one transaction, and returns the versions it applied. Several
// servers starting at once against one PostgreSQL database take turns on an advisory lock. Migrations are
// forward-only: a database that a newer binary migrated past this binary's last version is refused with a
// *SchemaTooNewError, and nothing is changed.
func (db *DB) Migrate(ctx context.Context) ([]int, error) { return db.migrate(ctx, migrations) }

// SchemaVersion is the schema version this binary's migrations bring a database to: the last one's.
func SchemaVersion() int { return migrations[len(migrations)-1].version }

// SchemaTooNewError is Migrate's refusal of a database whose schema a newer binary migrated: this binary does
// not know what the newer migrations changed, so it must not serve the database. Run the newer binary again,
// or restore the backup taken before the upgrade (see the README's "Backup, restore, upgrade and rollback").
type SchemaTooNewError struct {
	Database int // the highest version recorded in the database's schema_migrations
	Binary   int // the last version this binary knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("the database schema is at version %d, newer than this binary's %d: a newer nexus has "+
		"migrated it and migrations are forward-only; run that newer binary, or to roll back restore the backup "+
		"taken before the upgrade and then start this one", e.Database, e.Binary)
}

// migrate applies the pending migrations of ms.
func (db *DB) migrate(ctx context.Context, ms []migration) ([]int, error) {
	var applied []int
	err := db.transaction(ctx, func(tx *gorm.DB) error {
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
		known := ms[len(ms)-1].version
		for _, v := range done {
			have[v] = true
			if v > known {
				return &SchemaTooNewError{Database: slices.Max(done), Binary: known}
			}
		}
		for _, m := range ms {
			if have[m.version] {
				continue
			}
			stmts := strings.Split(db.render(m.sql), ";")
			stmts = append(stmts, m.dialect[db.dialect]...)
			stmts = append(stmts, strings.Split(db.render(m.post), ";")...)
			for _, stmt := range stmts {
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
	if tooNew := (*SchemaTooNewError)(nil); errors.As(err, &tooNew) {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", translate(err))
	}
	return applied, nil
}
