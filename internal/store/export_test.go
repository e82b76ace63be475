package store

// HasTable reports whether the database has a table called name. Only tests use it.
func (db *DB) HasTable(name string) bool { return db.gorm.Migrator().HasTable(name) }
