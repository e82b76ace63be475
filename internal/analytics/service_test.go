package analytics

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// newTestService returns a service over f, with a writer over f closed when the test ends, and a clock that
// reads now.
func newTestService(t *testing.T, f *fakeStore, now time.Time) (*Service, *Writer) {
	t.Helper()
	w := NewWriter(f, nil, WriterOptions{Workers: 1}, nil)
	t.Cleanup(w.Close)
	s, err := NewService(Options{Store: f, Writer: w, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	return s, w
}

// checkError fails the test unless err is want (by errors.Is) and of its kind.
func checkError(t *testing.T, what string, err error, want *nexus.Error) {
	t.Helper()
	if !errors.Is(err, want) || nexus.KindOf(err) != want.Kind {
		t.Errorf("%s = %v, want %s (%v)", what, err, want.Code, want.Kind)
	}
}

func TestNewService(t *testing.T) {
	f := newFakeStore()
	w := NewWriter(f, nil, WriterOptions{}, nil)
	defer w.Close()
	if _, err := NewService(Options{Writer: w}); err == nil {
		t.Errorf("NewService without a store succeeded")
	}
	if _, err := NewService(Options{Store: f}); err == nil {
		t.Errorf("NewService without a writer succeeded")
	}
}

func TestTrackOutcomes(t *testing.T) {
	receipt := Receipt{ID: "0190f000-0000-7000-8000-0000000000a1", EventID: testEvent,
		ReceivedAt: testNow.Add(-time.Hour), Timestamp: testNow.Add(-2 * time.Hour)}
	dup := receipt
	dup.Duplicate = true
	tests := []struct {
		name    string
		outcome Outcome
		want    Receipt
		err     *nexus.Error
	}{
		{"stored", Outcome{Kind: Stored, Receipt: receipt}, receipt, nil},
		{"duplicate", Outcome{Kind: Duplicate, Receipt: dup}, dup, nil},
		{"conflict", Outcome{Kind: Conflict}, Receipt{}, ErrEventConflict},
		{"unknown user", Outcome{Kind: UnknownUser}, Receipt{}, ErrUnknownUser},
		{"an outcome the service does not know", Outcome{Kind: OutcomeKind(42)}, Receipt{}, nexus.Internal(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeStore()
			f.insert = func(_ context.Context, _ int, events []Pending) ([]Outcome, error) {
				return []Outcome{tt.outcome}, nil
			}
			s, _ := newTestService(t, f, testNow)
			got, err := s.Track(context.Background(), principal(nexus.RoleMember), Input{EventID: testEvent, Name: "click", Category: "ui"})
			if tt.err != nil {
				checkError(t, "Track", err, tt.err)
			} else if err != nil {
				t.Fatalf("Track: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("receipt (-want +got):\n%s", diff)
			}
		})
	}

	// What the HTTP layer answers is decided by the errors' kinds and fields.
	if ErrEventConflict.Kind != nexus.KindConflict || ErrEventConflict.Code != "conflict" ||
		len(ErrEventConflict.Fields) != 1 || ErrEventConflict.Fields[0].Name != "/event_id" {
		t.Errorf("ErrEventConflict = %+v, want kind conflict, code conflict, field /event_id", ErrEventConflict)
	}
	if ErrUnknownUser.Kind != nexus.KindUnprocessable || ErrUnknownUser.Code != "unknown_user" ||
		len(ErrUnknownUser.Fields) != 1 || ErrUnknownUser.Fields[0].Name != "/user_id" {
		t.Errorf("ErrUnknownUser = %+v, want kind unprocessable, code unknown_user, field /user_id", ErrUnknownUser)
	}
}

func TestTrack(t *testing.T) {
	// The clock is not in UTC and has nanoseconds: the receive time is its UTC microsecond.
	now := time.Date(2026, 3, 10, 17, 0, 0, 123456789, time.FixedZone("UTC+5", 5*3600))
	received := time.Date(2026, 3, 10, 12, 0, 0, 123456000, time.UTC)
	f := newFakeStore()
	f.users[[2]string{testOrg, otherUser}] = true
	s, _ := newTestService(t, f, now)
	ctx := context.Background()
	admin := principal(nexus.RoleAdmin)

	in := Input{EventID: testEvent, Name: "click", Category: "ui", Properties: []byte(`{"b":1,"a":2}`)}
	first, err := s.Track(ctx, admin, in)
	if err != nil {
		t.Fatalf("Track: %v", err)
	}
	calls := f.insertCalls()
	if len(calls) != 1 || len(calls[0]) != 1 {
		t.Fatalf("InsertEvents calls = %v, want one of one event", calls)
	}
	ev := calls[0][0]
	want := Pending{Event: Event{ID: ev.ID, EventID: testEvent, OrganizationID: testOrg, UserID: testUser, Name: "click",
		Category: "ui", Properties: []byte(`{"a":2,"b":1}`), Timestamp: received, ReceivedAt: received},
		Fingerprint: ev.Fingerprint}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("event stored (-want +got):\n%s", diff)
	}
	if ev.ReceivedAt.Location() != time.UTC {
		t.Errorf("ReceivedAt is in %v, want UTC", ev.ReceivedAt.Location())
	}
	if diff := cmp.Diff(Receipt{ID: ev.ID, EventID: testEvent, ReceivedAt: received, Timestamp: received}, first); diff != "" {
		t.Errorf("first receipt (-want +got):\n%s", diff)
	}

	// The same event again, its members in another order: the first one's receipt, marked duplicate.
	again, err := s.Track(ctx, admin, Input{EventID: strings.ToUpper(testEvent), Name: "click", Category: "ui", Properties: []byte(`{"a":2,"b":1}`)})
	if err != nil {
		t.Fatalf("Track again: %v", err)
	}
	wantAgain := first
	wantAgain.Duplicate = true
	if diff := cmp.Diff(wantAgain, again); diff != "" {
		t.Errorf("receipt of a retry (-want +got):\n%s", diff)
	}

	// The same event id with other content.
	_, err = s.Track(ctx, admin, Input{EventID: testEvent, Name: "click", Category: "ui", Properties: []byte(`{"a":3,"b":1}`)})
	checkError(t, "Track with a used event id", err, ErrEventConflict)

	// Another user: one of the organization, and one that is not.
	if _, err := s.Track(ctx, admin, Input{Name: "click", Category: "ui", UserID: otherUser}); err != nil {
		t.Errorf("Track for a user of the organization: %v", err)
	}
	_, err = s.Track(ctx, admin, Input{Name: "click", Category: "ui", UserID: uuid.NewString()})
	checkError(t, "Track for a stranger", err, ErrUnknownUser)

	// Refused before the store.
	n := len(f.insertCalls())
	_, err = s.Track(ctx, principal(nexus.RoleMember), Input{Name: "click", Category: "ui", UserID: otherUser})
	checkError(t, "Track for another user by a member", err, nexus.ErrInsufficientPermission)
	_, err = s.Track(ctx, admin, Input{Name: "click", Category: "ui", Timestamp: tsPtr(received.Add(2 * time.Hour))})
	checkError(t, "Track of a future event", err, nexus.Invalid())
	if got := len(f.insertCalls()); got != n {
		t.Errorf("refused events reached the store")
	}
}

func TestTrackUnavailable(t *testing.T) {
	f := newFakeStore()
	f.insert = func(context.Context, int, []Pending) ([]Outcome, error) {
		return nil, nexus.Unavailable(errors.New("connection refused"))
	}
	s, w := newTestService(t, f, testNow)
	ctx := context.Background()
	in := Input{Name: "click", Category: "ui"}
	_, err := s.Track(ctx, principal(nexus.RoleMember), in)
	checkError(t, "Track with the database down", err, nexus.ErrUnavailable)
	res, err := s.TrackBatch(ctx, principal(nexus.RoleMember), []Input{in, in})
	checkError(t, "TrackBatch with the database down", err, nexus.ErrUnavailable)
	if res != nil {
		t.Errorf("TrackBatch results = %v, want none", res)
	}
	w.Close()
	_, err = s.Track(ctx, principal(nexus.RoleMember), in)
	checkError(t, "Track after the writer closed", err, nexus.ErrUnavailable)
}

func TestTrackBatch(t *testing.T) {
	f := newFakeStore()
	f.users[[2]string{testOrg, otherUser}] = true
	s, _ := newTestService(t, f, testNow)
	a := "0190f000-0000-7000-8000-0000000000a1"
	ins := []Input{
		{EventID: a, Name: "click", Category: "ui"},                                             // 0 stored
		{Name: "click", Category: "ui", Timestamp: tsPtr(Earliest.Add(-time.Second))},           // 1 invalid
		{Name: "click", Category: "ui", UserID: uuid.NewString()},                               // 2 a stranger
		{EventID: a, Name: "click", Category: "ui"},                                             // 3 the same as 0
		{EventID: a, Name: "clack", Category: "ui"},                                             // 4 conflicts with 0
		{Name: "click", Category: "ui", Properties: []byte(`{"a":{"b":{"c":{"d":{"e":[]}}}}}`)}, // 5 too deep
		{Name: "click", Category: "ui", UserID: otherUser},                                      // 6 stored, another user
	}
	stored := []int{0, 2, 3, 4, 6} // the inputs given to the store, in order
	errs := map[int]*nexus.Error{1: nexus.Invalid(), 2: ErrUnknownUser, 4: ErrEventConflict, 5: nexus.Invalid()}
	ptrs := map[int]string{1: "/timestamp", 5: "/properties/a/b/c/d/e"} // relative to the event

	got, err := s.TrackBatch(context.Background(), principal(nexus.RoleAdmin), ins)
	if err != nil {
		t.Fatalf("TrackBatch: %v", err)
	}
	if len(got) != len(ins) {
		t.Fatalf("%d results for %d events", len(got), len(ins))
	}
	calls := f.insertCalls()
	if len(calls) != 1 || len(calls[0]) != len(stored) {
		t.Fatalf("InsertEvents calls of %v events, want one call with the %d valid events", callSizes(f), len(stored))
	}
	for k, i := range stored {
		ev := calls[0][k]
		if ev.Name != ins[i].Name || (ins[i].UserID != "" && ev.UserID != ins[i].UserID) ||
			(ins[i].EventID != "" && ev.EventID != ins[i].EventID) || !ev.ReceivedAt.Equal(testNow) {
			t.Errorf("event %d given to the store is %+v, want input %d", k, ev.Event, i)
		}
	}
	for i, r := range got {
		want := errs[i]
		if want == nil {
			if r.Err != nil {
				t.Errorf("result %d: %v", i, r.Err)
			}
			continue
		}
		checkError(t, fmt.Sprintf("result %d", i), r.Err, want)
		if r.Receipt != (Receipt{}) {
			t.Errorf("result %d has a receipt %+v and an error", i, r.Receipt)
		}
		if ptr, ok := ptrs[i]; ok {
			var e *nexus.Error
			if !errors.As(r.Err, &e) || len(e.Fields) != 1 || e.Fields[0].Name != ptr {
				t.Errorf("result %d = %v, want one field %s", i, r.Err, ptr)
			}
		}
	}
	if diff := cmp.Diff(Receipt{ID: calls[0][0].ID, EventID: a, ReceivedAt: testNow, Timestamp: testNow}, got[0].Receipt); diff != "" {
		t.Errorf("receipt 0 (-want +got):\n%s", diff)
	}
	dup := got[0].Receipt
	dup.Duplicate = true
	if diff := cmp.Diff(dup, got[3].Receipt); diff != "" {
		t.Errorf("receipt 3, a duplicate of 0 in the same batch (-want +got):\n%s", diff)
	}
	if got[6].Receipt.ID != calls[0][4].ID || got[6].Receipt.Duplicate {
		t.Errorf("receipt 6 = %+v, want the stored event %s", got[6].Receipt, calls[0][4].ID)
	}
}

func TestTrackBatchPermissionPerEvent(t *testing.T) {
	f := newFakeStore()
	s, _ := newTestService(t, f, testNow)
	got, err := s.TrackBatch(context.Background(), principal(nexus.RoleManager), []Input{
		{Name: "mine", Category: "ui"},
		{Name: "theirs", Category: "ui", UserID: otherUser},
		{Name: "mine too", Category: "ui", UserID: testUser},
	})
	if err != nil {
		t.Fatalf("TrackBatch: %v", err)
	}
	if got[0].Err != nil || got[2].Err != nil {
		t.Errorf("the caller's own events were refused: %v, %v", got[0].Err, got[2].Err)
	}
	checkError(t, "the event about another user", got[1].Err, nexus.ErrInsufficientPermission)
	if ids := f.eventIDs(); len(ids) != 2 {
		t.Errorf("the store got %d events, want the caller's 2", len(ids))
	}
}

func TestTrackBatchNothingValid(t *testing.T) {
	f := newFakeStore()
	s, _ := newTestService(t, f, testNow)
	got, err := s.TrackBatch(context.Background(), principal(nexus.RoleMember), []Input{
		{Name: "a", Category: "ui", Properties: []byte(`[]`)},
		{Name: "b", Category: "ui", UserID: otherUser},
	})
	if err != nil {
		t.Fatalf("TrackBatch: %v", err)
	}
	checkError(t, "result 0", got[0].Err, nexus.Invalid())
	checkError(t, "result 1", got[1].Err, nexus.ErrInsufficientPermission)
	if n := len(f.insertCalls()); n != 0 {
		t.Errorf("%d InsertEvents calls, want none", n)
	}
}

func TestList(t *testing.T) {
	events := make([]Event, 4)
	for i := range events {
		events[i] = Event{ID: newID(), EventID: newID(), OrganizationID: testOrg, Timestamp: testNow.Add(-time.Duration(i) * time.Minute)}
	}
	cursor := &Cursor{Timestamp: testNow, ID: testEvent}
	tests := []struct {
		name      string
		q         ListQuery
		returned  int // how many events the store returns
		wantLimit int
		wantPage  Page
	}{
		{"default limit", ListQuery{}, 2, DefaultListLimit, Page{Events: events[:2]}},
		{"capped limit", ListQuery{Limit: 10_000}, 2, MaxListLimit, Page{Events: events[:2]}},
		{"negative limit", ListQuery{Limit: -1}, 0, DefaultListLimit, Page{Events: []Event{}}},
		{"exactly a page", ListQuery{Limit: 3}, 3, 3, Page{Events: events[:3]}},
		{"more than a page", ListQuery{Limit: 3, After: cursor}, 4, 3,
			Page{Events: events[:3], HasMore: true, Next: &Cursor{Timestamp: events[2].Timestamp, ID: events[2].ID}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeStore()
			f.list = append([]Event{}, events[:tt.returned]...)
			s, _ := newTestService(t, f, testNow)
			q := tt.q
			q.UserID, q.Name = strings.ToUpper(otherUser), "click"
			got, err := s.List(context.Background(), principal(nexus.RoleAdmin), q)
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if diff := cmp.Diff(tt.wantPage, got); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
			want := tt.q
			want.Limit, want.UserID, want.Name, want.Now = tt.wantLimit, otherUser, "click", testNow
			if diff := cmp.Diff([]listCall{{testOrg, want}}, f.lists); diff != "" {
				t.Errorf("ListEvents calls (-want +got):\n%s", diff)
			}
		})
	}

	f := newFakeStore()
	f.err = nexus.Unavailable(errors.New("down"))
	s, _ := newTestService(t, f, testNow)
	_, err := s.List(context.Background(), principal(nexus.RoleAdmin), ListQuery{})
	checkError(t, "List with the database down", err, nexus.ErrUnavailable)
}

func TestSummary(t *testing.T) {
	// Already March 10 in the clock's zone, still March 9 in UTC.
	now := time.Date(2026, 3, 10, 1, 0, 0, 0, time.FixedZone("UTC+5", 5*3600))
	tests := []struct {
		name     string
		from, to string
		wantFrom string // the days given to the store, when valid
		wantTo   string
		invalid  string // the failing query parameter
	}{
		{"defaults: the last 30 days up to today, UTC", "", "", "2026-02-08", "2026-03-09", ""},
		{"only to", "", "2025-01-31", "2025-01-02", "2025-01-31", ""},
		{"only to, in the first days of year 1", "", "0001-01-05", "0001-01-01", "0001-01-05", ""}, // never year 0
		{"only from", "2026-03-01", "", "2026-03-01", "2026-03-09", ""},
		{"one day", "2026-01-15", "2026-01-15", "2026-01-15", "2026-01-15", ""},
		{"in the future", "2027-01-01", "2027-01-31", "2027-01-01", "2027-01-31", ""},
		{"366 days of a leap year", "2024-01-01", "2024-12-31", "2024-01-01", "2024-12-31", ""},
		{"366 days", "2025-01-01", "2026-01-01", "2025-01-01", "2026-01-01", ""},
		{"367 days", "2025-01-01", "2026-01-02", "", "", "from"},
		{"367 days ending in a leap year", "2023-12-31", "2024-12-31", "", "", "from"},
		{"from after to", "2026-01-16", "2026-01-15", "", "", "from"},
		{"from after today", "2026-03-10", "", "", "", "from"},
		{"to not a date", "", "2026-02-30", "", "", "to"},
		{"from not a date", "yesterday", "2026-01-15", "", "", "from"},
		{"a date-time", "2026-01-01T00:00:00Z", "2026-01-15", "", "", "from"},
		{"a one-digit month", "2026-1-01", "2026-01-15", "", "", "from"},
		{"a signed year", "+2026-01-01", "2026-01-15", "", "", "from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeStore()
			f.counts = []Count{{"2026-03-01", "click", "ui", 3}, {"2026-03-01", "view", "ui", 4}, {"2026-03-02", "click", "ui", 5}}
			s, _ := newTestService(t, f, now)
			got, err := s.Summary(context.Background(), principal(nexus.RoleAnalyst),
				SummaryQuery{From: tt.from, To: tt.to, Name: "click", Category: "ui"})
			if tt.invalid != "" {
				var e *nexus.Error
				if !errors.As(err, &e) || e.Code != "validation_failed" || len(e.Fields) != 1 ||
					e.Fields[0].In != nexus.InQuery || e.Fields[0].Name != tt.invalid {
					t.Errorf("Summary = %v, want validation_failed on the query parameter %q", err, tt.invalid)
				} else if e.Kind != nexus.KindInvalid {
					t.Errorf("Summary error kind = %v, want invalid", e.Kind)
				}
				if len(f.sums) != 0 {
					t.Errorf("an invalid query reached the store: %+v", f.sums)
				}
				return
			}
			if err != nil {
				t.Fatalf("Summary: %v", err)
			}
			want := Summary{From: tt.wantFrom, To: tt.wantTo, Total: 12, Counts: f.counts}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Summary (-want +got):\n%s", diff)
			}
			wantQ := SummaryQuery{From: tt.wantFrom, To: tt.wantTo, Name: "click", Category: "ui"}
			if diff := cmp.Diff([]summaryCall{{testOrg, wantQ}}, f.sums); diff != "" {
				t.Errorf("DailyCounts calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummaryDefaultAtMidnight(t *testing.T) {
	for _, tc := range []struct {
		now      time.Time
		from, to string
	}{
		{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), "2026-01-31", "2026-03-01"},
		{time.Date(2026, 2, 28, 23, 59, 59, 999999999, time.UTC), "2026-01-30", "2026-02-28"},
		{time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), "2024-02-01", "2024-03-01"},
	} {
		f := newFakeStore()
		s, _ := newTestService(t, f, tc.now)
		got, err := s.Summary(context.Background(), principal(nexus.RoleAdmin), SummaryQuery{})
		if err != nil {
			t.Fatalf("Summary: %v", err)
		}
		if got.From != tc.from || got.To != tc.to {
			t.Errorf("at %v: Summary from %s to %s, want %s to %s", tc.now, got.From, got.To, tc.from, tc.to)
		}
	}
}

// trailingBits returns s, a base64url encoding without padding whose length leaves bits over, with those bits
// set: the same bytes to a lenient decoder.
func trailingBits(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last|1])
}

func TestCursor(t *testing.T) {
	valid := []Cursor{
		{Timestamp: time.Date(2026, 3, 10, 12, 0, 0, 123456000, time.UTC), ID: testEvent},
		{Timestamp: Earliest, ID: "00000000-0000-0000-0000-000000000000"},
		{Timestamp: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), ID: "ffffffff-ffff-ffff-ffff-ffffffffffff"},
	}
	for _, c := range valid {
		s := EncodeCursor(c)
		got, err := DecodeCursor(s)
		if err != nil {
			t.Errorf("DecodeCursor(EncodeCursor(%+v)) = %v", c, err)
			continue
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("cursor round trip (-want +got):\n%s", diff)
		}
		if got.Timestamp.Location() != time.UTC {
			t.Errorf("decoded timestamp is in %v, want UTC", got.Timestamp.Location())
		}
	}
	// What a cursor keeps: the microsecond, and the id in lower case.
	got, err := DecodeCursor(EncodeCursor(Cursor{Timestamp: time.Date(2026, 3, 10, 17, 0, 0, 123456789, time.FixedZone("X", 5*3600)),
		ID: strings.ToUpper(testEvent)}))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Cursor{Timestamp: time.Date(2026, 3, 10, 12, 0, 0, 123456000, time.UTC), ID: testEvent}); !cmp.Equal(want, got) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}

	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	micros := "1773144000123456" // 2026-03-10T12:00:00.123456Z
	garbage := []string{
		"",
		"!!!",
		"not a cursor",
		enc("hello"),
		enc(micros),                 // no id
		enc(micros + "_"),           // empty id
		enc(micros + "_not-a-uuid"), // not a UUID
		enc(micros + "_" + strings.ReplaceAll(testEvent, "-", "")),                       // a UUID without dashes
		enc(micros + "_{" + testEvent + "}"),                                             // in braces
		enc(micros + "_urn:uuid:" + testEvent),                                           // as a URN
		enc("_" + testEvent),                                                             // no time
		enc("12x_" + testEvent),                                                          // not a number
		enc("1.5_" + testEvent),                                                          // not an integer
		enc("-1_" + testEvent),                                                           // before 2000
		enc("946684799999999_" + testEvent),                                              // a microsecond before 2000
		enc("253402300800000000_" + testEvent),                                           // year 10000
		enc("99999999999999999999_" + testEvent),                                         // overflows
		base64.URLEncoding.EncodeToString([]byte(micros + "_" + testEvent)),              // padded
		base64.StdEncoding.EncodeToString([]byte("\xfb\xff" + micros + "_" + testEvent)), // not URL-safe
		EncodeCursor(valid[0]) + "A",                                                     // one character too many
		// Second spellings of a valid cursor: each decodes to the same position, and only the first is a cursor.
		enc("+" + micros + "_" + testEvent),            // a sign
		enc("0" + micros + "_" + testEvent),            // a leading zero
		enc(micros + "_" + strings.ToUpper(testEvent)), // the id in upper case
		trailingBits(EncodeCursor(Cursor{Timestamp: time.UnixMicro(1773144000123456).UTC(), ID: testEvent})), // non-zero trailing bits
	}
	for _, s := range garbage {
		c, err := DecodeCursor(s)
		if !errors.Is(err, ErrBadCursor) || nexus.KindOf(err) != nexus.KindInvalid {
			t.Errorf("DecodeCursor(%q) = %+v, %v; want ErrBadCursor", s, c, err)
		}
	}
	var e *nexus.Error
	if !errors.As(ErrBadCursor, &e) || len(e.Fields) != 1 || e.Fields[0].In != nexus.InQuery || e.Fields[0].Name != "cursor" {
		t.Errorf("ErrBadCursor = %+v, want a field error on the query parameter cursor", ErrBadCursor)
	}
}
