package analytics

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maintenanceStats is what the processor's upkeep runs did, for Stats.
type maintenanceStats struct {
	mu      sync.Mutex
	expired int64
	last    Maintenance
	at      time.Time
}

func (m *maintenanceStats) fill(s *ProcessorStats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.Expired, s.Partitions, s.OldestDay, s.MaintainedAt = m.expired, m.last.Partitions, m.last.Oldest, m.at
}

// maintainRetry is how soon a failed upkeep run is tried again (at most MaintainEvery).
const maintainRetry = time.Minute

// maintainLoop runs the store's upkeep at once, then every MaintainEvery (sooner again after a failure), until
// ctx ends. It runs beside the processing loop: deleting a day of expired events never delays the rollups.
func (p *Processor) maintainLoop(ctx context.Context) {
	defer p.done.Done()
	for {
		wait := p.maintainEvery
		if err := p.Maintain(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Warn("event upkeep failed; retrying", slog.Any("error", err), slog.Duration("retry_in", min(wait, maintainRetry)))
			wait = min(wait, maintainRetry)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Maintain runs the store's upkeep once (see Maintainer), with the processor's clock and retention; it does
// nothing for a store that needs none. The processor calls it at Start and then every MaintainEvery; several
// processors (on several servers) may run it at once.
func (p *Processor) Maintain(ctx context.Context) error {
	m, ok := p.store.(Maintainer)
	if !ok {
		return nil
	}
	res, err := m.MaintainEvents(ctx, p.now(), p.retention)
	p.maintenance.mu.Lock()
	p.maintenance.expired += res.Expired
	if err == nil {
		p.maintenance.last, p.maintenance.at = res, p.now().UTC()
	}
	p.maintenance.mu.Unlock()
	if err != nil {
		return err
	}
	if res.Created > 0 || res.Expired > 0 {
		p.log.Info("event upkeep", slog.Int("partitions_created", res.Created), slog.Int64("events_expired", res.Expired),
			slog.Int("partitions", res.Partitions), slog.Time("oldest_day", res.Oldest))
	}
	return nil
}
