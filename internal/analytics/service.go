package analytics

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Options configures a Service.
type Options struct {
	Store  Store
	Writer *Writer
	Now    func() time.Time
}

// Service records and reads the events of the caller's organization.
type Service struct {
	store  Store
	writer *Writer
	now    func() time.Time
}

// NewService returns a Service.
func NewService(o Options) (*Service, error) {
	if o.Store == nil || o.Writer == nil {
		return nil, errors.New("analytics: Store and Writer are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{store: o.Store, writer: o.Writer, now: o.Now}, nil
}

func (s *Service) received() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Track records one event of p's organization and returns its receipt once it is committed; an event id that
// is already stored is answered with the stored event's receipt and Duplicate set.
// Errors: validation_failed, insufficient_permission, unknown_user, conflict, unavailable.
func (s *Service) Track(ctx context.Context, p nexus.Principal, in Input) (Receipt, error) {
	ev, err := prepare(p, in, s.received())
	if err != nil {
		return Receipt{}, err
	}
	out, err := s.writer.Submit(ctx, []Pending{ev})
	if err != nil {
		return Receipt{}, err
	}
	return receiptOf(out[0])
}

func receiptOf(o Outcome) (Receipt, error) {
	switch o.Kind {
	case Stored, Duplicate:
		return o.Receipt, nil
	case Conflict:
		return Receipt{}, ErrEventConflict
	case UnknownUser:
		return Receipt{}, ErrUnknownUser
	}
	return Receipt{}, nexus.Internal(fmt.Errorf("unknown outcome %d", o.Kind))
}

// TrackBatch records the events of a batch, each on its own: the result at each index is a receipt or the
// error that refused that event (its field pointers relative to the event). The whole call fails only when
// nothing can be stored now (unavailable); then nothing was stored.
func (s *Service) TrackBatch(ctx context.Context, p nexus.Principal, ins []Input) ([]Result, error) {
	results := make([]Result, len(ins))
	received := s.received()
	pending := make([]Pending, 0, len(ins))
	at := make([]int, 0, len(ins))
	for i, in := range ins {
		ev, err := prepare(p, in, received)
		if err != nil {
			results[i].Err = err
			continue
		}
		pending = append(pending, ev)
		at = append(at, i)
	}
	out, err := s.writer.Submit(ctx, pending)
	if err != nil {
		return nil, err
	}
	for k, o := range out {
		results[at[k]].Receipt, results[at[k]].Err = receiptOf(o)
	}
	return results, nil
}

// List returns a page of the organization's events, newest first. Errors: validation_failed (a cursor that is
// not one), unavailable.
func (s *Service) List(ctx context.Context, p nexus.Principal, q ListQuery) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultListLimit
	}
	q.Limit = min(q.Limit, MaxListLimit)
	q.UserID = strings.ToLower(q.UserID)
	q.Now = s.now()
	events, err := s.store.ListEvents(ctx, p.OrganizationID, q)
	if err != nil {
		return Page{}, err
	}
	page := Page{Events: events}
	if len(events) > q.Limit {
		page.Events, page.HasMore = events[:q.Limit], true
		last := page.Events[q.Limit-1]
		page.Next = &Cursor{Timestamp: last.Timestamp, ID: last.ID}
	}
	return page, nil
}

// EncodeCursor returns the opaque form of c.
func EncodeCursor(c Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.Timestamp.UnixMicro(), 10) + "_" + strings.ToLower(c.ID)))
}

// ErrBadCursor is the error of a cursor that no listing returned.
var ErrBadCursor = nexus.Invalid(nexus.FieldError{In: nexus.InQuery, Name: "cursor", Detail: "is not a cursor this API returned"})

// DecodeCursor parses a cursor made by EncodeCursor. Errors: validation_failed.
func DecodeCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, ErrBadCursor
	}
	micros, id, ok := strings.Cut(string(raw), "_")
	us, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil {
		return Cursor{}, ErrBadCursor
	}
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return Cursor{}, ErrBadCursor
	}
	t := time.UnixMicro(us).UTC()
	if t.Before(Earliest) || t.Year() > 9999 {
		return Cursor{}, ErrBadCursor
	}
	c := Cursor{Timestamp: t, ID: u.String()}
	// One spelling per cursor, the one EncodeCursor makes: no sign or leading zero, the id in lower case, no
	// trailing bits.
	if EncodeCursor(c) != s {
		return Cursor{}, ErrBadCursor
	}
	return c, nil
}

// Summary counts the organization's events per day, name and category over the days from to to (inclusive;
// "" for the defaults: the last DefaultSummaryDays days up to today, UTC). Errors: validation_failed,
// unavailable.
func (s *Service) Summary(ctx context.Context, p nexus.Principal, q SummaryQuery) (Summary, error) {
	today := s.now().UTC().Truncate(24 * time.Hour)
	var to, from time.Time
	var err error
	if q.To == "" {
		to = today
	} else if to, err = nexus.ParseDate(q.To); err != nil {
		return Summary{}, nexus.Invalid(nexus.FieldError{In: nexus.InQuery, Name: "to", Detail: "must be an RFC 3339 date (YYYY-MM-DD)"})
	}
	if q.From == "" {
		from = to.AddDate(0, 0, -(DefaultSummaryDays - 1))
		if first := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC); from.Before(first) {
			from = first // a date of year 0 is no RFC 3339 date
		}
	} else if from, err = nexus.ParseDate(q.From); err != nil {
		return Summary{}, nexus.Invalid(nexus.FieldError{In: nexus.InQuery, Name: "from", Detail: "must be an RFC 3339 date (YYYY-MM-DD)"})
	}
	switch {
	case from.After(to):
		return Summary{}, nexus.Invalid(nexus.FieldError{In: nexus.InQuery, Name: "from", Detail: "must not be after to"})
	case to.Sub(from) >= MaxSummaryDays*24*time.Hour:
		return Summary{}, nexus.Invalid(nexus.FieldError{In: nexus.InQuery, Name: "from",
			Detail: fmt.Sprintf("must be at most %d days before to", MaxSummaryDays-1)})
	}
	q.From, q.To = Day(from), Day(to)
	counts, err := s.store.DailyCounts(ctx, p.OrganizationID, q)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{From: q.From, To: q.To, Counts: counts}
	for _, c := range counts {
		sum.Total += c.Count
	}
	return sum, nil
}
