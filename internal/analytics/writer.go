package analytics

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// instrumentationName names the tracer of this package's spans.
const instrumentationName = "github.com/nexus-cloud/nexus-core/internal/analytics"

// Writer stores events by group commit: concurrent submissions wait in a bounded queue, a worker takes what
// is there (up to MaxEvents, lingering up to Linger for more) and stores it with one Store.InsertEvents call,
// one transaction, and each submission is answered after that transaction commits. Nothing is ever
// acknowledged from memory: a crash loses only submissions that were not answered yet.
type Writer struct {
	store   Store
	log     *slog.Logger
	opts    WriterOptions
	queue   chan *job
	queued  atomic.Int64 // events waiting in the queue
	closing chan struct{}
	closed  atomic.Bool
	wg      sync.WaitGroup
	mu      sync.RWMutex // held for reading while submitting, for writing while closing
	stats   writerStats
	onStore func()       // called after a commit that stored events
	tracer  trace.Tracer // nil: no spans
}

// WriterOptions tunes a Writer.
type WriterOptions struct {
	Workers       int           // transactions in flight at once (SQLite: 1 is best)
	MaxEvents     int           // events in one transaction at most
	Linger        time.Duration // how long a worker waits for more events once it has some
	QueueEvents   int           // events waiting at most; past that, submissions are refused
	CommitTimeout time.Duration // how long one transaction may take before its events are answered 503
	// TracerProvider, when set, traces each group commit as a root span linked to the spans of the requests it
	// serves (and they to it): one commit serves many requests, so it is the child of none of them.
	TracerProvider trace.TracerProvider
}

type writerStats struct {
	commits, stored, duplicates, refused atomic.Int64
}

type job struct {
	events []Pending
	done   chan jobResult
	span   trace.Span // the submitting request's span, when tracing is on and it has one
}

type jobResult struct {
	outcomes []Outcome
	err      error
}

// NewWriter starts a writer's workers; Close stops them.
func NewWriter(store Store, log *slog.Logger, o WriterOptions, onStore func()) *Writer {
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 2000
	}
	if o.QueueEvents <= 0 {
		o.QueueEvents = 50_000
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if onStore == nil {
		onStore = func() {}
	}
	w := &Writer{store: store, log: log, opts: o, queue: make(chan *job, o.QueueEvents), closing: make(chan struct{}), onStore: onStore}
	if o.TracerProvider != nil {
		w.tracer = o.TracerProvider.Tracer(instrumentationName)
	}
	for range o.Workers {
		w.wg.Add(1)
		go w.work()
	}
	return w
}

// Submit stores events and returns their outcomes once they are committed. It refuses at once, with
// ErrOverloaded, events that would overfill the queue, and with an unavailable error everything when the
// writer is closed or the database fails; then nothing of them was stored by this call.
func (w *Writer) Submit(ctx context.Context, events []Pending) ([]Outcome, error) {
	if len(events) == 0 {
		return nil, nil
	}
	j := &job{events: events, done: make(chan jobResult, 1)}
	if w.tracer != nil {
		if sp := trace.SpanFromContext(ctx); sp.SpanContext().IsValid() {
			j.span = sp
		}
	}
	w.mu.RLock()
	if w.closed.Load() {
		w.mu.RUnlock()
		return nil, nexus.Unavailable(errors.New("event writer is closed"))
	}
	if n := w.queued.Add(int64(len(events))); n > int64(w.opts.QueueEvents) {
		w.queued.Add(-int64(len(events)))
		w.mu.RUnlock()
		w.stats.refused.Add(int64(len(events)))
		return nil, ErrOverloaded
	}
	w.queue <- j // never blocks: the channel holds QueueEvents jobs, each of at least one event
	w.mu.RUnlock()
	select {
	case r := <-j.done:
		return r.outcomes, r.err
	case <-ctx.Done():
		// The events may still be committed; a retry with the same event ids is answered as a duplicate.
		return nil, nexus.Unavailable(ctx.Err())
	}
}

// QueueDepth returns how many events wait to be written.
func (w *Writer) QueueDepth() int { return int(w.queued.Load()) }

// Close stops taking events, writes every event already queued, and waits for the workers.
func (w *Writer) Close() {
	w.mu.Lock()
	if w.closed.Swap(true) {
		w.mu.Unlock()
		return
	}
	close(w.closing)
	w.mu.Unlock()
	w.wg.Wait()
}

