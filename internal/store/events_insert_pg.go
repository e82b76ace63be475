package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// pgInsertEvents is InsertEvents on PostgreSQL in one statement, and so in one transaction and one round trip
// (no BEGIN or COMMIT: the statement commits when it completes). The events come as one array per column, in key
// order, one per (organization, event id). Deduplication is event_keys' (events is partitioned by day and can
// have no unique index on the key; see migration 12): a key stored already (or being stored by a concurrent
// transaction, which the insert waits for) takes the ON CONFLICT branch, a no-op update whose only purpose is
// that RETURNING yields the stored key, with the id, fingerprint and times of its event, committed concurrently
// or not, where DO NOTHING would yield nothing and need a read-back in a statement of its own: a duplicate costs
// one probe of event_keys' primary key. The keys inserted (those whose stored id is the id sent) have their
// events stored and queued for processing; the statement returns the others only: in the usual call, nothing.
// Its text does not depend on the number of events, so it is prepared once per connection, and its parameters
// are encoded in binary whatever the size of the group.
const pgInsertEvents = `WITH sent AS (
	SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[],
		$9::timestamptz[], $10::timestamptz[], $11::text[]) AS t(id, org, event_id, user_id, name, category, source, props, occurred, received, fp)
), k AS (
	INSERT INTO event_keys (organization_id, event_id, id, received_at, occurred_at, fingerprint)
	SELECT org, event_id, id, received, occurred, fp FROM sent
	ON CONFLICT (organization_id, event_id) DO UPDATE SET id = event_keys.id
	RETURNING organization_id, event_id, id, fingerprint, received_at, occurred_at
), ins AS (
	INSERT INTO events (` + eventColumns + `)
	SELECT sent.id, org, sent.event_id, user_id, name, category, NULLIF(source, ''), props::json, occurred, received, fp
	FROM sent JOIN k ON k.id = sent.id
), queued AS (
	INSERT INTO event_backlog (id, organization_id, user_id, event_name, event_category, occurred_at, received_at)
	SELECT sent.id, org, user_id, name, category, occurred, received FROM sent JOIN k ON k.id = sent.id
)
SELECT k.organization_id, k.event_id, k.id, k.fingerprint, k.received_at, k.occurred_at
FROM k WHERE NOT EXISTS (SELECT 1 FROM sent WHERE sent.id = k.id)`

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
	n := len(candidates)
	if n == 0 {
		return map[pgKey]storedEvent{}, nil
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
	args := []any{ids, orgs, eventIDs, users, names, categories, sources, props, occurred, received, fingerprints}
	before, err := s.pgRun(ctx, args)
	if noPartition(err) {
		// No partition for a day received: the processor has not made it (yet). Make it now and retry once; the
		// failed statement stored nothing. (The error may come with the first row or at the end of the statement.)
		if _, err := s.ensurePartitions(ctx, received, ingestLockTimeout); err != nil {
			return nil, translate(err)
		}
		before, err = s.pgRun(ctx, args)
	}
	return before, translate(err)
}

// pgRun runs pgInsertEvents with args to its end, and returns the stored event of each key that was stored
// before; its error is the driver's.
func (s *Events) pgRun(ctx context.Context, args []any) (map[pgKey]storedEvent, error) {
	before := map[pgKey]storedEvent{}
	rows, err := s.db.sql.QueryContext(ctx, pgInsertEvents, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		// uuid.UUID scans the driver's value whatever the Go release: database/sql before Go 1.27 hands a uuid
		// column over as a string, which a [16]byte cannot take.
		var org, eventID, id uuid.UUID
		var st storedEvent
		if err := rows.Scan(&org, &eventID, &id, &st.fingerprint, &st.receivedAt, &st.occurred); err != nil {
			_ = rows.Close() // the scan error is the one to report
			return nil, err
		}
		st.id = id.String()
		var k pgKey
		copy(k[:16], org[:])
		copy(k[16:], eventID[:])
		before[k] = st
	}
	// Close reads the statement to its end, and so to its commit.
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return before, nil
}
