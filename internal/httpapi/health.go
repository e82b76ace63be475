package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
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
	r := readiness{Status: "ready", Database: "ok", Events: s.eventReadiness(), RateLimits: s.rateLimitReadiness()}
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

// metrics serves the event pipeline's gauges and counters in the Prometheus text format.
func (s *Server) metrics(c echo.Context) error {
	var b strings.Builder
	metric := func(name, kind, help string, v any) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, kind, name, v)
	}
	if e := s.eventReadiness(); e != nil {
		metric("nexus_events_write_queue", "gauge", "Events waiting for the group-commit writer.", e.WriteQueue)
		metric("nexus_events_backlog", "gauge", "Committed events waiting for the background processor (at its last look).", e.Backlog)
		metric("nexus_events_processing_lag_seconds", "gauge", "How long the oldest waiting event has waited (at the processor's last look).", e.LagSeconds)
		metric("nexus_events_stored_total", "counter", "Events stored by this instance.", e.StoredTotal)
		metric("nexus_events_duplicates_total", "counter", "Events answered as duplicates of a stored event_id.", e.DuplicatesTotal)
		metric("nexus_events_refused_total", "counter", "Events refused with 503 because the write queue was full.", e.RefusedTotal)
		metric("nexus_events_commits_total", "counter", "Group-commit transactions committed.", e.CommitsTotal)
		metric("nexus_events_processed_total", "counter", "Events processed into rollups by this instance.", e.ProcessedTotal)
		failing := 0
		if e.ProcessorFailing {
			failing = 1
		}
		metric("nexus_events_processor_failing", "gauge", "1 while the processor's last attempt failed.", failing)
	}
	if s.contract.Limiter() != nil {
		b.WriteString("# HELP nexus_rate_limited_total Requests answered 429 by this instance, by rate-limit policy.\n# TYPE nexus_rate_limited_total counter\n")
		for _, name := range contract.Policies {
			fmt.Fprintf(&b, "nexus_rate_limited_total{policy=%q} %d\n", name, s.contract.Refused(name))
		}
		degraded := 0
		if s.contract.Limiter().Status().Degraded {
			degraded = 1
		}
		metric("nexus_rate_limits_degraded", "gauge", "1 while Redis is configured but failing, and limits are local to this instance.", degraded)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", []byte(b.String()))
}
