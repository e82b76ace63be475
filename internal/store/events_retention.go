package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
)

// retentionBatch is how many raw events retention deletes per statement (and, on SQLite, per transaction), so
// that ingest never waits long for the write lock.
const retentionBatch = 5000

// MaintainEvents implements analytics.Maintainer. On PostgreSQL it makes the partitions of today and the next
// partitionsAhead days, then, when retention is set, drops every partition whose upper bound is at least
// retention before now (so a raw event lives between retention and retention + 1 day), after deleting its
// events' keys from event_keys in batches, so that the deduplication window is the retention too. On SQLite it
// deletes the events received before now - retention, retentionBatch per transaction. Rollups are never
// touched, and neither is the backlog: it holds its own copy of what the processor needs, so an event expired
// before it was processed is still counted.
func (s *Events) MaintainEvents(ctx context.Context, now time.Time, retention time.Duration) (analytics.Maintenance, error) {
	if s.db.dialect != Postgres {
		return s.expireSQLite(ctx, now, retention)
	}
	var m analytics.Maintenance
	today := utcDay(now)
	days := make([]time.Time, 0, partitionsAhead+1)
	for i := 0; i <= partitionsAhead; i++ {
		days = append(days, today.AddDate(0, 0, i))
	}
	var err error
	if m.Created, err = s.ensurePartitions(ctx, days, maintenanceLockTimeout); err != nil {
		return m, fmt.Errorf("create partitions: %w", err)
	}
	have, err := s.partitions(ctx, s.db.sql)
	if err != nil {
		return m, translate(err)
	}
	if retention > 0 {
		cutoff := now.Add(-retention)
		for _, d := range have {
			if d.AddDate(0, 0, 1).After(cutoff) {
				break // this partition, and the newer ones, still hold events within the retention
			}
			n, err := s.dropPartition(ctx, d)
			m.Expired += n
			if err != nil {
				return m, fmt.Errorf("drop partition %s: %w", partitionName(d), err)
			}
			have = have[1:]
		}
	}
	m.Partitions = len(have)
	if len(have) > 0 {
		m.Oldest = have[0]
	}
	return m, nil
}

// dropPartition deletes the keys of the partition's events from event_keys, retentionBatch at a time in the
// order of the partition's index on (id, received_at), then drops the partition; it returns how many events
// the partition held. A key is deleted only while it still names the partition's event (k.id = e.id).
// Interrupted, it starts again at the next run: the keys deleted stay deleted, and the partition is dropped
// only once all are.
func (s *Events) dropPartition(ctx context.Context, day time.Time) (int64, error) {
	name := partitionName(day)
	var total int64
	after := uuid.Nil
	for {
		var n int64
		var last uuid.NullUUID
		err := s.db.sql.QueryRowContext(ctx, `WITH b AS (
	SELECT organization_id, event_id, id FROM `+name+` WHERE id > $1 ORDER BY id LIMIT $2
), d AS (
	DELETE FROM event_keys k USING b WHERE k.organization_id = b.organization_id AND k.event_id = b.event_id AND k.id = b.id
)
SELECT count(*), max(id::text)::uuid FROM b`, after, retentionBatch).Scan(&n, &last)
		if err != nil {
			return total, translate(err)
		}
		total += n
		if n < retentionBatch || !last.Valid {
			break
		}
		after = last.UUID
	}
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '"+maintenanceLockTimeout+"'"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", partitionLock); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "DROP TABLE IF EXISTS "+name)
		return err
	})
	return total, lockUnavailable(err)
}

// expireSQLite deletes the events received before now - retention, retentionBatch per transaction. Event ids
// are UUIDv7s made at receipt (analytics.newID), which sort by their millisecond of receipt, so the
// deletion walks the primary key up to the cutoff's lowest UUIDv7 and needs no index on received_at; the
// received_at condition keeps any id that is not a UUIDv7 (none is made so) from being deleted early.
func (s *Events) expireSQLite(ctx context.Context, now time.Time, retention time.Duration) (analytics.Maintenance, error) {
	var m analytics.Maintenance
	if retention > 0 {
		cutoff := now.Add(-retention).UTC()
		bound := uuidV7Floor(cutoff)
		for {
			var n int64
			err := s.db.tx(ctx, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id IN (
	SELECT id FROM events WHERE id < ? AND received_at < ? ORDER BY id LIMIT ?)`, bound, cutoff, retentionBatch)
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			m.Expired += n
			if err != nil {
				return m, err
			}
			if n < retentionBatch {
				break
			}
		}
	}
	var oldest timeValue
	err := s.db.sql.QueryRowContext(ctx, "SELECT received_at FROM events ORDER BY id LIMIT 1").Scan(&oldest)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return m, translate(err)
	default:
		m.Oldest = utcDay(oldest.t)
	}
	return m, nil
}

// uuidV7Floor returns, in the text form the store keeps ids in, the lowest UUIDv7 of t's millisecond: every
// UUIDv7 made before t sorts below it.
func uuidV7Floor(t time.Time) string {
	var u uuid.UUID
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli())) // #nosec G115 -- a time after 1970
	copy(u[:6], ms[2:])
	return strings.ToLower(u.String())
}