func (w *Writer) work() {
	defer w.wg.Done()
	var carry *job // a job taken that did not fit the previous group: it starts the next
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-w.queue:
			case <-w.closing:
				// Drain: everything queued before Close is written.
				select {
				case first = <-w.queue:
				default:
					return
				}
			}
		}
		group := []*job{first}
		n := len(first.events)
		var linger <-chan time.Time
		var timer *time.Timer
		if w.opts.Linger > 0 {
			timer = time.NewTimer(w.opts.Linger)
			linger = timer.C
		}
		// add takes j into the group if it fits, and reports whether the group may take more.
		add := func(j *job) bool {
			if n+len(j.events) > w.opts.MaxEvents {
				carry = j
				return false
			}
			group = append(group, j)
			n += len(j.events)
			return n < w.opts.MaxEvents
		}
	gather:
		for n < w.opts.MaxEvents {
			select {
			case j := <-w.queue:
				if !add(j) {
					break gather
				}
				continue
			default:
			}
			if linger == nil {
				break
			}
			select {
			case j := <-w.queue:
				if !add(j) {
					break gather
				}
			case <-linger:
				break gather
			case <-w.closing:
				linger = nil
			}
		}
		if timer != nil {
			timer.Stop()
		}
		w.queued.Add(-int64(n))
		w.commit(group, n)
	}
}

// commit stores a group in one transaction. A group that fails for a reason other than the database being
// unavailable is retried job by job, so that one job the database refuses cannot fail the others.
func (w *Writer) commit(group []*job, n int) {
	events := make([]Pending, 0, n)
	for _, j := range group {
		events = append(events, j.events...)
	}
	ctx, span := w.startCommit(group, n)
	defer span.End()
	outcomes, err := w.insert(ctx, events)
	if err != nil && len(group) > 1 && nexus.KindOf(err) != nexus.KindUnavailable {
		w.log.Warn("group commit failed; retrying its requests one by one", slog.Int("requests", len(group)), slog.Any("error", err))
		span.AddEvent("retrying the requests one by one")
		for _, j := range group {
			o, err := w.insert(ctx, j.events)
			j.done <- jobResult{outcomes: o, err: err}
		}
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
	}
	at := 0
	for _, j := range group {
		if err != nil {
			j.done <- jobResult{err: err}
			continue
		}
		j.done <- jobResult{outcomes: outcomes[at : at+len(j.events)]}
		at += len(j.events)
	}
}

// startCommit starts the span of a group commit: a root span (the requests it serves each have a trace of their
// own) linked to each request's span, which gets a link back to it. Without tracing, a no-op span.
func (w *Writer) startCommit(group []*job, n int) (context.Context, trace.Span) {
	ctx := context.Background()
	if w.tracer == nil {
		return ctx, trace.SpanFromContext(ctx) // the no-op span
	}
	links := make([]trace.Link, 0, len(group))
	for _, j := range group {
		if j.span != nil {
			links = append(links, trace.Link{SpanContext: j.span.SpanContext()})
		}
	}
	ctx, span := w.tracer.Start(ctx, "events commit", trace.WithNewRoot(), trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("nexus.events.batch_size", n), attribute.Int("nexus.events.requests", len(group))))
	back := trace.Link{SpanContext: span.SpanContext()}
	for _, j := range group {
		if j.span != nil {
			j.span.AddLink(back)
		}
	}
	return ctx, span
}

func (w *Writer) insert(ctx context.Context, events []Pending) ([]Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.CommitTimeout)
	defer cancel()
	outcomes, err := w.store.InsertEvents(ctx, events)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			// The commit timeout passed: a timeout, whatever the driver made of it (SQLite answers "interrupted").
			err = nexus.Unavailable(err)
		}
		return nil, err
	}
	w.stats.commits.Add(1)
	stored := 0
	for _, o := range outcomes {
		switch o.Kind {
		case Stored:
			stored++
		case Duplicate:
			w.stats.duplicates.Add(1)
		}
	}
	if stored > 0 {
		w.stats.stored.Add(int64(stored))
		w.onStore()
	}
	return outcomes, nil
}

// WriterStats counts what a writer did since it started.
type WriterStats struct {
	Queued     int   // events waiting to be written now
	Commits    int64 // transactions committed
	Stored     int64 // events stored
	Duplicates int64 // events answered as duplicates
	Refused    int64 // events refused because the queue was full
}

// Stats returns what the writer did since it started.
func (w *Writer) Stats() WriterStats {
	return WriterStats{Queued: w.QueueDepth(), Commits: w.stats.commits.Load(), Stored: w.stats.stored.Load(),
		Duplicates: w.stats.duplicates.Load(), Refused: w.stats.refused.Load()}
}
