package store

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
)

// listEvents is ListEvents (see replica_read.go) on the connection readFrom chose. The index (organization_id,
// occurred_at, id), or its user variant, serves the order and the cursor.
//
// On PostgreSQL events are partitioned by the day they were received (see events_partitions.go), and a listing
// orders by the client's timestamp, so without a bound on received_at every partition's index is read (one probe
// each, for the first rows). Every stored event satisfies occurred_at <= received_at + analytics.MaxFuture
// (validated at receipt), so the events received before some instant b all have timestamps before
// b + MaxFuture: a listing first asks the recent partitions only (received_at >= b, for b a day, then 8 days,
// before the newest timestamp the listing can return: q.Now + MaxFuture, or its to bound or cursor), and that answer is the listing's whenever it is full
// (limit + 1 rows) and its last row is at or after b + MaxFuture; otherwise it asks every partition. A from
// bound prunes the partitions received before from - MaxFuture in every case.
func (s *Events) listEvents(ctx context.Context, orgID string, q analytics.ListQuery) ([]analytics.Event, error) {
	if s.db.dialect != Postgres {
		return s.listEventsSince(ctx, orgID, q, nil)
	}
	var since *time.Time
	if q.From != nil {
		b := q.From.Add(-analytics.MaxFuture)
		since = &b
	}
	var upper time.Time // the newest timestamp the listing can return
	if !q.Now.IsZero() {
		upper = q.Now.Add(analytics.MaxFuture)
	}
	if q.To != nil && (upper.IsZero() || q.To.Before(upper)) {
		upper = *q.To
	}
	if q.After != nil && (upper.IsZero() || q.After.Timestamp.Before(upper)) {
		upper = q.After.Timestamp
	}
	if upper.IsZero() {
		return s.listEventsSince(ctx, orgID, q, since)
	}
	for _, window := range recentWindows {
		b := upper.Add(-analytics.MaxFuture - window)
		if since != nil && !since.Before(b) {
			break // the from bound prunes as much already
		}
		out, err := s.listEventsSince(ctx, orgID, q, &b)
		if err != nil {
			return nil, err
		}
		if len(out) == q.Limit+1 && !out[len(out)-1].Timestamp.Before(b.Add(analytics.MaxFuture)) {
			return out, nil
		}
	}
	return s.listEventsSince(ctx, orgID, q, since)
}

// recentWindows are the spans of receipt a PostgreSQL listing tries first (see listEvents).
var recentWindows = []time.Duration{24 * time.Hour, 8 * 24 * time.Hour}

// listEventsSince is the listing's statement, on the events received at or after since when since is not nil.
func (s *Events) listEventsSince(ctx context.Context, orgID string, q analytics.ListQuery, since *time.Time) ([]analytics.Event, error) {
	org, ok := canonicalUUID(orgID)
	if !ok {
		return []analytics.Event{}, nil
	}
	where := []string{"organization_id = ?"}
	args := []any{org}
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if since != nil {
		add("received_at >= ?", since.UTC())
	}
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
	rows, err := s.db.readSQL(ctx).QueryContext(ctx, s.db.rebind("SELECT id, event_id, organization_id, user_id, event_name, event_category, source, properties, occurred_at, received_at FROM events WHERE "+
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

// dailyCounts is DailyCounts (see replica_read.go) on the connection readFrom chose.
func (s *Events) dailyCounts(ctx context.Context, orgID string, q analytics.SummaryQuery) ([]analytics.Count, error) {
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
	rows, err := s.db.readSQL(ctx).QueryContext(ctx, s.db.rebind("SELECT day, event_name, event_category, count FROM event_daily_counts WHERE "+
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
