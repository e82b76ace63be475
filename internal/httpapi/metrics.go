package httpapi

import (
	"database/sql"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
)

// The metrics of a Server, in its own Prometheus registry (never the global one, so that the servers of one
// process, in tests, keep theirs apart). cmd/nexus serves them at /metrics on NEXUS_METRICS_ADDR, never on the
// public listener. The series, all documented in the README's "Metrics" section:
//
//   - nexus_http_requests_total{operation,method,code_class}: requests answered, by operation, method and status
//     class (2xx, 3xx, 4xx, 5xx; 1xx never occurs);
//   - nexus_http_request_duration_seconds{operation,method}: a histogram of the time from the first middleware to
//     the end of the answer (requestBuckets);
//   - nexus_http_requests_in_flight: requests being served now;
//   - the event pipeline's and the rate limiter's nexus_events_* and nexus_rate_limit* series (nexusCollector);
//   - with a read replica, nexus_db_replica_up, nexus_db_replica_lag_seconds, nexus_db_reads_total{target} and
//     nexus_db_replica_fallbacks_total (replicaCollector);
//   - go_sql_* {db_name="nexus"}: the database pool (collectors.NewDBStatsCollector), and {db_name="nexus_replica"}
//     the read replica's;
//   - go_* and process_*: the Go runtime and the process (collectors.NewGoCollector, NewProcessCollector).
//
// operation is the operationId of an operation of the contract; the route for the other routes ("/healthz",
// "/readyz", "/docs", "/v2/openapi.yaml", ...); and "unmatched" for a request that matched no route of its method
// (404, 405, OPTIONS, CORS preflights), so that a client cannot add series by making up paths. method is the
// request's (HEAD apart from GET), or "other" for a method outside RFC 9110's.

// Label values of the request metrics.
const (
	unmatchedOperation = "unmatched"
	otherMethod        = "other"
)

// requestBuckets are the bounds (seconds) of nexus_http_request_duration_seconds: from a cached token check
// (under a millisecond) through a login (an argon2id verification, tens of milliseconds) to the request deadline
// (NEXUS_REQUEST_TIMEOUT, 10 s by default).
var requestBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// codeClasses are the code_class label values, by status/100 - 1.
var codeClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// standardMethods are the method label values besides "other".
var standardMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace}

// withRequestMetrics is false only while BenchmarkRequestMetrics builds its servers without the middleware.
var withRequestMetrics = true

// requestMetrics counts and times the requests, by route.
type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge

	routes    map[string]map[string]*routeMetrics // by method, then Echo route path; read-only once built
	unmatched map[string]*routeMetrics            // by method label
}

// routeMetrics are the series of one operation and method, created on first use (an operation never called
// adds no series) and then kept, so that a request costs no label lookup.
type routeMetrics struct {
	m                 *requestMetrics
	operation, method string
	classes           [len(codeClasses)]atomic.Pointer[prometheus.Counter]
	duration          atomic.Pointer[prometheus.Observer]
}

func newRequestMetrics() *requestMetrics {
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nexus_http_requests_total",
			Help: "HTTP requests answered, by operation (operationId, route, or unmatched), method and status class.",
		}, []string{"operation", "method", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nexus_http_request_duration_seconds",
			Help:    "Time from a request's arrival in the handler to the end of its answer, by operation and method.",
			Buckets: requestBuckets,
		}, []string{"operation", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nexus_http_requests_in_flight",
			Help: "HTTP requests being served now.",
		}),
		routes:    map[string]map[string]*routeMetrics{},
		unmatched: map[string]*routeMetrics{},
	}
	for _, method := range append([]string{otherMethod}, standardMethods...) {
		m.unmatched[method] = &routeMetrics{m: m, operation: unmatchedOperation, method: method}
	}
	return m
}

// Describe implements prometheus.Collector.
func (m *requestMetrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.duration.Describe(ch)
	m.inFlight.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *requestMetrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.duration.Collect(ch)
	m.inFlight.Collect(ch)
}

// addRoutes labels the routes of e: an operation of ops by its operationId, any other route by its path.
func (m *requestMetrics) addRoutes(e *echo.Echo, ops map[string]*contract.Operation) {
	for _, r := range e.Routes() {
		label := r.Path
		key := r.Method
		if key == http.MethodHead {
			key = http.MethodGet // a HEAD route serves its GET operation (headRoutes)
		}
		if op, ok := ops[key+" "+r.Path]; ok {
			label = op.ID()
		}
		if m.routes[r.Method] == nil {
			m.routes[r.Method] = map[string]*routeMetrics{}
		}
		m.routes[r.Method][r.Path] = &routeMetrics{m: m, operation: label, method: r.Method}
	}
}

