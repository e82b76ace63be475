package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlite "github.com/glebarez/go-sqlite"
)

// Backups of the embedded database. A backup is one self-contained SQLite file (no write-ahead log beside it),
// made by VACUUM INTO on a connection of its own: a read transaction, so it sees one consistent snapshot while
// the server goes on writing (in WAL mode readers and the writer do not wait for each other). PostgreSQL is
// backed up with its own tools (pg_dump, pg_restore; see the README).

// ErrNotSQLite is the refusal of a backup or restore of a PostgreSQL database.
var ErrNotSQLite = errors.New("nexus backup and nexus restore copy the embedded SQLite database only; " +
	"NEXUS_DATABASE_URL selects PostgreSQL: back it up with pg_dump -Fc and restore it with pg_restore " +
	"(see \"Backup, restore, upgrade and rollback\" in the README)")

// BackupInfo describes a backup file.
type BackupInfo struct {
	Path          string
	Size          int64
	SchemaVersion int
}

// SchemaVersion returns the highest migration version recorded in the database, 0 when it has none.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, db.sql)
}

func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		if strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "does not exist") {
			return 0, nil
		}
		return 0, fmt.Errorf("read the schema version: %w", err)
	}
	return int(v.Int64), nil
}

// BackupSQLite writes a consistent copy of the embedded database to target while the server may be running:
// VACUUM INTO a temporary file in target's directory, which is then checked (CheckSQLiteFile), flushed to disk
// and renamed to target. It refuses to replace an existing target unless force is set.
func (db *DB) BackupSQLite(ctx context.Context, target string, force bool) (BackupInfo, error) {
	if db.dialect != SQLite {
		return BackupInfo{}, ErrNotSQLite
	}
	target, err := filepath.Abs(target)
	if err != nil {
		return BackupInfo{}, err
	}
	if fi, err := os.Stat(target); err == nil {
		if fi.IsDir() {
			return BackupInfo{}, fmt.Errorf("%s is a directory; name the backup file", target)
		}
		if !force {
			return BackupInfo{}, fmt.Errorf("%s exists already; choose another name, or pass --force to replace it", target)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return BackupInfo{}, err
	}
	dir := filepath.Dir(target)
	// VACUUM INTO writes only a file that does not exist: reserve a unique name, then free it for SQLite.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(target)+".*.tmp")
	if err != nil {
		return BackupInfo{}, fmt.Errorf("create the backup in %s: %w", dir, err)
	}
	tmpPath := tmp.Name()
	_ = tmp.Close()
	_ = os.Remove(tmpPath)
	done := false
	defer func() {
		if !done {
			_ = os.Remove(tmpPath)
			_ = os.Remove(tmpPath + "-journal")
		}
	}()
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return BackupInfo{}, translate(err)
	}
	_, err = conn.ExecContext(ctx, "VACUUM INTO ?", tmpPath)
	_ = conn.Close()
	if err != nil {
		return BackupInfo{}, fmt.Errorf("VACUUM INTO %s: %w", tmpPath, translate(err))
	}
	// The backup holds what the database does (password hashes, sealed keys): readable by its owner only.
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		return BackupInfo{}, err
	}
	version, err := CheckSQLiteFile(ctx, tmpPath)
	if err != nil {
		return BackupInfo{}, fmt.Errorf("the backup just written fails its check: %w", err)
	}
	size, err := syncFile(tmpPath)
	if err != nil {
		return BackupInfo{}, err
	}
	if err := os.Rename(tmpPath, target); err != nil {
		return BackupInfo{}, err
	}
	done = true
	if err := syncDir(dir); err != nil {
		return BackupInfo{}, err
	}
	return BackupInfo{Path: target, Size: size, SchemaVersion: version}, nil
}

// CheckSQLiteFile checks that the file at path is a whole SQLite database of nexus (PRAGMA integrity_check
// answers ok, schema_migrations is readable), reading it only, and returns its schema version. It refuses a
// file with a write-ahead log beside it: that one is open, or was not closed cleanly, and the file alone may
// lack committed transactions.
func CheckSQLiteFile(ctx context.Context, path string) (int, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", path)
	}
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() > 0 {
		return 0, fmt.Errorf("%s has a write-ahead log beside it (%s-wal): it is in use or was not closed cleanly; "+
			"make the copy with nexus backup", path, path)
	}
	// immutable: nothing writes the file while it is checked, and SQLite creates no -wal or -shm beside it.
	c, err := sql.Open("sqlite", "file:"+path+"?mode=ro&immutable=1")
	if err != nil {
		return 0, err
	}
	defer c.Close()
	rows, err := c.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return 0, fmt.Errorf("%s: not a readable SQLite database: %w", path, err)
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			_ = rows.Close()
			return 0, err
		}
		problems = append(problems, s)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("%s: not a readable SQLite database: %w", path, err)
	}
	if len(problems) != 1 || problems[0] != "ok" {
		if len(problems) > 5 {
			problems = append(problems[:5], "…")
		}
		return 0, fmt.Errorf("%s: PRAGMA integrity_check: %s", path, strings.Join(problems, "; "))
	}
	v, err := schemaVersion(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if v == 0 {
		return 0, fmt.Errorf("%s: no schema_migrations: not a nexus database", path)
	}
	return v, nil
}

