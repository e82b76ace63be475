package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
)

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
		var out []analytics.Outcome
		err := s.db.tracer.statement(ctx, "insert events", pgInsertEvents, func(ctx context.Context) (err error) {
			out, err = s.insertPostgres(ctx, events)
			return err
		})
		return out, err
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
