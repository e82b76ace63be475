package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// collector is an OTLP/HTTP receiver: it keeps what `nexus serve` exports.
type collector struct {
	mu       sync.Mutex
	paths    []string
	auth     []string
	spans    map[string]string // span name → trace id (hex)
	services []string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	err := proto.Unmarshal(body, &req)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paths = append(c.paths, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
	c.auth = append(c.auth, r.Header.Get("Authorization"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rs := range req.ResourceSpans {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				c.services = append(c.services, kv.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans[s.Name] = hexID(s.TraceId)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func hexID(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

// serveOnce runs `nexus serve --dev` with vars, sends the requests, stops the server the way SIGTERM does, and
// returns its log.
func serveOnce(t *testing.T, vars map[string]string, requests func(url string)) string {
	t.Helper()
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--dev"}, envFunc(vars), strings.NewReader(""), stdout, stderr)
	}()
	url := ""
	for deadline := time.Now().Add(30 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := listening.FindStringSubmatch(stdout.String()); m != nil {
			url = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v\n%s", err, stderr)
		default:
		}
	}
	if url == "" {
		t.Fatalf("server did not listen:\n%s", stderr)
	}
	requests(url)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server exited with %v\n%s", err, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
	return stderr.String()
}

func getWith(t *testing.T, url string, header ...string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, r.StatusCode)
	}
}

// TestServeTracing: OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on: the spans of the requests (a traceparent's
// trace kept) reach the collector over OTLP/HTTP at /v1/traces by the time serve returns, with service.name
// "nexus" and the OTEL_EXPORTER_OTLP_HEADERS, whose values the log never shows; the configuration line says
// where spans go. Without an endpoint, or with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none, nothing is
// exported and the log says tracing is off.
func TestServeTracing(t *testing.T) {
	col := &collector{spans: map[string]string{}}
	srv := httptest.NewServer(col)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20collector-s3cret") // read by the exporter itself

	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	vars := map[string]string{"NEXUS_DATA_DIR": t.TempDir(), "NEXUS_HTTP_ADDR": "127.0.0.1:0", "NEXUS_LOG_FORMAT": "json",
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}
	log := serveOnce(t, vars, func(url string) {
		getWith(t, url+"/v2/.well-known/jwks.json", "traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
		getWith(t, url+"/healthz")
	})
	col.mu.Lock()
	paths, auth, spans, services := col.paths, col.auth, col.spans, col.services
	col.mu.Unlock()
	if len(paths) == 0 {
		t.Fatalf("the collector received nothing; log:\n%s", log)
	}
	for _, p := range paths {
		if p != "POST /v1/traces application/x-protobuf" {
			t.Errorf("export request %q, want POST /v1/traces application/x-protobuf", p)
		}
	}
	if auth[0] != "Bearer collector-s3cret" {
		t.Errorf("export Authorization %q: OTEL_EXPORTER_OTLP_HEADERS not sent", auth[0])
	}
	if spans["getJwks"] != trace {
		t.Errorf("span getJwks in trace %q, want %s; spans: %v", spans["getJwks"], trace, spans)
	}
	if _, ok := spans["/healthz"]; !ok {
		t.Errorf("no /healthz span; spans: %v", spans)
	}
	if len(services) == 0 || services[0] != "nexus" {
		t.Errorf("service.name %v, want nexus", services)
	}
	if want := `"tracing":"otlp http/protobuf to ` + srv.URL + `/v1/traces"`; !strings.Contains(log, want) {
		t.Errorf("configuration line without %s:\n%s", want, log)
	}
	if strings.Contains(log, "s3cret") {
		t.Error("the log shows the OTLP header's value")
	}

	for name, extra := range map[string]map[string]string{
		"no endpoint":   {"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
		"sdk disabled":  {"OTEL_SDK_DISABLED": "true"},
		"exporter none": {"OTEL_TRACES_EXPORTER": "none"},
	} {
		t.Run(name, func(t *testing.T) {
			off := map[string]string{}
			for k, v := range vars {
				off[k] = v
			}
			for k, v := range extra {
				off[k] = v
			}
			col.mu.Lock()
			col.paths = nil
			col.mu.Unlock()
			log := serveOnce(t, off, func(url string) { getWith(t, url+"/healthz") })
			col.mu.Lock()
			n := len(col.paths)
			col.mu.Unlock()
			if n != 0 {
				t.Errorf("%d exports with tracing off", n)
			}
			if !strings.Contains(log, `"tracing":"off (`) {
				t.Errorf("configuration line does not say tracing is off:\n%s", log)
			}
		})
	}
}

// TestServeTracingRefusesUnsupported: an OTEL_* setting that asks for spans this build cannot send fails the
// start, before anything is touched.
func TestServeTracingRefusesUnsupported(t *testing.T) {
	for name, c := range map[string]struct {
		vars map[string]string
		want string
	}{
		"grpc":   {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		"zipkin": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		"no url": {map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"}, "OTLP endpoint"},
	} {
		t.Run(name, func(t *testing.T) {
			c.vars["NEXUS_DATA_DIR"], c.vars["NEXUS_HTTP_ADDR"] = t.TempDir(), "127.0.0.1:0"
			err := run(context.Background(), []string{"serve", "--dev"}, envFunc(c.vars), strings.NewReader(""), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want one naming %s", err, c.want)
			}
		})
	}
}