// SQLiteInUse reports whether a connection, of any process, has the database at path open: such as a running
// server's. It asks for an exclusive lock on the file without waiting; SQLite refuses it while any other
// connection is open (in WAL mode every connection holds a shared lock for as long as it is open). A server
// whose pool has closed every idle connection holds none, so stop the server first all the same. Closing
// the probe, the last connection, folds the write-ahead log into the file.
func SQLiteInUse(ctx context.Context, path string) (bool, error) {
	c, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_pragma=locking_mode(EXCLUSIVE)")
	if err != nil {
		return false, err
	}
	defer c.Close()
	var n int
	err = c.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n)
	var lite *sqlite.Error
	if errors.As(err, &lite) && (lite.Code()&0xff == sqliteBusy || lite.Code()&0xff == sqliteLocked) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return false, nil
}

// RestoreInfo describes a restore: the backup installed and where the database it replaced went.
type RestoreInfo struct {
	Path          string   // the database file now in place
	SchemaVersion int      // the backup's schema version
	MovedAside    []string // the replaced database's files, renamed
}

// RestoreSQLite installs the backup at from as the embedded database of dataDir: it checks the backup
// (CheckSQLiteFile; a schema newer than this binary's is refused), refuses while the current database is in
// use (SQLiteInUse), copies the backup beside it and flushes it to disk, moves the current database and its
// -wal and -shm files aside (suffix .replaced-TIMESTAMP), and renames the copy into place. The next start
// applies any migration the backup lacks.
func RestoreSQLite(ctx context.Context, dataDir, from string, now time.Time) (RestoreInfo, error) {
	version, err := CheckSQLiteFile(ctx, from)
	if err != nil {
		return RestoreInfo{}, err
	}
	if version > SchemaVersion() {
		return RestoreInfo{}, fmt.Errorf("%s: %w", from, &SchemaTooNewError{Database: version, Binary: SchemaVersion()})
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return RestoreInfo{}, fmt.Errorf("create data directory: %w", err)
	}
	live := filepath.Join(dataDir, SQLiteFile)
	if _, err := os.Stat(live); err == nil {
		inUse, err := SQLiteInUse(ctx, live)
		if err != nil {
			return RestoreInfo{}, err
		}
		if inUse {
			return RestoreInfo{}, fmt.Errorf("%s is in use (is a server running on NEXUS_DATA_DIR %s?): stop it, then restore", live, dataDir)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return RestoreInfo{}, err
	}

	tmp, err := os.CreateTemp(dataDir, "."+SQLiteFile+".restore-*.tmp")
	if err != nil {
		return RestoreInfo{}, err
	}
	tmpPath := tmp.Name()
	done := false
	defer func() {
		if !done {
			_ = os.Remove(tmpPath)
		}
	}()
	src, err := os.Open(from) // #nosec G304 -- the backup file the operator named
	if err != nil {
		_ = tmp.Close()
		return RestoreInfo{}, err
	}
	_, err = io.Copy(tmp, src)
	_ = src.Close()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return RestoreInfo{}, fmt.Errorf("copy %s into %s: %w", from, dataDir, err)
	}

	info := RestoreInfo{Path: live, SchemaVersion: version}
	suffix := ".replaced-" + now.UTC().Format("20060102T150405Z")
	// The log files first: a -wal left beside the restored file would be replayed into it.
	for _, ext := range []string{"-wal", "-shm", ""} {
		old := live + ext
		if _, err := os.Stat(old); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		aside := live + suffix + ext
		if err := os.Rename(old, aside); err != nil {
			return info, fmt.Errorf("move the current database aside: %w", err)
		}
		info.MovedAside = append(info.MovedAside, aside)
	}
	if err := os.Rename(tmpPath, live); err != nil {
		return info, fmt.Errorf("install the backup: %w", err)
	}
	done = true
	return info, syncDir(dataDir)
}

// syncFile flushes the file at path to disk and returns its size.
func syncFile(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0) // #nosec G304 -- a file this package just wrote
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// syncDir flushes a directory's entries (a rename) to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir) // #nosec G304 -- the directory of a file this package just renamed
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
