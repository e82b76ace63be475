package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The tests of the server's metrics: the request series by operation, the collectors beside them, and /metrics
// gone from the public handler. cmd/nexus's TestServeMetrics scrapes the metrics listener of a running server and
// checks the series the dashboard and the alert rules query.

// scrape answers GET /metrics from the server's metrics handler, the one cmd/nexus serves on NEXUS_METRICS_ADDR.
func (e *env) scrape() resp {
	e.t.Helper()
	_, r := exchange(e.t, e.metrics, "GET", "/metrics", nil)
	if r.status != http.StatusOK {
		e.t.Fatalf("/metrics: %d %s", r.status, r.body)
	}
	return r
}

// families parses a scrape in the text exposition format.
func (e *env) families() map[string]*dto.MetricFamily {
	e.t.Helper()
	r := e.scrape()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		e.t.Fatalf("/metrics does not parse: %v\n%s", err, r.body)
	}
	return fams
}

// sample returns the value of the series of family name whose labels include want, and whether there is one.
// A histogram's or a summary's value is its sample count.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Summary != nil:
			return float64(m.Summary.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestRequestMetrics(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		access, _ := e.tokens(webClient) // login 2xx
		mustAccept(t, postEvent(e, access, newEvent("metered")), false)
		expectProblem(t, e.do("GET", "/v2/users/"+e.bob.ID, nil, bearer(access)...), http.StatusNotFound, string(nexus.CodeNotFound))
		e.do("GET", "/healthz", nil)
		e.do("HEAD", "/healthz", nil)
		expectProblem(t, e.do("GET", "/made-up/path/12345", nil), http.StatusNotFound, string(nexus.CodeNotFound))
		expectProblem(t, e.do("BREW", "/v2/users/"+e.admin.ID, nil, bearer(access)...), http.StatusMethodNotAllowed, string(nexus.CodeMethodNotAllowed))
		// The public handler no longer serves the metrics: the normal 404 problem.
		expectProblem(t, e.do("GET", "/metrics", nil), http.StatusNotFound, string(nexus.CodeNotFound))

		fams := e.families()
		for _, c := range []struct {
			labels map[string]string
			want   float64
		}{
			{map[string]string{"operation": "login", "method": "POST", "code_class": "2xx"}, 1},
			{map[string]string{"operation": "trackEvent", "method": "POST", "code_class": "2xx"}, 1},
			{map[string]string{"operation": "getUser", "method": "GET", "code_class": "4xx"}, 1},
			{map[string]string{"operation": "/healthz", "method": "GET", "code_class": "2xx"}, 1},
			{map[string]string{"operation": "/healthz", "method": "HEAD", "code_class": "2xx"}, 1},
			{map[string]string{"operation": "unmatched", "method": "GET", "code_class": "4xx"}, 2}, // the made-up path and /metrics
			{map[string]string{"operation": "unmatched", "method": "other", "code_class": "4xx"}, 1},
		} {
			if v, ok := sample(fams, "nexus_http_requests_total", c.labels); !ok || v != c.want {
				t.Errorf("nexus_http_requests_total%v = %v (found %v), want %v", c.labels, v, ok, c.want)
			}
		}
		if _, ok := sample(fams, "nexus_http_requests_total", map[string]string{"operation": "getUser", "code_class": "2xx"}); ok {
			t.Error("a series of getUser 2xx, which never happened")
		}
		if v, ok := sample(fams, "nexus_http_request_duration_seconds", map[string]string{"operation": "login", "method": "POST"}); !ok || v != 1 {
			t.Errorf("login's duration histogram: %v observations (found %v), want 1", v, ok)
		}
		if f := fams["nexus_http_request_duration_seconds"]; f == nil || len(f.GetMetric()[0].GetHistogram().GetBucket()) != len(requestBuckets)+1 { // and +Inf
			t.Errorf("the duration histogram's buckets: %v", f)
		}
		if v, ok := sample(fams, "nexus_http_requests_in_flight", nil); !ok || v != 0 {
			t.Errorf("nexus_http_requests_in_flight = %v (found %v), want 0 between requests", v, ok)
		}
		// Made-up paths and methods never become label values.
		if body := string(e.scrape().body); strings.Contains(body, "made-up") || strings.Contains(body, "BREW") {
			t.Errorf("a made-up path or method in the metrics:\n%s", body)
		}
	})
}

// TestCollectorMetrics checks the series beside the request metrics: the Go runtime's, the process's, the
// database pool's and the event pipeline's.
func TestCollectorMetrics(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		fams := e.families()
		for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_gc_duration_seconds",
			"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
			"nexus_events_write_queue", "nexus_events_processor_failing", "nexus_events_stored_total"} {
			if _, ok := sample(fams, name, nil); !ok {
				t.Errorf("no %s", name)
			}
		}
		for _, name := range []string{"go_sql_open_connections", "go_sql_in_use_connections", "go_sql_max_open_connections",
			"go_sql_wait_duration_seconds_total"} {
			if _, ok := sample(fams, name, map[string]string{"db_name": "nexus"}); !ok {
				t.Errorf("no %s{db_name=\"nexus\"}", name)
			}
		}
		if v, _ := sample(fams, "go_sql_max_open_connections", nil); v < 1 {
			t.Errorf("go_sql_max_open_connections = %v", v)
		}
	})
}

// BenchmarkRequestMetrics measures what the request metrics cost a cheap request: GET /healthz, and an
// authenticated GET /v2/users/{userId} (a cached token check and one row read), each on a server with the
// middleware (metrics=on) and then on one without it (metrics=off), one right after the other. Timings drift on
// a shared machine: compare on and off of the same run, several runs (go test -bench RequestMetrics -count 1,
// repeated), or the share of the middleware in a CPU profile of metrics=on.
func BenchmarkRequestMetrics(b *testing.B) {
	envs := map[bool]*env{}
	tokens := map[bool]string{}
	for _, on := range []bool{true, false} {
		withRequestMetrics = on
		envs[on] = newEnv(b, storetest.Open(b, "sqlite"))
		withRequestMetrics = true
		tokens[on], _ = envs[on].tokens(webClient)
	}
	for _, c := range []string{"healthz", "getUser"} {
		for _, on := range []bool{true, false} {
			e, path, header := envs[on], "/healthz", []string(nil)
			if c == "getUser" {
				path, header = "/v2/users/"+e.admin.ID, bearer(tokens[on])
			}
			name := map[bool]string{true: "on", false: "off"}[on]
			b.Run(c+"/metrics="+name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, r := exchange(b, e.h, "GET", path, nil, header...); r.status != http.StatusOK {
						b.Fatalf("%d %s", r.status, r.body)
					}
				}
			})
		}
	}
}