// route returns the series of the request's route: method as the client sent it, path as the router matched it.
func (m *requestMetrics) route(method, path string) *routeMetrics {
	if r, ok := m.routes[method][path]; ok {
		return r
	}
	if r, ok := m.unmatched[method]; ok {
		return r
	}
	return m.unmatched[otherMethod]
}

func (r *routeMetrics) observe(status int, d time.Duration) {
	class := status/100 - 1
	if class < 0 || class >= len(codeClasses) {
		class = len(codeClasses) - 1 // unreachable: net/http sends only 1xx to 5xx
	}
	c := r.classes[class].Load()
	if c == nil {
		v := r.m.requests.WithLabelValues(r.operation, r.method, codeClasses[class])
		c = &v
		r.classes[class].Store(c)
	}
	(*c).Inc()
	o := r.duration.Load()
	if o == nil {
		v := r.m.duration.WithLabelValues(r.operation, r.method)
		o = &v
		r.duration.Store(o)
	}
	(*o).Observe(d.Seconds())
}

// measure is the outermost middleware: it counts the request in flight, and once it is answered (an error is
// turned into its answer here, as accessLog does), its operation, status class and duration.
func (m *requestMetrics) measure(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		method := c.Request().Method // as the client sent it, before headAsGet turns a HEAD into a GET
		m.inFlight.Inc()
		defer m.inFlight.Dec()
		if err := next(c); err != nil {
			c.Error(err)
		}
		m.route(method, c.Path()).observe(c.Response().Status, time.Since(start))
		return nil
	}
}

// measure is requestMetrics.measure, or nothing when the server has no request metrics (a benchmark's).
func (s *Server) measure(next echo.HandlerFunc) echo.HandlerFunc {
	if s.requests == nil {
		return next
	}
	return s.requests.measure(next)
}

// initMetrics labels the routes of e for the request metrics, and builds the server's registry: the request
// metrics, the event pipeline's and the rate limits' (nexusCollector), the database pool's when pool is set, the
// read replica's (replicaCollector, and replicaPool's statistics when set), and the Go runtime's and the
// process's.
func (s *Server) initMetrics(e *echo.Echo, pool, replicaPool *sql.DB) {
	if s.requests != nil {
		s.requests.addRoutes(e, s.contract.Operations())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pool != nil {
		reg.MustRegister(collectors.NewDBStatsCollector(pool, "nexus"))
	}
	if replicaPool != nil {
		reg.MustRegister(collectors.NewDBStatsCollector(replicaPool, "nexus_replica"))
	}
	if s.replica != nil {
		reg.MustRegister(newReplicaCollector(s.replica))
	}
	reg.MustRegister(newNexusCollector(s))
	if s.requests != nil {
		reg.MustRegister(s.requests)
	}
	s.registry = reg
}

// MetricsHandler serves the server's metrics in the Prometheus exposition formats: what cmd/nexus serves at
// /metrics on NEXUS_METRICS_ADDR.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog:      slogErrorLog{s.log},
		ErrorHandling: promhttp.ContinueOnError, // a failing collector leaves the others' series
		Registry:      s.registry,               // promhttp_metric_handler_errors_total
	})
}

// slogErrorLog hands promhttp's errors (a collector that failed) to the server's log.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) {
	parts := make([]string, len(v))
	for i, x := range v {
		if s, ok := x.(string); ok {
			parts[i] = s
		} else if err, ok := x.(error); ok {
			parts[i] = err.Error()
		}
	}
	l.log.Error("metrics: " + strings.Join(parts, " "))
}

// nexusCollector reads the event pipeline's and the rate limiter's state at each scrape: the series that /metrics
// had before it moved to client_golang, under the same names.
type nexusCollector struct {
	s         *Server
	pipeline  bool // the server has an event pipeline, fixed at construction (as Describe needs)
	limiter   bool // the server has a rate limiter
	eventDesc []*prometheus.Desc
	refused   *prometheus.Desc
	degraded  *prometheus.Desc
}

// The event pipeline's series, in the order of nexusCollector.Collect.
var eventSeries = []struct{ name, help string }{
	{"nexus_events_write_queue", "Events waiting for the group-commit writer."},
	{"nexus_events_backlog", "Committed events waiting for the background processor (at its last look)."},
	{"nexus_events_processing_lag_seconds", "How long the oldest waiting event has waited (at the processor's last look)."},
	{"nexus_events_processor_failing", "1 while the processor's last attempt failed."},
	{"nexus_events_stored_total", "Events stored by this instance."},
	{"nexus_events_duplicates_total", "Events answered as duplicates of a stored event_id."},
	{"nexus_events_refused_total", "Events refused with 503 because the write queue was full."},
	{"nexus_events_commits_total", "Group-commit transactions committed."},
	{"nexus_events_processed_total", "Events processed into rollups by this instance."},
	{"nexus_events_expired_total", "Raw events deleted by NEXUS_EVENT_RETENTION by this instance (rollups keep counting them)."},
	{"nexus_events_partitions", "Partitions of the events table on PostgreSQL, ahead ones included (at the last upkeep; 0 on SQLite)."},
	{"nexus_events_oldest_day_timestamp_seconds", "Start of the UTC day of the oldest raw event kept (at the last upkeep; 0 until known)."},
}

