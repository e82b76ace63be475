package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// On PostgreSQL, events is partitioned by the UTC day of received_at (migration 12): partition events_pYYYYMMDD
// holds the events received on that day. The processor makes the partitions of today and the next
// partitionsAhead days (Events.MaintainEvents); an insert that finds no partition for its day (the processor
// has not run, or the clock jumped) makes it itself and retries once (insertPostgres). There is no DEFAULT
// partition: a row in it would keep its day's partition from ever being created.

// partitionsAhead is how many days after today have their partitions made ahead.
const partitionsAhead = 7

// partitionLock is the key of the transaction-scoped advisory lock that serializes partition DDL across nodes.
const partitionLock = 8723462

// Lock timeouts of partition DDL. Attaching a new partition waits only for other DDL (and VACUUM or ANALYZE)
// of events, never for its readers and writers; dropping an expired one locks events against all of them while
// it waits. The processor's upkeep gives up quickly and tries again at its next run; an insert that needs its
// day's partition now waits a little longer.
const (
	maintenanceLockTimeout = "1s"
	ingestLockTimeout      = "3s"
)

// utcDay returns the start of t's UTC day.
func utcDay(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// partitionName is the name of the partition of the events received on day.
func partitionName(day time.Time) string { return "events_p" + day.UTC().Format("20060102") }

// partitionDay parses a partition's name back into its day; ok is false for any other table.
func partitionDay(name string) (time.Time, bool) {
	s, ok := strings.CutPrefix(name, "events_p")
	if !ok {
		return time.Time{}, false
	}
	d, err := time.Parse("20060102", s)
	return d, err == nil
}

// partitions returns the days of events' partitions, oldest first.
func (s *Events) partitions(ctx context.Context, q querier) ([]time.Time, error) {
	rows, err := q.QueryContext(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'events'::regclass`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var days []time.Time
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		if d, ok := partitionDay(name); ok {
			days = append(days, d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	return days, nil
}

// ensurePartitions makes the partitions of the given days that are missing, in one transaction under the
// advisory lock (so that nodes take turns) with the given lock timeout. It returns how many it made.
func (s *Events) ensurePartitions(ctx context.Context, days []time.Time, lockTimeout string) (int, error) {
	made := 0
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		made = 0
		if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '"+lockTimeout+"'"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", partitionLock); err != nil {
			return err
		}
		have, err := s.partitions(ctx, tx)
		if err != nil {
			return err
		}
		exists := make(map[time.Time]bool, len(have))
		for _, d := range have {
			exists[d] = true
		}
		for _, d := range days {
			d = utcDay(d)
			if exists[d] {
				continue
			}
			exists[d] = true
			// Made apart and then attached, which locks events in SHARE UPDATE EXCLUSIVE mode only: inserts and
			// reads go on meanwhile (CREATE TABLE … PARTITION OF would lock it against both while it waits). The
			// new table is empty, so attaching it checks no row and builds its indexes at once. The bounds are
			// literals in UTC, whatever the session's time zone; DDL takes no parameters, and the name and bounds
			// are made of a date's digits only.
			name := partitionName(d)
			for _, stmt := range []string{
				"CREATE TABLE " + name + " (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)",
				fmt.Sprintf("ALTER TABLE events ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')", // #nosec G201 -- formatted from a time.Time, no input
					name, d.Format("2006-01-02 15:04:05+00"), d.AddDate(0, 0, 1).Format("2006-01-02 15:04:05+00")),
			} {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("create partition %s: %w", name, err)
				}
			}
			made++
		}
		return nil
	})
	return made, lockUnavailable(err)
}

// lockUnavailable makes a lock timeout (SQLSTATE 55P03) an unavailable error: worth a retry, not a fault.
func lockUnavailable(err error) error {
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "55P03" {
		return nexus.Unavailable(err)
	}
	return err
}

// noPartition reports whether err is PostgreSQL's refusal of a row that no partition of events takes
// ("no partition of relation … found for row", SQLSTATE 23514).
func noPartition(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23514" && strings.Contains(pg.Message, "no partition")
}
