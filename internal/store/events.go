package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
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

func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return translate(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return translate(err)
	}
	return translate(tx.Commit())
}

type eventKey struct{ org, eventID string }

type storedEvent struct {
	id, fingerprint      string
	receivedAt, occurred time.Time
}

// InsertEvents implements analytics.Store: one transaction that checks the users that must be checked,
// inserts the first event of each (organization, event id) with ON CONFLICT (so concurrent transactions with the
// same event id store it once: the second waits for the first and inserts nothing), queues what it inserted for
// processing, and finds the stored event of every event id it did not insert. On PostgreSQL the transaction is
// one statement (insertPostgres); on SQLite, an INSERT … ON CONFLICT DO NOTHING per chunk, then a read-back.
func (s *Events) InsertEvents(ctx context.Context, events []analytics.Pending) ([]analytics.Outcome, error) {
	if s.db.dialect == Postgres {
		return s.insertPostgres(ctx, events)
	}
	out := make([]analytics.Outcome, len(events))
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		unknown, err := s.unknownUsers(ctx, tx, events)
		if err != nil {
			return err
		}
		first := map[eventKey]int{}
		var candidates []int
		for i, ev := range events {
			if unknown[i] {
				out[i].Kind = analytics.UnknownUser
				continue
			}
			k := eventKey{ev.OrganizationID, ev.EventID}
			if _, seen := first[k]; !seen {
				first[k] = i
				candidates = append(candidates, i)
			}
		}
		// In key order, so that transactions inserting overlapping event ids wait for each other instead of
		// deadlocking.
		sort.Slice(candidates, func(a, b int) bool {
			x, y := events[candidates[a]], events[candidates[b]]
			if x.OrganizationID != y.OrganizationID {
				return x.OrganizationID < y.OrganizationID
			}
			return x.EventID < y.EventID
		})
		inserted := make(map[string]bool, len(candidates))
		for start := 0; start < len(candidates); start += insertChunk {
			chunk := candidates[start:min(start+insertChunk, len(candidates))]
			ids, err := s.insertChunk(ctx, tx, events, chunk)
			if err != nil {
				return err
			}
			for _, id := range ids {
				inserted[id] = true
			}
		}
		stored := map[eventKey]storedEvent{}
		var missing []eventKey
		for _, i := range candidates {
			ev := events[i]
			k := eventKey{ev.OrganizationID, ev.EventID}
			if inserted[ev.ID] {
				stored[k] = storedEvent{id: ev.ID, fingerprint: ev.Fingerprint, receivedAt: ev.ReceivedAt, occurred: ev.Timestamp}
			} else {
				missing = append(missing, k)
			}
		}
		if err := s.storedEvents(ctx, tx, missing, stored); err != nil {
			return err
		}
		for i, ev := range events {
			if unknown[i] {
				continue
			}
			st, ok := stored[eventKey{ev.OrganizationID, ev.EventID}]
			switch {
			case !ok:
				return fmt.Errorf("event %s neither inserted nor found", ev.EventID)
			case inserted[ev.ID]:
				out[i] = analytics.Outcome{Kind: analytics.Stored, Receipt: receipt(ev.EventID, st, false)}
			case st.fingerprint == ev.Fingerprint:
				out[i] = analytics.Outcome{Kind: analytics.Duplicate, Receipt: receipt(ev.EventID, st, true)}
			default:
				out[i] = analytics.Outcome{Kind: analytics.Conflict}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func receipt(eventID string, st storedEvent, dup bool) analytics.Receipt {
	return analytics.Receipt{ID: st.id, EventID: eventID, Duplicate: dup, ReceivedAt: st.receivedAt.UTC(), Timestamp: st.occurred.UTC()}
}

// unknownUsers marks the events whose user must be checked and is not a user of the event's organization.
func (s *Events) unknownUsers(ctx context.Context, tx querier, events []analytics.Pending) (map[int]bool, error) {
	want := map[string]map[string]bool{} // organization → users to check
	for _, ev := range events {
		if !ev.CheckUser {
			continue
		}
		if want[ev.OrganizationID] == nil {
			want[ev.OrganizationID] = map[string]bool{}
		}
		want[ev.OrganizationID][ev.UserID] = true
	}
	if len(want) == 0 {
		return nil, nil
	}
	known := map[eventKey]bool{}
	for org, set := range want {
		ids := make([]any, 0, len(set)+1)
		ids = append(ids, org)
		for id := range set {
			ids = append(ids, id)
		}
		rows, err := tx.QueryContext(ctx, s.db.rebind("SELECT id FROM users WHERE organization_id = ? AND id IN ("+
			placeholders(len(set))+")"), ids...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				_ = rows.Close() // the scan error is the one to report
				return nil, err
			}
			known[eventKey{org, strings.ToLower(id)}] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	unknown := map[int]bool{}
	for i, ev := range events {
		if ev.CheckUser && !known[eventKey{ev.OrganizationID, ev.UserID}] {
			unknown[i] = true
		}
	}
	return unknown, nil
}

// querier is a transaction or the pool.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const eventColumns = "id, organization_id, event_id, user_id, event_name, event_category, source, properties, occurred_at, received_at, fingerprint"

// insertChunk inserts the events at the given indexes that are new and queues them for processing; it returns
// the ids it inserted.
func (s *Events) insertChunk(ctx context.Context, tx *sql.Tx, events []analytics.Pending, idx []int) ([]string, error) {
	args := make([]any, 0, len(idx)*11)
	for _, i := range idx {
		ev := events[i]
		var source any
		if ev.Source != "" {
			source = ev.Source
		}
		args = append(args, ev.ID, ev.OrganizationID, ev.EventID, ev.UserID, ev.Name, ev.Category, source,
			string(ev.Properties), ev.Timestamp.UTC(), ev.ReceivedAt.UTC(), ev.Fingerprint)
	}
	rows, err := tx.QueryContext(ctx, s.db.rebind("INSERT INTO events ("+eventColumns+") VALUES "+values(len(idx), 11)+
		" ON CONFLICT (organization_id, event_id) DO NOTHING RETURNING id"), args...)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close() // the scan error is the one to report
			return nil, err
		}
		ids = append(ids, strings.ToLower(id))
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	byID := make(map[string]bool, len(ids))
	for _, id := range ids {
		byID[id] = true
	}
	backlog := make([]any, 0, len(ids)*7)
	n := 0
	for _, i := range idx {
		ev := events[i]
		if byID[ev.ID] {
			backlog = append(backlog, ev.ID, ev.OrganizationID, ev.UserID, ev.Name, ev.Category, ev.Timestamp.UTC(), ev.ReceivedAt.UTC())
			n++
		}
	}
	if _, err := tx.ExecContext(ctx, s.db.rebind("INSERT INTO event_backlog (id, organization_id, user_id, event_name, event_category, occurred_at, received_at) VALUES "+
		values(n, 7)), backlog...); err != nil {
		return nil, err
	}
	return ids, nil
}

// pgInsertEvents is InsertEvents on PostgreSQL in one statement, and so in one transaction and one round trip
// (no BEGIN or COMMIT: the statement commits when it completes). The events come as one array per column, in key
// order, one per (organization, event id). An event whose key is stored already (or is being stored by a
// concurrent transaction, which the insert waits for) takes the ON CONFLICT branch, a no-op update whose only
// purpose is that RETURNING yields the stored row, committed concurrently or not, where DO NOTHING would yield
// nothing and need a read-back in a statement of its own. The events inserted (those whose stored id is the id
// sent) are queued for processing; the statement returns the others only: in the usual call, nothing. Its text
// does not depend on the number of events, so it is prepared once per connection, and its parameters are
// encoded in binary whatever the size of the group.
const pgInsertEvents = `WITH sent AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::timestamptz[], $10::timestamptz[], $11::text[]) AS t(id, org, event_id, user_id, name, category, source, props, occurred, received, fp)
), ins AS (
	INSERT INTO events (` + eventColumns + `)
	SELECT id, org, event_id, user_id, name, category, NULLIF(source, ''), props::json, occurred, received, fp FROM sent
	ON CONFLICT (organization_id, event_id) DO UPDATE SET id = events.id
	RETURNING id, organization_id, event_id, user_id, event_name, event_category, occurred_at, received_at, fingerprint
), queued AS (
	INSERT INTO event_backlog (id, organization_id, user_id, event_name, event_category, occurred_at, received_at)
	SELECT ins.id, ins.organization_id, ins.user_id, ins.event_name, ins.event_category, ins.occurred_at, ins.received_at
	FROM ins JOIN sent ON sent.id = ins.id
)
SELECT ins.organization_id, ins.event_id, ins.id, ins.fingerprint, ins.received_at, ins.occurred_at
FROM ins WHERE NOT EXISTS (SELECT 1 FROM sent WHERE sent.id = ins.id)`

// pgKey is an event's (organization, event id) as PostgreSQL compares them: as UUIDs, whatever their spelling.
type pgKey [32]byte

// insertPostgres is InsertEvents on PostgreSQL: the users to check, when some event needs it (in a statement of
// its own: in the insert's transaction the read would lock nothing either), then pgInsertEvents.
func (s *Events) insertPostgres(ctx context.Context, events []analytics.Pending) ([]analytics.Outcome, error) {
	unknown, err := s.unknownUsers(ctx, s.db.sql, events)
	if err != nil {
		return nil, translate(err)
	}
	// The first event of each key; the others of the call are judged against it.
	keys := make([]pgKey, len(events))
	first := make(map[pgKey]int, len(events))
	candidates := make([]int, 0, len(events))
	for i := range events {
		if unknown[i] {
			continue
		}
		org, err1 := uuid.Parse(events[i].OrganizationID)
		eventID, err2 := uuid.Parse(events[i].EventID)
		if err := errors.Join(err1, err2); err != nil {
			return nil, nexus.Internal(fmt.Errorf("event %s: %w", events[i].EventID, err))
		}
		copy(keys[i][:16], org[:])
		copy(keys[i][16:], eventID[:])
		if _, ok := first[keys[i]]; !ok {
			first[keys[i]] = i
			candidates = append(candidates, i)
		}
	}
	// In key order, so that transactions inserting overlapping event ids wait for each other instead of
	// deadlocking.
	sort.Slice(candidates, func(a, b int) bool { return bytes.Compare(keys[candidates[a]][:], keys[candidates[b]][:]) < 0 })
	before, err := s.pgInsert(ctx, events, keys, candidates)
	if err != nil {
		return nil, err
	}
	out := make([]analytics.Outcome, len(events))
	for i := range events {
		ev := &events[i]
		if unknown[i] {
			out[i].Kind = analytics.UnknownUser
			continue
		}
		st, ok := before[keys[i]]
		if !ok { // stored by this call: the first event of its key
			f := &events[first[keys[i]]]
			st = storedEvent{id: f.ID, fingerprint: f.Fingerprint, receivedAt: f.ReceivedAt, occurred: f.Timestamp}
			if first[keys[i]] == i {
				out[i] = analytics.Outcome{Kind: analytics.Stored, Receipt: receipt(ev.EventID, st, false)}
				continue
			}
		}
		if st.fingerprint == ev.Fingerprint {
			out[i] = analytics.Outcome{Kind: analytics.Duplicate, Receipt: receipt(ev.EventID, st, true)}
		} else {
			out[i] = analytics.Outcome{Kind: analytics.Conflict}
		}
	}
	return out, nil
}

// pgInsert runs pgInsertEvents for the candidates and returns the stored event of each key that was stored
// before.
func (s *Events) pgInsert(ctx context.Context, events []analytics.Pending, keys []pgKey, candidates []int) (map[pgKey]storedEvent, error) {
	before := map[pgKey]storedEvent{}
	n := len(candidates)
	if n == 0 {
		return before, nil
	}
	ids, orgs, eventIDs, users := make([][16]byte, n), make([][16]byte, n), make([][16]byte, n), make([][16]byte, n)
	names, categories, sources, props := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	occurred, received, fingerprints := make([]time.Time, n), make([]time.Time, n), make([]string, n)
	for k, i := range candidates {
		ev := &events[i]
		id, err1 := uuid.Parse(ev.ID)
		user, err2 := uuid.Parse(ev.UserID)
		if err := errors.Join(err1, err2); err != nil {
			return nil, nexus.Internal(fmt.Errorf("event %s: %w", ev.EventID, err))
		}
		ids[k], users[k] = id, user
		copy(orgs[k][:], keys[i][:16])
		copy(eventIDs[k][:], keys[i][16:])
		names[k], categories[k], sources[k], props[k] = ev.Name, ev.Category, ev.Source, string(ev.Properties)
		occurred[k], received[k], fingerprints[k] = ev.Timestamp.UTC(), ev.ReceivedAt.UTC(), ev.Fingerprint
	}
	rows, err := s.db.sql.QueryContext(ctx, pgInsertEvents, ids, orgs, eventIDs, users, names, categories, sources, props,
		occurred, received, fingerprints)
	if err != nil {
		return nil, translate(err)
	}
	for rows.Next() {
		var org, eventID, id [16]byte
		var st storedEvent
		if err := rows.Scan(&org, &eventID, &id, &st.fingerprint, &st.receivedAt, &st.occurred); err != nil {
			_ = rows.Close() // the scan error is the one to report
			return nil, translate(err)
		}
		st.id = uuid.UUID(id).String()
		var k pgKey
		copy(k[:16], org[:])
		copy(k[16:], eventID[:])
		before[k] = st
	}
	// Close reads the statement to its end, and so to its commit.
	if err := rows.Close(); err != nil {
		return nil, translate(err)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return before, nil
}

// storedEvents reads the stored event of each key into stored.
func (s *Events) storedEvents(ctx context.Context, tx *sql.Tx, keys []eventKey, stored map[eventKey]storedEvent) error {
	byOrg := map[string][]string{}
	for _, k := range keys {
		byOrg[k.org] = append(byOrg[k.org], k.eventID)
	}
	for org, ids := range byOrg {
		for start := 0; start < len(ids); start += insertChunk {
			chunk := ids[start:min(start+insertChunk, len(ids))]
			args := make([]any, 0, len(chunk)+1)
			args = append(args, org)
			for _, id := range chunk {
				args = append(args, id)
			}
			rows, err := tx.QueryContext(ctx, s.db.rebind("SELECT id, event_id, fingerprint, received_at, occurred_at FROM events WHERE organization_id = ? AND event_id IN ("+
				placeholders(len(chunk))+")"), args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var st storedEvent
				var eventID string
				var received, occurred timeValue
				if err := rows.Scan(&st.id, &eventID, &st.fingerprint, &received, &occurred); err != nil {
					_ = rows.Close() // the scan error is the one to report
					return err
				}
				st.id, st.receivedAt, st.occurred = strings.ToLower(st.id), received.t, occurred.t
				stored[eventKey{org, strings.ToLower(eventID)}] = st
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
	}
	return nil
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

// ListEvents implements analytics.Store. The index (organization_id, occurred_at, id), or its user variant,
// serves the order and the cursor.
func (s *Events) ListEvents(ctx context.Context, orgID string, q analytics.ListQuery) ([]analytics.Event, error) {
	org, ok := canonicalUUID(orgID)
	if !ok {
		return []analytics.Event{}, nil
	}
	where := []string{"organization_id = ?"}
	args := []any{org}
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if q.UserID != "" {
		id, ok := canonicalUUID(q.UserID)
		if !ok {
			return []analytics.Event{}, nil
		}
		add("user_id = ?", id)
	}
	if q.Name != "" {
		add("event_name = ?", q.Name)
	}
	if q.Category != "" {
		add("event_category = ?", q.Category)
	}
	if q.Source != "" {
		add("source = ?", q.Source)
	}
	if q.From != nil {
		add("occurred_at >= ?", q.From.UTC())
	}
	if q.To != nil {
		add("occurred_at < ?", q.To.UTC())
	}
	if q.After != nil {
		where = append(where, "(occurred_at, id) < (?, ?)")
		args = append(args, q.After.Timestamp.UTC(), q.After.ID)
	}
	args = append(args, q.Limit+1)
	rows, err := s.db.sql.QueryContext(ctx, s.db.rebind("SELECT id, event_id, organization_id, user_id, event_name, event_category, source, properties, occurred_at, received_at FROM events WHERE "+
		strings.Join(where, " AND ")+" ORDER BY occurred_at DESC, id DESC LIMIT ?"), args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []analytics.Event{}
	for rows.Next() {
		var ev analytics.Event
		var source sql.NullString
		var props string
		var occurred, received timeValue
		if err := rows.Scan(&ev.ID, &ev.EventID, &ev.OrganizationID, &ev.UserID, &ev.Name, &ev.Category, &source, &props, &occurred, &received); err != nil {
			return nil, translate(err)
		}
		ev.Source, ev.Properties, ev.Timestamp, ev.ReceivedAt = source.String, []byte(props), occurred.t, received.t
		out = append(out, ev)
	}
	return out, translate(rows.Err())
}

// DailyCounts implements analytics.Store from the rollups.
func (s *Events) DailyCounts(ctx context.Context, orgID string, q analytics.SummaryQuery) ([]analytics.Count, error) {
	org, ok := canonicalUUID(orgID)
	if !ok {
		return []analytics.Count{}, nil
	}
	where := "organization_id = ? AND day >= ? AND day <= ?"
	args := []any{org, q.From, q.To}
	if q.Name != "" {
		where += " AND event_name = ?"
		args = append(args, q.Name)
	}
	if q.Category != "" {
		where += " AND event_category = ?"
		args = append(args, q.Category)
	}
	rows, err := s.db.sql.QueryContext(ctx, s.db.rebind("SELECT day, event_name, event_category, count FROM event_daily_counts WHERE "+
		where+" ORDER BY day, event_name, event_category"), args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := []analytics.Count{}
	for rows.Next() {
		var c analytics.Count
		if err := rows.Scan(&c.Day, &c.Name, &c.Category, &c.Count); err != nil {
			return nil, translate(err)
		}
		out = append(out, c)
	}
	return out, translate(rows.Err())
}

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

// ProcessEvents implements analytics.Store: it deletes up to limit events from the backlog (on PostgreSQL
// skipping those another transaction holds) and adds them to the rollups, in one transaction, so an event is
// counted exactly when it leaves the backlog. It takes the oldest events first, in the order of their UUIDv7 ids,
// which the primary key keeps (migration 8 dropped the index on received_at). Rollup rows are written in key order, so that concurrent

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