func newNexusCollector(s *Server) *nexusCollector {
	n := &nexusCollector{s: s, pipeline: s.pipeline != nil, limiter: s.contract.Limiter() != nil}
	for _, e := range eventSeries {
		n.eventDesc = append(n.eventDesc, prometheus.NewDesc(e.name, e.help, nil, nil))
	}
	n.refused = prometheus.NewDesc("nexus_rate_limited_total", "Requests answered 429 by this instance, by rate-limit policy.",
		[]string{"policy"}, nil)
	n.degraded = prometheus.NewDesc("nexus_rate_limits_degraded",
		"1 while Redis is configured but failing, and limits are local to this instance.", nil, nil)
	return n
}

// Describe implements prometheus.Collector.
func (n *nexusCollector) Describe(ch chan<- *prometheus.Desc) {
	if n.pipeline {
		for _, d := range n.eventDesc {
			ch <- d
		}
	}
	if n.limiter {
		ch <- n.refused
		ch <- n.degraded
	}
}

// Collect implements prometheus.Collector.
func (n *nexusCollector) Collect(ch chan<- prometheus.Metric) {
	if e := n.s.eventReadiness(); n.pipeline && e != nil {
		p := n.s.pipeline.ProcessorStats()
		oldest := 0.0
		if !p.OldestDay.IsZero() {
			oldest = float64(p.OldestDay.Unix())
		}
		values := []float64{float64(e.WriteQueue), float64(e.Backlog), e.LagSeconds, bit(e.ProcessorFailing),
			float64(e.StoredTotal), float64(e.DuplicatesTotal), float64(e.RefusedTotal), float64(e.CommitsTotal), float64(e.ProcessedTotal),
			float64(p.Expired), float64(p.Partitions), oldest}
		for i, d := range n.eventDesc {
			kind := prometheus.GaugeValue
			if strings.HasSuffix(eventSeries[i].name, "_total") {
				kind = prometheus.CounterValue
			}
			ch <- prometheus.MustNewConstMetric(d, kind, values[i])
		}
	}
	if l := n.s.contract.Limiter(); n.limiter && l != nil {
		for _, policy := range contract.Policies {
			ch <- prometheus.MustNewConstMetric(n.refused, prometheus.CounterValue, float64(n.s.contract.Refused(policy)), policy)
		}
		ch <- prometheus.MustNewConstMetric(n.degraded, prometheus.GaugeValue, bit(l.Status().Degraded))
	}
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// replicaCollector reads the read replica's state at each scrape.
type replicaCollector struct {
	status                    func() ReplicaStatus
	up, lag, reads, fallbacks *prometheus.Desc
}

func newReplicaCollector(status func() ReplicaStatus) *replicaCollector {
	return &replicaCollector{
		status: status,
		up: prometheus.NewDesc("nexus_db_replica_up",
			"1 while the listings and the summary read the replica (reachable, a standby, within NEXUS_REPLICA_MAX_LAG).", nil, nil),
		lag: prometheus.NewDesc("nexus_db_replica_lag_seconds",
			"How far the replica was behind the primary at the last check (absent while unknown).", nil, nil),
		reads: prometheus.NewDesc("nexus_db_reads_total",
			"Reads of the listings and the summary (replica-eligible), by the server that answered them.", []string{"target"}, nil),
		fallbacks: prometheus.NewDesc("nexus_db_replica_fallbacks_total",
			"Replica-eligible reads that failed on the replica and were run again on the primary.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.lag
	ch <- c.reads
	ch <- c.fallbacks
}

// Collect implements prometheus.Collector.
func (c *replicaCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, bit(st.Healthy))
	if st.Lag >= 0 {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, st.Lag.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(c.reads, prometheus.CounterValue, float64(st.ReplicaReads), "replica")
	ch <- prometheus.MustNewConstMetric(c.reads, prometheus.CounterValue, float64(st.PrimaryReads), "primary")
	ch <- prometheus.MustNewConstMetric(c.fallbacks, prometheus.CounterValue, float64(st.Fallbacks))
}
