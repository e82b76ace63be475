package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
)

// PipelineStats reports the state of the event pipeline: the writer's queue and counters, and what the
// processor saw at its last look.
type PipelineStats interface {
	WriterStats() analytics.WriterStats
	ProcessorStats() analytics.ProcessorStats
}

// healthz answers 200 while the process is alive. It touches nothing else, so it stays fast.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is the body of /readyz.
type readiness struct {
	Status   string          `json:"status"`
	Database string          `json:"database"`
	Events   *eventReadiness `json:"events,omitempty"`
	// RateLimits says where the rate limits are kept; with Redis failing, the server keeps serving with limits
	// local to this instance (degraded), which does not make it unready.
	RateLimits *rateLimitReadiness `json:"rate_limits,omitempty"`
	// Replica reports the read replica when one is configured; an unhealthy replica sends the listings to the
	// primary, which does not make the server unready either.
	Replica *replicaReadiness `json:"replica,omitempty"`
}

type rateLimitReadiness struct {
	Backend  string `json:"backend"` // memory or redis
	Degraded bool   `json:"degraded"`
	Since    string `json:"since,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (s *Server) rateLimitReadiness() *rateLimitReadiness {
	if s.contract.Limiter() == nil {
		return nil
	}
	st := s.contract.Limiter().Status()
	r := &rateLimitReadiness{Backend: st.Backend, Degraded: st.Degraded, Error: st.Error}
	if st.Degraded && !st.Since.IsZero() {
		r.Since = st.Since.UTC().Format(time.RFC3339Nano)
	}
	return r
}

type eventReadiness struct {
	WriteQueue       int     `json:"write_queue"`
	Backlog          int     `json:"backlog"`
	LagSeconds       float64 `json:"lag_seconds"`
	ProcessorFailing bool    `json:"processor_failing"`
	ProcessorChecked string  `json:"processor_checked_at,omitempty"`
	StoredTotal      int64   `json:"stored_total"`
	ProcessedTotal   int64   `json:"processed_total"`
	RefusedTotal     int64   `json:"refused_total"`
	DuplicatesTotal  int64   `json:"duplicates_total"`
	CommitsTotal     int64   `json:"commits_total"`
}

// readyz answers 200 when the server can serve requests: not draining, and the database answers within 2 s.
// Its body also reports the event pipeline: write queue, processing backlog and lag.
func (s *Server) readyz(c echo.Context) error {
	r := readiness{Status: "ready", Database: "ok", Events: s.eventReadiness(), RateLimits: s.rateLimitReadiness(), Replica: s.replicaReadiness()}
	status := http.StatusOK
	switch {
	case s.draining.Load():
		r.Status, r.Database, status = "draining", "", http.StatusServiceUnavailable
	case s.ready != nil && s.ready(c.Request().Context()) != nil:
		r.Status, r.Database, status = "unavailable", "unreachable", http.StatusServiceUnavailable
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(status, r)
}

func (s *Server) eventReadiness() *eventReadiness {
	if s.pipeline == nil {
		return nil
	}
	w, p := s.pipeline.WriterStats(), s.pipeline.ProcessorStats()
	e := &eventReadiness{WriteQueue: w.Queued, Backlog: p.Backlog, LagSeconds: p.Lag.Seconds(), ProcessorFailing: p.Failing,
		StoredTotal: w.Stored, ProcessedTotal: p.Processed, RefusedTotal: w.Refused, DuplicatesTotal: w.Duplicates, CommitsTotal: w.Commits}
	if !p.CheckedAt.IsZero() {
		e.ProcessorChecked = p.CheckedAt.Format(time.RFC3339Nano)
	}
	return e
}
