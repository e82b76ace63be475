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
)

// Processor consumes committed events in the background and applies their effects (per-day rollups by name
// and category, per-user totals, last event and per-day counts) through Store.ProcessEvents, which claims,
// applies and marks a batch in one transaction: every event is counted exactly once, even with several
// processors (on several servers) sharing a database. Writers Wake it after a commit; it also polls, for the
// events other servers write. A wake is answered at most once per Gather interval: under load, commits come
// every millisecond or so, and a transaction per commit would cost the database more than the events do.
type Processor struct {
	store   Store
	log     *slog.Logger
	now     func() time.Time
	batch   int
	poll    time.Duration
	gather  time.Duration
	wake    chan struct{}
	depth   atomic.Int64 // backlog at the last look
	oldest  atomic.Int64 // unix microseconds of the oldest waiting event at the last look, 0 if none
	checked atomic.Int64 // unix microseconds of the last successful look
	failing atomic.Bool
	handled atomic.Int64
	stop    context.CancelFunc
	done    sync.WaitGroup
	startMu sync.Mutex
	running bool
	tracer  trace.Tracer // nil: no spans
	woken   atomic.Bool  // a writer committed since the last look

	retention     time.Duration
	maintainEvery time.Duration
	maintenance   maintenanceStats
}

// ProcessorOptions tunes a Processor.
type ProcessorOptions struct {
	Batch  int           // events per transaction
	Poll   time.Duration // how often to look for events when not woken
	Gather time.Duration // a wake waits until this long after the previous look began (0: 20 ms)
	Now    func() time.Time
	// TracerProvider, when set, traces each batch as a root span, with the database work as its children. A
	// look that finds nothing to do makes no span (the processor polls twice a second): it is traced only when
	// a writer woke the processor or the last look saw a backlog.
	TracerProvider trace.TracerProvider
	// Retention is how long raw events are kept after they are received (NEXUS_EVENT_RETENTION); 0 keeps them
	// forever. MaintainEvery is how often the store's upkeep (Maintainer) runs (0: hourly); it also runs at Start.
	Retention     time.Duration
	MaintainEvery time.Duration
}

