package ratelimit

import (
	"context"
	"log/slog"
	"time"
)

// Status reports the backend in use and whether it is degraded.
func (l *Limiter) Status() Status {
	l.stMu.Lock()
	defer l.stMu.Unlock()
	return l.status
}

// markDegraded switches to the in-process store after a Redis failure,
// logging the transition once.
func (l *Limiter) markDegraded(err error) {
	desc := describe(err)
	if !l.degraded.CompareAndSwap(false, true) {
		return
	}
	l.stMu.Lock()
	l.status.Degraded, l.status.Since, l.status.Error = true, time.Now(), desc
	l.stMu.Unlock()
	l.log.Warn("rate limiter: Redis is failing; limits are kept in this process until it answers again (each instance enforces them on its own)",
		slog.String("error", desc))
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// markHealthy switches back to Redis.
func (l *Limiter) markHealthy() {
	if !l.degraded.Load() {
		return
	}
	l.stMu.Lock()
	down := time.Since(l.status.Since)
	l.status.Degraded, l.status.Since, l.status.Error = false, time.Now(), ""
	l.stMu.Unlock()
	l.degraded.Store(false)
	l.log.Info("rate limiter: Redis answers again; limits are shared across instances again",
		slog.Duration("degraded_for", down.Round(time.Millisecond)))
}

// watch probes Redis every RecheckEvery while degraded, until ctx is done.
func (l *Limiter) watch(ctx context.Context) {
	defer l.done.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		}
		t := time.NewTicker(l.opts.RecheckEvery)
		for l.degraded.Load() {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if err := l.probe(ctx); err != nil {
				desc := describe(err)
				l.stMu.Lock()
				l.status.Error = desc
				l.stMu.Unlock()
				continue
			}
			l.markHealthy()
		}
		t.Stop()
	}
}

// probe checks that Redis takes writes, bounded by Timeout. A PING is not
// enough: a Redis out of memory (OOM) or a read-only replica (READONLY, after
// a failover) answers PING but refuses every rate-limit update, and
// recovering on PING would flap between Redis and memory every RecheckEvery.
func (l *Limiter) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	return l.rdb.Set(ctx, l.opts.Prefix+"probe", 1, time.Minute).Err()
}
