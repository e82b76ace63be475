package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
)

// Events implements analytics.Store. Its hot paths (ingest and processing) use database/sql directly, with
// multi-row statements, on the same pool GORM uses.
type Events struct{ db *DB }

var _ analytics.Store = (*Events)(nil)

// NewEvents returns the events store over db.
func NewEvents(db *DB) *Events { return &Events{db: db} }

// Rows per multi-row statement: within both databases' limits on bound parameters (SQLite 32,766).
const insertChunk = 500

// rebind turns ? placeholders into PostgreSQL's $n.
func (db *DB) rebind(q string) string {
	if db.dialect != Postgres {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// placeholders returns "?,?,?" for n values.
func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

// values returns "(?,?,?),(?,?,?)" for rows rows of cols columns.
func values(rows, cols int) string {
	one := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// tx runs fn in a database/sql transaction (in a "transaction" span when tracing is on).
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	return db.tracer.tx(ctx, func(ctx context.Context) error {
		tx, err := db.sql.BeginTx(ctx, nil)
		if err != nil {
			return translate(err)
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return translate(err)
		}
		return translate(tx.Commit())
	})
}

// transaction runs fn in a GORM transaction (in a "transaction" span when tracing is on, the parent of the
// spans of fn's statements).
func (db *DB) transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.tracer.tx(ctx, func(ctx context.Context) error {
		return db.gorm.WithContext(ctx).Transaction(fn)
	})
}

// timeValue scans a time that a driver may return as time.Time or, from SQLite expressions, as text.
type timeValue struct{ t time.Time }

func (v *timeValue) Scan(src any) error {
	switch x := src.(type) {
	case nil:
		v.t = time.Time{}
	case time.Time:
		v.t = x.UTC()
	case string:
		return v.parse(x)
	case []byte:
		return v.parse(string(x))
	default:
		return fmt.Errorf("cannot scan %T into a time", src)
	}
	return nil
}

func (v *timeValue) parse(s string) error {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			v.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("cannot parse time %q", s)
}

// Backlog implements analytics.Store.
func (s *Events) Backlog(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest timeValue
	err := s.db.sql.QueryRowContext(ctx, "SELECT COUNT(*), MIN(received_at) FROM event_backlog").Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, translate(err)
	}
	return n, oldest.t, nil
}
