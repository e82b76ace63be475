package analytics

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The writer tests run in synctest bubbles: synctest.Wait returns once every goroutine of the test (the
// writer's workers included) is blocked, so "the worker is inside InsertEvents" or "the submissions are
// queued" are facts rather than guesses, and lingers and timeouts take no real time.

// pendings returns n events ready to be stored, each with its own id and event id.
func pendings(n int) []Pending {
	out := make([]Pending, n)
	for i := range out {
		out[i] = Pending{Event: Event{ID: newID(), EventID: newID(), OrganizationID: testOrg, UserID: testUser,
			Name: "click", Category: "ui", Properties: []byte("{}"), Timestamp: testNow, ReceivedAt: testNow},
			Fingerprint: "fp"}
	}
	return out
}

// gate makes InsertEvents calls wait until it is opened: the calls whose number block says.
func gate(f *fakeStore, block func(call int) bool, then func(ctx context.Context, call int, events []Pending) ([]Outcome, error)) (open func()) {
	ch := make(chan struct{})
	if then == nil {
		then = func(_ context.Context, _ int, events []Pending) ([]Outcome, error) { return f.store(events), nil }
	}
	f.insert = func(ctx context.Context, call int, events []Pending) ([]Outcome, error) {
		if block(call) {
			<-ch
		}
		return then(ctx, call, events)
	}
	return sync.OnceFunc(func() { close(ch) })
}

func firstCall(call int) bool { return call == 0 }

// submission is a Submit running in its own goroutine.
type submission struct {
	events []Pending
	out    []Outcome
	err    error
	done   chan struct{}
}

func submitAsync(ctx context.Context, w *Writer, events []Pending) *submission {
	s := &submission{events: events, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.out, s.err = w.Submit(ctx, events)
	}()
	return s
}

func (s *submission) finished() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// checkStored fails the test unless the submission returned, without error, a Stored outcome for each of its
// events, in order.
func (s *submission) checkStored(t *testing.T) {
	t.Helper()
	if !s.finished() {
		t.Errorf("a submission has not returned")
		return
	}
	if s.err != nil {
		t.Errorf("Submit: %v", s.err)
		return
	}
	want := make([]Outcome, len(s.events))
	for i, ev := range s.events {
		want[i] = Outcome{Kind: Stored, Receipt: receiptFor(ev, false)}
	}
	if diff := cmp.Diff(want, s.out); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

// callSizes returns the number of events of every InsertEvents call.
func callSizes(f *fakeStore) []int {
	var n []int
	for _, c := range f.insertCalls() {
		n = append(n, len(c))
	}
	return n
}

func eventIDsOf(subs ...*submission) []string {
	var ids []string
	for _, s := range subs {
		for _, ev := range s.events {
			ids = append(ids, ev.EventID)
		}
	}
	return ids
}

func TestWriterGroupsConcurrentSubmissions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeStore()
		open := gate(f, firstCall, nil)
		var stored atomic.Int64
		w := NewWriter(f, nil, WriterOptions{Workers: 1, MaxEvents: 1000}, func() { stored.Add(1) })
		defer w.Close()
		defer open()

		first := submitAsync(ctx, w, pendings(1))
		synctest.Wait() // the worker waits inside the first InsertEvents
		var subs []*submission
		for range 10 {
			subs = append(subs, submitAsync(ctx, w, pendings(2)))
		}
		synctest.Wait()
		if got := w.QueueDepth(); got != 20 {
			t.Errorf("QueueDepth = %d while the store is busy, want 20", got)
		}
		if slices.ContainsFunc(subs, (*submission).finished) || first.finished() {
			t.Fatalf("a submission returned before its events were committed")
		}
		open()
		synctest.Wait()

		first.checkStored(t)
		for _, s := range subs {
			s.checkStored(t)
		}
		if diff := cmp.Diff([]int{1, 20}, callSizes(f)); diff != "" {
			t.Errorf("events per InsertEvents call (-want +got):\n%s", diff)
		}
		got := f.eventIDs()
		slices.Sort(got)
		want := eventIDsOf(append(subs, first)...)
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events stored (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(WriterStats{Commits: 2, Stored: 21}, w.Stats()); diff != "" {
			t.Errorf("Stats (-want +got):\n%s", diff)
		}
		if n := stored.Load(); n != 2 {
			t.Errorf("onStore called %d times, want once per commit: 2", n)
		}
	})
}

func TestWriterMaxEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeStore()
		open := gate(f, firstCall, nil)
		const maxEvents = 5
		w := NewWriter(f, nil, WriterOptions{Workers: 1, MaxEvents: maxEvents}, nil)
		defer w.Close()
		defer open()

		first := submitAsync(ctx, w, pendings(1))
		synctest.Wait()
		var subs []*submission
		for range 10 {
			subs = append(subs, submitAsync(ctx, w, pendings(2)))
			synctest.Wait() // queued in this order
		}
		open()
		synctest.Wait()
		first.checkStored(t)
		for _, s := range subs {
			s.checkStored(t)
		}
		sizes := callSizes(f)
		total, over := 0, 0
		for _, n := range sizes[1:] {
			total += n
			if n > maxEvents {
				over++
			}
		}
		if over > 0 {
			t.Errorf("BUG: %d InsertEvents calls got more than MaxEvents = %d events (\"events in one transaction at most\"), "+
				"although every job fits: the worker takes one more job whenever it has fewer than MaxEvents, whatever "+
				"the job's size; events per call: %v", over, maxEvents, sizes)
		}
		if total != 20 || len(sizes) > 1+20/2 || len(sizes) < 1+20/maxEvents {
			t.Errorf("events per InsertEvents call = %v; want 20 events after the first call, grouped into calls of at most %d",
				sizes, maxEvents)
		}
	})
}

func TestWriterLinger(t *testing.T) {
	t.Run("until MaxEvents", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			f := newFakeStore()
			w := NewWriter(f, nil, WriterOptions{Workers: 1, MaxEvents: 3, Linger: time.Hour}, nil)
			defer w.Close()
			start := time.Now()
			a := submitAsync(ctx, w, pendings(1))
			synctest.Wait()
			if n := len(f.insertCalls()); n != 0 || a.finished() {
				t.Fatalf("with one event of three, %d InsertEvents calls, submission returned %v; want the worker to linger", n, a.finished())
			}
			b := submitAsync(ctx, w, pendings(2))
			synctest.Wait()
			a.checkStored(t)
			b.checkStored(t)
			if diff := cmp.Diff([]int{3}, callSizes(f)); diff != "" {
				t.Errorf("events per InsertEvents call (-want +got):\n%s", diff)
			}
			if d := time.Since(start); d != 0 {
				t.Errorf("committed after %v, want as soon as MaxEvents were there", d)
			}
		})
	})
	t.Run("until the linger ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			f := newFakeStore()
			w := NewWriter(f, nil, WriterOptions{Workers: 1, MaxEvents: 100, Linger: 10 * time.Millisecond}, nil)
			defer w.Close()
			start := time.Now()
			a := submitAsync(ctx, w, pendings(1))
			time.Sleep(5 * time.Millisecond)
			b := submitAsync(ctx, w, pendings(1))
			synctest.Wait()
			if a.finished() || b.finished() {
				t.Fatalf("a submission returned before the linger ended")
			}
			time.Sleep(5 * time.Millisecond)
			synctest.Wait()
			a.checkStored(t)
			b.checkStored(t)
			if diff := cmp.Diff([]int{2}, callSizes(f)); diff != "" {
				t.Errorf("events per InsertEvents call (-want +got):\n%s", diff)
			}
			if d := time.Since(start); d != 10*time.Millisecond {
				t.Errorf("committed after %v, want after the linger, 10ms", d)
			}
		})
	})
	t.Run("until Close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			f := newFakeStore()
			w := NewWriter(f, nil, WriterOptions{Workers: 1, MaxEvents: 100, Linger: time.Hour}, nil)
			start := time.Now()
			a := submitAsync(ctx, w, pendings(1))
			synctest.Wait()
			w.Close()
			if d := time.Since(start); d != 0 {
				t.Errorf("Close took %v, want it to cut the linger short", d)
			}
			synctest.Wait()
			a.checkStored(t)
		})
	})
}

func TestWriterQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeStore()
		open := gate(f, firstCall, nil)
		w := NewWriter(f, nil, WriterOptions{Workers: 1, QueueEvents: 4}, nil)
		defer w.Close()
		defer open()

		first := submitAsync(ctx, w, pendings(1))
		synctest.Wait() // taken by the worker: no longer queued
		queued := submitAsync(ctx, w, pendings(3))
		synctest.Wait()

		refused := pendings(2)
		if out, err := w.Submit(ctx, refused); !errors.Is(err, ErrOverloaded) || out != nil {
			t.Errorf("Submit of 2 events with 3 of 4 queued = %v, %v; want ErrOverloaded", out, err)
		} else if nexus.KindOf(err) != nexus.KindUnavailable {
			t.Errorf("ErrOverloaded is of kind %v, want unavailable", nexus.KindOf(err))
		}
		fits := submitAsync(ctx, w, pendings(1))
		synctest.Wait()
		if got := w.QueueDepth(); got != 4 {
			t.Errorf("QueueDepth = %d, want 4", got)
		}
		if _, err := w.Submit(ctx, pendings(1)); !errors.Is(err, ErrOverloaded) {
			t.Errorf("Submit of 1 event with the queue full = %v, want ErrOverloaded", err)
		}

		open()
		synctest.Wait()
		for _, s := range []*submission{first, queued, fits} {
			s.checkStored(t)
		}
		tooBig := pendings(5)
		if _, err := w.Submit(ctx, tooBig); !errors.Is(err, ErrOverloaded) {
			t.Errorf("Submit of 5 events with an empty queue of 4 = %v, want ErrOverloaded", err)
		}

		got := f.eventIDs()
		want := eventIDsOf(first, queued, fits)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events given to the store (-want +got):\n%s", diff)
		}
		if s := w.Stats(); s.Refused != 2+1+5 || s.Stored != 5 || s.Queued != 0 {
			t.Errorf("Stats = %+v, want 8 refused, 5 stored, none queued", s)
		}
	})
}

func TestWriterCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel() // releases submissions a broken Close left waiting
		f := newFakeStore()
		open := gate(f, func(int) bool { return true }, nil)
		defer open()
		w := NewWriter(f, nil, WriterOptions{Workers: 2, MaxEvents: 3}, nil)

		var subs []*submission
		for range 2 {
			subs = append(subs, submitAsync(ctx, w, pendings(1)))
			synctest.Wait() // taken by a worker, which waits inside InsertEvents
		}
		for range 7 {
			subs = append(subs, submitAsync(ctx, w, pendings(1)))
		}
		synctest.Wait()
		if got := w.QueueDepth(); got != 7 {
			t.Fatalf("QueueDepth = %d, want 7", got)
		}

		closed := make(chan struct{})
		go func() { w.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatalf("Close returned while events were being written")
		default:
		}
		late := pendings(1)
		if _, err := w.Submit(ctx, late); nexus.KindOf(err) != nexus.KindUnavailable {
			t.Errorf("Submit while closing = %v, want unavailable", err)
		}

		open()
		<-closed
		synctest.Wait() // the submissions' goroutines take their answers
		for i, s := range subs {
			if !s.finished() {
				t.Errorf("submission %d was not answered by the time Close returned", i)
			}
		}
		for _, s := range subs {
			s.checkStored(t)
		}
		got, want := f.eventIDs(), eventIDsOf(subs...)
		slices.Sort(got)
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events stored (-want +got):\n%s", diff)
		}

		if out, err := w.Submit(ctx, pendings(1)); nexus.KindOf(err) != nexus.KindUnavailable || out != nil {
			t.Errorf("Submit after Close = %v, %v; want unavailable", out, err)
		}
		w.Close() // a second Close is harmless
		if n := len(f.eventIDs()); n != len(want) {
			t.Errorf("the store got %d events, want only the %d submitted before Close", n, len(want))
		}
	})
}

func TestWriterSubmitNothing(t *testing.T) {
	f := newFakeStore()
	w := NewWriter(f, nil, WriterOptions{}, nil)
	defer w.Close()
	out, err := w.Submit(context.Background(), nil)
	if out != nil || err != nil {
		t.Errorf("Submit(nil) = %v, %v; want nil, nil", out, err)
	}
	if n := len(f.insertCalls()); n != 0 {
		t.Errorf("%d InsertEvents calls, want none", n)
	}
}

func TestWriterUnavailableFailsTheGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeStore()
		errDown := errors.New("connection refused")
		open := gate(f, firstCall, func(_ context.Context, call int, events []Pending) ([]Outcome, error) {
			if call == 0 {
				return f.store(events), nil
			}
			return nil, nexus.Unavailable(errDown)
		})
		w := NewWriter(f, nil, WriterOptions{Workers: 1}, nil)
		defer w.Close()
		defer open()

		first := submitAsync(ctx, w, pendings(1))
		synctest.Wait()
		var subs []*submission
		for range 3 {
			subs = append(subs, submitAsync(ctx, w, pendings(2)))
		}
		synctest.Wait()
		open()
		synctest.Wait()
		first.checkStored(t)
		for i, s := range subs {
			if !s.finished() {
				t.Fatalf("submission %d has not returned", i)
			}
			if nexus.KindOf(s.err) != nexus.KindUnavailable || !errors.Is(s.err, errDown) || s.out != nil {
				t.Errorf("submission %d = %v, %v; want the store's unavailable error", i, s.out, s.err)
			}
		}
		if diff := cmp.Diff([]int{1, 6}, callSizes(f)); diff != "" {
			t.Errorf("events per InsertEvents call (-want +got):\n%s\n(an unavailable database must not be retried job by job)", diff)
		}
	})
}

func TestWriterRetriesAFailedGroupJobByJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := newFakeStore()
		errRefused := errors.New("value too long")
		poison := pendings(1)
		open := gate(f, firstCall, func(_ context.Context, _ int, events []Pending) ([]Outcome, error) {
			if slices.ContainsFunc(events, func(ev Pending) bool { return ev.EventID == poison[0].EventID }) {
				return nil, errRefused
			}
			return f.store(events), nil
		})
		w := NewWriter(f, nil, WriterOptions{Workers: 1}, nil)
		defer w.Close()
		defer open()

		first := submitAsync(ctx, w, pendings(1))
		synctest.Wait()
		good1 := submitAsync(ctx, w, pendings(2))
		synctest.Wait()
		bad := submitAsync(ctx, w, poison)
		synctest.Wait()
		good2 := submitAsync(ctx, w, pendings(1))
		synctest.Wait()
		open()
		synctest.Wait()

		first.checkStored(t)
		good1.checkStored(t)
		good2.checkStored(t)
		if !bad.finished() || !errors.Is(bad.err, errRefused) || bad.out != nil {
			t.Errorf("the refused submission = %v, %v; want the store's error", bad.out, bad.err)
		}
		if diff := cmp.Diff([]int{1, 4, 2, 1, 1}, callSizes(f)); diff != "" {
			t.Errorf("events per InsertEvents call (-want +got):\n%s", diff)
		}
	})
}

func TestWriterSingleJobErrorIsNotRetried(t *testing.T) {
	f := newFakeStore()
	errRefused := errors.New("value too long")
	f.insert = func(context.Context, int, []Pending) ([]Outcome, error) { return nil, errRefused }
	w := NewWriter(f, nil, WriterOptions{Workers: 1}, nil)
	defer w.Close()
	if _, err := w.Submit(context.Background(), pendings(3)); !errors.Is(err, errRefused) {
		t.Errorf("Submit = %v, want the store's error", err)
	}
	if diff := cmp.Diff([]int{3}, callSizes(f)); diff != "" {
		t.Errorf("events per InsertEvents call (-want +got):\n%s", diff)
	}
}

var errInterrupted = errors.New("interrupted (9)")

func TestWriterCommitTimeout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   func(ctx context.Context) error // what the store returns once the timeout cancels its context
		cause error                           // what the error wraps
	}{
		{"context error", func(ctx context.Context) error { return ctx.Err() }, context.DeadlineExceeded},
		// SQLite reports an interrupted statement, not the context's error; the store calls that internal.
		{"driver error", func(context.Context) error { return nexus.Internal(errInterrupted) }, errInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeStore()
				f.insert = func(ctx context.Context, _ int, _ []Pending) ([]Outcome, error) {
					<-ctx.Done() // a database that never answers
					return nil, tc.err(ctx)
				}
				w := NewWriter(f, nil, WriterOptions{Workers: 1, CommitTimeout: 2 * time.Second}, nil)
				defer w.Close()
				start := time.Now()
				_, err := w.Submit(context.Background(), pendings(1))
				if nexus.KindOf(err) != nexus.KindUnavailable || !errors.Is(err, tc.cause) {
					t.Errorf("Submit = %v, want unavailable after the commit timeout, caused by %v", err, tc.cause)
				}
				if d := time.Since(start); d != 2*time.Second {
					t.Errorf("Submit returned after %v, want the commit timeout, 2s", d)
				}
			})
		})
	}
}

func TestWriterContextCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeStore()
		open := gate(f, firstCall, nil)
		w := NewWriter(f, nil, WriterOptions{Workers: 1}, nil)
		defer w.Close()
		defer open()

		ctx, cancel := context.WithCancel(context.Background())
		s := submitAsync(ctx, w, pendings(1))
		synctest.Wait()
		cancel()
		synctest.Wait()
		if !s.finished() {
			t.Fatalf("Submit did not return when its context was canceled")
		}
		if nexus.KindOf(s.err) != nexus.KindUnavailable || !errors.Is(s.err, context.Canceled) || s.out != nil {
			t.Errorf("Submit = %v, %v; want unavailable", s.out, s.err)
		}
		// The transaction goes on: a retry with the same event id will be a duplicate.
		open()
		synctest.Wait()
		if diff := cmp.Diff(eventIDsOf(s), f.eventIDs()); diff != "" {
			t.Errorf("events given to the store (-want +got):\n%s", diff)
		}
	})
}

func TestWriterOnStore(t *testing.T) {
	f := newFakeStore()
	var calls atomic.Int64
	w := NewWriter(f, nil, WriterOptions{Workers: 1}, func() { calls.Add(1) })
	defer w.Close()
	ctx := context.Background()
	evs := pendings(2)
	if _, err := w.Submit(ctx, evs); err != nil {
		t.Fatal(err)
	}
	out, err := w.Submit(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Kind != Duplicate || out[1].Kind != Duplicate {
		t.Errorf("outcomes of a resubmission = %+v, want duplicates", out)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("onStore called %d times, want once: a commit of duplicates only stores nothing", n)
	}
	if diff := cmp.Diff(WriterStats{Commits: 2, Stored: 2, Duplicates: 2}, w.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}
