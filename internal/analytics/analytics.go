// Package analytics is event ingestion and what is made of it: validation of events beyond their schema,
// idempotent ingest through a group-commit writer (a 202 is only ever answered after the event is committed),
// the background processor that turns committed events into per-day rollups and per-user activity, and the
// reads of events and rollups. Every method takes the authenticated Principal and works inside its
// organization only; which principal may call which method is decided before, by nexus.Authorize, except the
// per-event check of events:write_any_user, which depends on the event.
package analytics

import (
	"context"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Store is the storage the analytics service needs.
type Store interface {
	// InsertEvents stores the events that are new in one transaction and says, for each event at the same
	// index, what became of it: stored, a duplicate of an event already stored under the same organization and
	// event id (with that event's receipt), a conflict (same event id, different fingerprint), or refused
	// because its user is not a user of its organization. Events of one call that share an organization and
	// event id are stored at most once.
	InsertEvents(ctx context.Context, events []Pending) ([]Outcome, error)
	// ListEvents returns up to q.Limit+1 events of the organization, newest first by timestamp then id, after
	// q.After when it is set.
	ListEvents(ctx context.Context, orgID string, q ListQuery) ([]Event, error)
	// DailyCounts returns the organization's rollups for the days from to to (inclusive, "2006-01-02"),
	// ordered by day, event name and category.
	DailyCounts(ctx context.Context, orgID string, q SummaryQuery) ([]Count, error)
	// ProcessEvents claims up to limit committed, unprocessed events (never events another processor holds),
	// applies their effects to the rollups and marks them processed, in one transaction. It returns how many
	// it processed.
	ProcessEvents(ctx context.Context, limit int) (int, error)
	// Backlog returns how many committed events wait for processing and when the oldest was received (zero
	// when none waits).
	Backlog(ctx context.Context) (int, time.Time, error)
}

// Maintainer is a Store whose raw events need upkeep, which the processor runs at its start and then every
// ProcessorOptions.MaintainEvery: making room for the events to come (PostgreSQL's daily partitions) and,
// when retention is not 0, deleting the raw events received more than retention before now (and with them
// their event ids, so that the deduplication window is the retention). Rollups are never deleted.
type Maintainer interface {
	MaintainEvents(ctx context.Context, now time.Time, retention time.Duration) (Maintenance, error)
}

// Maintenance is what one run of MaintainEvents did and saw.
type Maintenance struct {
	Created    int       // partitions made
	Expired    int64     // raw events deleted
	Partitions int       // partitions of the events table after the run (0 where the table is not partitioned)
	Oldest     time.Time // the UTC day of the oldest raw event kept (PostgreSQL: the oldest partition's); zero if none
}

// Input is one event as a client sent it, already checked against the contract's schema.
type Input struct {
	EventID    string     // the client's deduplication key; "" to have one generated
	Name       string     // event_name
	Category   string     // event_category
	Timestamp  *time.Time // nil: the receive time
	Properties []byte     // a JSON object, or nil
	UserID     string     // "" for the caller
	Source     string     // "" for none
}

// Event is a stored event.
type Event struct {
	ID             string
	EventID        string
	OrganizationID string
	UserID         string
	Name           string
	Category       string
	Source         string // "" for none
	Properties     []byte // a compact JSON object, "{}" when the event had none
	Timestamp      time.Time
	ReceivedAt     time.Time
}

// Pending is an event ready to be stored, with its fingerprint (what makes two events with one event id the
// same event) and whether its user must be checked to belong to its organization.
type Pending struct {
	Event
	Fingerprint string
	CheckUser   bool
}

// Receipt says which stored event stands for an accepted event.
type Receipt struct {
	ID         string
	EventID    string
	Duplicate  bool // the event id was already stored, nothing new was
	ReceivedAt time.Time
	Timestamp  time.Time
}

// OutcomeKind is what became of one event given to Store.InsertEvents.
type OutcomeKind uint8

// The outcomes of storing an event.
const (
	Stored      OutcomeKind = iota // stored by this call
	Duplicate                      // already stored with the same fingerprint; Receipt is the stored event's
	Conflict                       // already stored (or earlier in the same call) with another fingerprint
	UnknownUser                    // its user is not a user of its organization; nothing stored
)

// Outcome is what became of one event given to Store.InsertEvents.
type Outcome struct {
	Kind    OutcomeKind
	Receipt Receipt // for Stored and Duplicate
}

// Result is what became of one event of a batch: a receipt, or the error that refused it.
type Result struct {
	Receipt Receipt
	Err     error
}

// ListQuery selects a page of events.
type ListQuery struct {
	Name, Category, UserID, Source string     // "" for any
	From, To                       *time.Time // timestamp >= From, timestamp < To
	Limit                          int
	After                          *Cursor // the last event of the previous page
	// Now is the service's clock when the listing was asked (the clock that stamps received_at): a store may ask
	// the recently received events first (see store.Events). The zero time for none.
	Now time.Time
}

// Cursor is a position in a listing: the timestamp and id of the last event returned.
type Cursor struct {
	Timestamp time.Time
	ID        string
}

// Page is one page of events.
type Page struct {
	Events  []Event
	HasMore bool
	Next    *Cursor // nil on the last page
}

// SummaryQuery selects rollups.
type SummaryQuery struct {
	From, To       string // days, "2006-01-02", inclusive
	Name, Category string // "" for any
}

// Count is the number of events of one day, name and category.
type Count struct {
	Day      string
	Name     string
	Category string
	Count    int64
}

// Summary is the organization's counts over a range of days.
type Summary struct {
	From, To string
	Total    int64
	Counts   []Count
}

// Limits of ingestion and reading.
const (
	MaxBatch           = 1000
	MaxPropertiesBytes = 32 << 10
	MaxPropertiesDepth = 5
	MaxPropertiesKeys  = 255
	MaxFuture          = time.Hour
	DefaultListLimit   = 50
	MaxListLimit       = 500
	MaxSummaryDays     = 366
	DefaultSummaryDays = 30
)

// Earliest is the earliest timestamp an event may have.
var Earliest = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Errors of analytics.
var (
	ErrUnknownUser = &nexus.Error{Kind: nexus.KindUnprocessable, Code: nexus.CodeUnknownUser,
		Message: "The user_id names no user of your organization.",
		Fields:  []nexus.FieldError{nexus.BodyField("/user_id", "is not a user of your organization")}}
	ErrEventConflict = &nexus.Error{Kind: nexus.KindConflict, Code: nexus.CodeConflict,
		Message: "An event with this event_id and different content is already stored.",
		Fields:  []nexus.FieldError{nexus.BodyField("/event_id", "is already used by a different event")}}
	// ErrOverloaded is returned when the write queue is full: nothing was stored.
	ErrOverloaded = &nexus.Error{Kind: nexus.KindUnavailable, Code: nexus.CodeUnavailable,
		Message: "The server cannot store events right now. Retry after the number of seconds in Retry-After."}
)

// Day is the UTC day of t, as "2006-01-02".
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }
