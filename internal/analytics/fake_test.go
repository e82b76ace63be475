package analytics

import (
	"context"
	"slices"
	"sync"
	"time"
)

// fakeStore is an in-memory Store that records every InsertEvents call. By default InsertEvents behaves like the
// real stores: the first event of an (organization, event id) is stored, a later one with the same fingerprint
// is a duplicate with the first one's receipt, with another fingerprint a conflict, and an event whose user must
// be checked and is not in users is refused. insert, when set, replaces that behaviour; it gets the number of
// the call (0 for the first).
type fakeStore struct {
	mu     sync.Mutex
	calls  [][]Pending           // every InsertEvents call, in order
	stored map[[2]string]Pending // by organization and event id
	users  map[[2]string]bool    // known users, by organization and user id
	insert func(ctx context.Context, call int, events []Pending) ([]Outcome, error)

	lists  []listCall
	list   []Event // what ListEvents returns
	counts []Count // what DailyCounts returns
	sums   []summaryCall
	err    error // returned by ListEvents and DailyCounts when set
}

type listCall struct {
	OrgID string
	Query ListQuery
}

type summaryCall struct {
	OrgID string
	Query SummaryQuery
}

var _ Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{stored: map[[2]string]Pending{}, users: map[[2]string]bool{}}
}

func (f *fakeStore) InsertEvents(ctx context.Context, events []Pending) ([]Outcome, error) {
	f.mu.Lock()
	call := len(f.calls)
	f.calls = append(f.calls, slices.Clone(events))
	insert := f.insert
	f.mu.Unlock()
	if insert != nil {
		return insert(ctx, call, events)
	}
	return f.store(events), nil
}

// store is the default InsertEvents.
func (f *fakeStore) store(events []Pending) []Outcome {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Outcome, len(events))
	for i, ev := range events {
		if ev.CheckUser && !f.users[[2]string{ev.OrganizationID, ev.UserID}] {
			out[i] = Outcome{Kind: UnknownUser}
			continue
		}
		k := [2]string{ev.OrganizationID, ev.EventID}
		st, ok := f.stored[k]
		switch {
		case !ok:
			f.stored[k] = ev
			out[i] = Outcome{Kind: Stored, Receipt: receiptFor(ev, false)}
		case st.Fingerprint == ev.Fingerprint:
			out[i] = Outcome{Kind: Duplicate, Receipt: receiptFor(st, true)}
		default:
			out[i] = Outcome{Kind: Conflict}
		}
	}
	return out
}

func receiptFor(ev Pending, dup bool) Receipt {
	return Receipt{ID: ev.ID, EventID: ev.EventID, Duplicate: dup, ReceivedAt: ev.ReceivedAt, Timestamp: ev.Timestamp}
}

// insertCalls returns a copy of the InsertEvents calls so far.
func (f *fakeStore) insertCalls() [][]Pending {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// eventIDs returns the event ids of every event given to InsertEvents, in order.
func (f *fakeStore) eventIDs() []string {
	var ids []string
	for _, call := range f.insertCalls() {
		for _, ev := range call {
			ids = append(ids, ev.EventID)
		}
	}
	return ids
}

func (f *fakeStore) ListEvents(_ context.Context, orgID string, q ListQuery) ([]Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists = append(f.lists, listCall{orgID, q})
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.list), nil
}

func (f *fakeStore) DailyCounts(_ context.Context, orgID string, q SummaryQuery) ([]Count, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sums = append(f.sums, summaryCall{orgID, q})
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.counts), nil
}

func (f *fakeStore) ProcessEvents(context.Context, int) (int, error) { return 0, nil }

func (f *fakeStore) Backlog(context.Context) (int, time.Time, error) { return 0, time.Time{}, nil }