// NewProcessor returns a processor; Start starts it.
func NewProcessor(store Store, log *slog.Logger, o ProcessorOptions) *Processor {
	if o.Batch <= 0 {
		o.Batch = 1000
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.Gather <= 0 {
		o.Gather = 20 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaintainEvery <= 0 {
		o.MaintainEvery = time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Processor{store: store, log: log, now: o.Now, batch: o.Batch, poll: o.Poll, gather: o.Gather, wake: make(chan struct{}, 1),
		retention: o.Retention, maintainEvery: o.MaintainEvery}
	if o.TracerProvider != nil {
		p.tracer = o.TracerProvider.Tracer(instrumentationName)
	}
	return p
}

// Wake makes the processor look for events now.
func (p *Processor) Wake() {
	p.woken.Store(true)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Start runs the processor until Stop.
func (p *Processor) Start() {
	p.startMu.Lock()
	defer p.startMu.Unlock()
	if p.running {
		return
	}
	p.running = true
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	p.done.Add(1)
	go p.run(ctx)
	if _, ok := p.store.(Maintainer); ok {
		p.done.Add(1)
		go p.maintainLoop(ctx)
	}
}

// Stop stops the processor after the transaction in flight, if any, and waits for it.
func (p *Processor) Stop() {
	p.startMu.Lock()
	defer p.startMu.Unlock()
	if !p.running {
		return
	}
	p.stop()
	p.done.Wait()
	p.running = false
}

func (p *Processor) run(ctx context.Context) {
	defer p.done.Done()
	backoff := time.Duration(0)
	for {
		began := time.Now()
		_, err := p.Drain(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if !p.failing.Swap(true) {
				p.log.Warn("event processing failed; retrying", slog.Any("error", err))
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
		default:
			if p.failing.Swap(false) {
				p.log.Info("event processing recovered")
			}
			backoff = 0
		}
		wait := p.poll
		if backoff > 0 {
			wait = backoff
		}
		wake := p.wake
		if backoff > 0 {
			wake = nil // while failing, a wake does not shorten the backoff
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			// The commits of the next moments gather for one look (a wake meanwhile is taken by it).
			t.Reset(time.Until(began.Add(p.gather)))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		case <-t.C:
		}
		t.Stop()
	}
}

// Drain processes batches until no event waits, then records the backlog (also when processing failed, so
// that a growing backlog and lag stay visible). It returns how many it processed.
func (p *Processor) Drain(ctx context.Context) (int, error) {
	total := 0
	var procErr error
	traced := p.tracer != nil && (p.woken.Swap(false) || p.depth.Load() > 0)
	for {
		n, err := p.process(ctx, traced)
		traced = p.tracer != nil // a full batch: more is waiting
		total += n
		p.handled.Add(int64(n))
		if err != nil {
			procErr = err
			break
		}
		if n < p.batch {
			break
		}
	}
	depth, oldest, err := p.store.Backlog(ctx)
	if err != nil {
		return total, errors.Join(procErr, err)
	}
	p.depth.Store(int64(depth))
	if oldest.IsZero() {
		p.oldest.Store(0)
	} else {
		p.oldest.Store(oldest.UnixMicro())
	}
	p.checked.Store(p.now().UnixMicro())
	return total, procErr
}

// process runs one batch, in a root span when traced.
func (p *Processor) process(ctx context.Context, traced bool) (int, error) {
	if !traced {
		return p.store.ProcessEvents(ctx, p.batch)
	}
	ctx, span := p.tracer.Start(ctx, "events process", trace.WithNewRoot(), trace.WithAttributes(attribute.Int("nexus.events.batch_limit", p.batch)))
	defer span.End()
	n, err := p.store.ProcessEvents(ctx, p.batch)
	span.SetAttributes(attribute.Int("nexus.events.batch_size", n))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "")
	}
	return n, err
}

// ProcessorStats is what the processor saw at its last look.
type ProcessorStats struct {
	Processed int64         // events processed by this processor since it started
	Backlog   int           // committed events waiting for processing
	Lag       time.Duration // how long the oldest of them has waited; 0 when none waits
	CheckedAt time.Time     // when it last looked; zero if never
	Failing   bool          // its last attempt failed

	// What its upkeep of the store (Maintainer) did, by this processor since it started, and saw at its last
	// successful run (zero until then, and where the store needs no upkeep).
	Expired      int64     // raw events deleted by the retention
	Partitions   int       // partitions of the events table
	OldestDay    time.Time // the UTC day of the oldest raw event kept
	MaintainedAt time.Time // when its upkeep last succeeded
}

// Stats returns what the processor saw at its last look.
func (p *Processor) Stats() ProcessorStats {
	s := ProcessorStats{Processed: p.handled.Load(), Backlog: int(p.depth.Load()), Failing: p.failing.Load()}
	p.maintenance.fill(&s)
	if c := p.checked.Load(); c != 0 {
		s.CheckedAt = time.UnixMicro(c).UTC()
	}
	if o := p.oldest.Load(); o != 0 {
		s.Lag = max(0, p.now().Sub(time.UnixMicro(o)))
	}
	return s
}

// Pipeline is a writer and a processor, started and stopped together.
type Pipeline struct {
	Writer    *Writer
	Processor *Processor
}

// NewPipeline starts a processor and a writer that wakes it after every commit.
func NewPipeline(store Store, log *slog.Logger, w WriterOptions, p ProcessorOptions) *Pipeline {
	proc := NewProcessor(store, log, p)
	proc.Start()
	return &Pipeline{Writer: NewWriter(store, log, w, proc.Wake), Processor: proc}
}

// Close writes what is queued, then stops the processor.
func (p *Pipeline) Close() {
	p.Writer.Close()
	p.Processor.Stop()
}

// WriterStats returns the writer's stats.
func (p *Pipeline) WriterStats() WriterStats { return p.Writer.Stats() }

// ProcessorStats returns the processor's stats.
func (p *Pipeline) ProcessorStats() ProcessorStats { return p.Processor.Stats() }
