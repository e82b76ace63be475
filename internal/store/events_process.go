package store

import (
	"context"
	"database/sql"
	"sort"
	"strings"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
)

type dailyKey struct{ org, day, name, category string }

type userTotal struct {
	org   string
	count int64
	last  time.Time
}

type userDayKey struct{ user, day string }

type userDay struct {
	org   string
	count int64
}

// processBatchSQL is the statement that takes a batch of up to ? events off the backlog. On PostgreSQL the
// batch's ids are taken once (an InitPlan; FOR UPDATE SKIP LOCKED, so that instances split the work) and deleted
// through the primary key. Written as id IN (subquery), the planner may join the subquery to the whole backlog,
// and with statistics from when the backlog was empty it chose a plan that took minutes of CPU for one batch
// while 100,000 events waited (seen in make loadtest).
func processBatchSQL(d Dialect) string {
	q := "DELETE FROM event_backlog WHERE id IN (SELECT id FROM event_backlog ORDER BY id LIMIT ?)"
	if d == Postgres {
		q = "DELETE FROM event_backlog WHERE id = ANY (ARRAY(SELECT id FROM event_backlog ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED))"
	}
	return q + " RETURNING organization_id, user_id, event_name, event_category, occurred_at"
}

// ProcessEvents implements analytics.Store: it deletes up to limit events from the backlog (on PostgreSQL
// skipping those another transaction holds) and adds them to the rollups, in one transaction, so an event is
// counted exactly when it leaves the backlog. It takes the oldest events first, in the order of their UUIDv7 ids,
// which the primary key keeps (migration 8 dropped the index on received_at). Rollup rows are written in key order, so that concurrent
// processors cannot deadlock.
func (s *Events) ProcessEvents(ctx context.Context, limit int) (int, error) {
	n := 0
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.db.rebind(processBatchSQL(s.db.dialect)), limit)
		if err != nil {
			return err
		}
		daily := map[dailyKey]int64{}
		totals := map[string]*userTotal{}
		days := map[userDayKey]*userDay{}
		for rows.Next() {
			var org, user, name, category string
			var occurred timeValue
			if err := rows.Scan(&org, &user, &name, &category, &occurred); err != nil {
				_ = rows.Close() // the scan error is the one to report
				return err
			}
			org, user = strings.ToLower(org), strings.ToLower(user)
			n++
			day := analytics.Day(occurred.t)
			daily[dailyKey{org, day, name, category}]++
			t := totals[user]
			if t == nil {
				t = &userTotal{org: org}
				totals[user] = t
			}
			t.count++
			if occurred.t.After(t.last) {
				t.last = occurred.t
			}
			d := days[userDayKey{user, day}]
			if d == nil {
				d = &userDay{org: org}
				days[userDayKey{user, day}] = d
			}
			d.count++
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		return s.applyRollups(ctx, tx, daily, totals, days)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func (s *Events) applyRollups(ctx context.Context, tx *sql.Tx, daily map[dailyKey]int64, totals map[string]*userTotal, days map[userDayKey]*userDay) error {
	dk := make([]dailyKey, 0, len(daily))
	for k := range daily {
		dk = append(dk, k)
	}
	sort.Slice(dk, func(i, j int) bool {
		a, b := dk[i], dk[j]
		if a.org != b.org {
			return a.org < b.org
		}
		if a.day != b.day {
			return a.day < b.day
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.category < b.category
	})
	err := s.upsert(ctx, tx, len(dk), "INSERT INTO event_daily_counts (organization_id, day, event_name, event_category, count)",
		"ON CONFLICT (organization_id, day, event_name, event_category) DO UPDATE SET count = event_daily_counts.count + excluded.count",
		func(i int) []any { k := dk[i]; return []any{k.org, k.day, k.name, k.category, daily[k]} })
	if err != nil {
		return err
	}
	users := make([]string, 0, len(totals))
	for u := range totals {
		users = append(users, u)
	}
	sort.Strings(users)
	greatest := "MAX"
	if s.db.dialect == Postgres {
		greatest = "GREATEST"
	}
	err = s.upsert(ctx, tx, len(users), "INSERT INTO user_event_stats (user_id, organization_id, total, last_event_at)",
		"ON CONFLICT (user_id) DO UPDATE SET total = user_event_stats.total + excluded.total, last_event_at = "+
			greatest+"(user_event_stats.last_event_at, excluded.last_event_at)",
		func(i int) []any { t := totals[users[i]]; return []any{users[i], t.org, t.count, t.last.UTC()} })
	if err != nil {
		return err
	}
	uk := make([]userDayKey, 0, len(days))
	for k := range days {
		uk = append(uk, k)
	}
	sort.Slice(uk, func(i, j int) bool {
		if uk[i].user != uk[j].user {
			return uk[i].user < uk[j].user
		}
		return uk[i].day < uk[j].day
	})
	return s.upsert(ctx, tx, len(uk), "INSERT INTO user_event_days (user_id, organization_id, day, count)",
		"ON CONFLICT (user_id, day) DO UPDATE SET count = user_event_days.count + excluded.count",
		func(i int) []any { k := uk[i]; d := days[k]; return []any{k.user, d.org, k.day, d.count} })
}

// upsert runs "insert VALUES (…),… conflict" for n rows, insertChunk rows a statement, in row order; row(i)
// returns the values of row i.
func (s *Events) upsert(ctx context.Context, tx *sql.Tx, n int, insert, conflict string, row func(i int) []any) error {
	for start := 0; start < n; start += insertChunk {
		end := min(start+insertChunk, n)
		var args []any
		cols := 0
		for i := start; i < end; i++ {
			r := row(i)
			cols = len(r)
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, s.db.rebind(insert+" VALUES "+values(end-start, cols)+" "+conflict), args...); err != nil {
			return err
		}
	}
	return nil
}
