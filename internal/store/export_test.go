package store

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
