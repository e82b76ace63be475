package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// lockedBuffer is a log destination that the handler's goroutines may write to while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// requestLines returns the access log's lines ("request") as JSON objects.
func (l *lockedBuffer) requestLines(t testing.TB) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

// tracedEnv is an env whose database, requests and event pipeline trace into an in-memory exporter, sampling
// every trace, and whose logger writes JSON lines to logs.
func tracedEnv(t *testing.T, d store.Dialect, wrap func(analytics.Store) analytics.Store) (*env, *tracetest.InMemoryExporter, *lockedBuffer) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	db := storetest.OpenWith(t, d, func(o *store.Options) { o.TracerProvider = tp })
	logs := &lockedBuffer{}
	e := newEnvWith(t, db, func(e *env) {
		e.tracer, e.logger, e.wrapEvents = tp, slog.New(slog.NewJSONHandler(logs, nil)), wrap
	})
	return e, exp, logs
}

const (
	incomingTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingParent = "00f067aa0ba902b7"
	traceparent    = "00-" + incomingTrace + "-" + incomingParent + "-01"
)

func spansNamed(spans tracetest.SpanStubs, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// descendsFrom reports whether s is root or a descendant of it among spans.
func descendsFrom(spans tracetest.SpanStubs, s tracetest.SpanStub, root trace.SpanContext) bool {
	byID := map[trace.SpanID]tracetest.SpanStub{}
	for _, x := range spans {
		byID[x.SpanContext.SpanID()] = x
	}
	for range len(spans) + 1 {
		if s.SpanContext.SpanID() == root.SpanID() && s.SpanContext.TraceID() == root.TraceID() {
			return true
		}
		p, ok := byID[s.Parent.SpanID()]
		if !ok || s.Parent.TraceID() != root.TraceID() {
			return false
		}
		s = p
	}
	return false
}

// dbSpansUnder returns the database spans (db.system.name set) that descend from root.
func dbSpansUnder(spans tracetest.SpanStubs, root trace.SpanContext) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range spans {
		if _, ok := attr(s, "db.system.name"); ok && s.SpanContext.SpanID() != root.SpanID() && descendsFrom(spans, s, root) {
			out = append(out, s)
		}
	}
	return out
}

func oneSpan(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	s := spansNamed(spans, name)
	if len(s) != 1 {
		var names []string
		for _, x := range spans {
			names = append(names, x.Name)
		}
		t.Fatalf("%d spans named %q, want 1; spans: %v", len(s), name, names)
	}
	return s[0]
}

// TestTracingRequest: a request with a W3C traceparent is a server span in that trace, named by its operation,
// with the HTTP attributes, the database statements as its descendants (never a bound value), and its trace and
// span ids in the access log line. A 4xx answer is no error; a 5xx one is.
func TestTracingRequest(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			e, exp, logs := tracedEnv(t, d, nil)
			admin, _ := e.tokens(webClient)
			exp.Reset()

			r := e.do("GET", "/v2/users/"+e.admin.ID, nil, append(bearer(admin), "traceparent", traceparent)...)
			if r.status != http.StatusOK {
				t.Fatalf("get user: %d %s", r.status, r.body)
			}
			spans := exp.GetSpans()
			srv := oneSpan(t, spans, "getUser")
			if srv.SpanKind != trace.SpanKindServer || srv.SpanContext.TraceID().String() != incomingTrace ||
				srv.Parent.SpanID().String() != incomingParent || !srv.Parent.IsRemote() {
				t.Errorf("server span: kind %v, trace %s, parent %s (remote %v): want a server span in the incoming trace, child of its parent",
					srv.SpanKind, srv.SpanContext.TraceID(), srv.Parent.SpanID(), srv.Parent.IsRemote())
			}
			for key, want := range map[attribute.Key]attribute.Value{
				"http.request.method":       attribute.StringValue("GET"),
				"http.route":                attribute.StringValue("/v2/users/:userId"),
				"http.response.status_code": attribute.IntValue(200),
			} {
				if got, ok := attr(srv, key); !ok || got != want {
					t.Errorf("server span %s = %v, want %v", key, got.String(), want.String())
				}
			}
			if srv.Status.Code != codes.Unset {
				t.Errorf("server span status %v on a 200", srv.Status)
			}
			db := dbSpansUnder(spans, srv.SpanContext)
			if len(db) == 0 {
				t.Fatalf("no database span under the server span; spans: %d", len(spans))
			}
			for _, s := range db {
				sys, _ := attr(s, "db.system.name")
				if want := map[store.Dialect]string{store.SQLite: "sqlite", store.Postgres: "postgresql"}[d]; sys.AsString() != want {
					t.Errorf("span %q db.system.name = %q, want %q", s.Name, sys.AsString(), want)
				}
				if q, ok := attr(s, "db.query.text"); ok && strings.Contains(q.AsString(), e.admin.ID) {
					t.Errorf("span %q carries a bound value in its statement: %s", s.Name, q.AsString())
				}
				for _, kv := range s.Attributes {
					if strings.Contains(kv.Value.String(), e.admin.ID) {
						t.Errorf("span %q attribute %s carries the user id", s.Name, kv.Key)
					}
				}
			}
			lines := logs.requestLines(t)
			last := lines[len(lines)-1]
			if last["trace_id"] != incomingTrace || last["span_id"] != srv.SpanContext.SpanID().String() {
				t.Errorf("access log trace_id %v span_id %v, want %s %s", last["trace_id"], last["span_id"], incomingTrace, srv.SpanContext.SpanID())
			}

			// Without a traceparent, a new trace; a 404 is not an error of the server.
			exp.Reset()
			r = e.do("GET", "/v2/users/00000000-0000-4000-8000-000000000000", nil, bearer(admin)...)
			if r.status != http.StatusNotFound {
				t.Fatalf("unknown user: %d %s", r.status, r.body)
			}
			srv = oneSpan(t, exp.GetSpans(), "getUser")
			if srv.SpanContext.TraceID().String() == incomingTrace || srv.Parent.IsValid() || srv.Status.Code != codes.Unset {
				t.Errorf("404 span: trace %s, parent valid %v, status %v: want a new root trace without an error", srv.SpanContext.TraceID(), srv.Parent.IsValid(), srv.Status)
			}
			// A route outside the contract is named by its route.
			exp.Reset()
			e.do("GET", "/healthz", nil)
			oneSpan(t, exp.GetSpans(), "/healthz")
			// An unknown path: named by the method alone (a path in the name would make names without bound).
			exp.Reset()
			e.do("GET", "/no/such/path/"+e.admin.ID, nil)
			if s := oneSpan(t, exp.GetSpans(), "GET"); len(dbSpansUnder(exp.GetSpans(), s.SpanContext)) != 0 {
				t.Error("database spans under a 404 of an unknown path")
			} else if _, ok := attr(s, "http.route"); ok {
				t.Error("http.route on an unknown path")
			}
		})
	}
}

// downInserts is an events store whose inserts fail as an unreachable database does.
type downInserts struct{ analytics.Store }

func (downInserts) InsertEvents(context.Context, []analytics.Pending) ([]analytics.Outcome, error) {
	return nil, nexus.Unavailable(errors.New("database down"))
}

// TestTracingEvents: an event's request span and the writer's commit span link to each other (one commit serves
// many requests, so it is a root span of its own), the commit's database work descends from it, and the
// processor's batch is a root span with its database work below it. A failed commit answered 503 marks both the
// commit and the request span as errors.
func TestTracingEvents(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			e, exp, _ := tracedEnv(t, d, nil)
			admin, _ := e.tokens(webClient)
			exp.Reset()
			mustAccept(t, e.do("POST", eventsPath, newEvent("traced"), append(bearer(admin), "traceparent", traceparent)...), false)

			var batch tracetest.SpanStub
			waitUntil(t, 5*time.Second, "a processor batch span", func() (bool, string) {
				for _, s := range spansNamed(exp.GetSpans(), "events process") {
					if n, _ := attr(s, "nexus.events.batch_size"); n.AsInt64() > 0 {
						batch = s
						return true, ""
					}
				}
				return false, "none with events"
			})
			spans := exp.GetSpans()
			req := oneSpan(t, spans, "trackEvent")
			commit := oneSpan(t, spans, "events commit")
			if commit.Parent.IsValid() || commit.SpanContext.TraceID() == req.SpanContext.TraceID() {
				t.Errorf("commit span: parent valid %v, same trace %v: want a root span of its own", commit.Parent.IsValid(), commit.SpanContext.TraceID() == req.SpanContext.TraceID())
			}
			if len(commit.Links) != 1 || commit.Links[0].SpanContext.SpanID() != req.SpanContext.SpanID() {
				t.Errorf("commit span links %v, want the request span %s", commit.Links, req.SpanContext.SpanID())
			}
			if len(req.Links) != 1 || req.Links[0].SpanContext.SpanID() != commit.SpanContext.SpanID() {
				t.Errorf("request span links %v, want the commit span %s", req.Links, commit.SpanContext.SpanID())
			}
			if n, _ := attr(commit, "nexus.events.batch_size"); n.AsInt64() != 1 {
				t.Errorf("commit batch size %d, want 1", n.AsInt64())
			}
			if len(dbSpansUnder(spans, commit.SpanContext)) == 0 {
				t.Error("no database span under the commit span")
			}
			if batch.Parent.IsValid() {
				t.Error("the processor's batch span has a parent")
			}
			if len(dbSpansUnder(spans, batch.SpanContext)) == 0 {
				t.Error("no database span under the processor's batch span")
			}

			// A commit that fails: 503, both spans errors.
			c := *e
			c.wrapEvents = func(s analytics.Store) analytics.Store { return downInserts{s} }
			down := c.instance()
			exp.Reset()
			r := down.do("POST", eventsPath, newEvent("lost"), bearer(admin)...)
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("event on a failing database: %d %s", r.status, r.body)
			}
			spans = exp.GetSpans()
			req, commit = oneSpan(t, spans, "trackEvent"), oneSpan(t, spans, "events commit")
			if req.Status.Code != codes.Error || commit.Status.Code != codes.Error {
				t.Errorf("statuses on a 503: request %v, commit %v; want errors", req.Status, commit.Status)
			}
			if v, _ := attr(req, "error.type"); v.AsString() != "503" {
				t.Errorf("error.type = %q, want 503", v.AsString())
			}
		})
	}
}

// TestTracingOff: without a tracer provider nothing is traced, even a request with a traceparent, and the access
// log has no trace_id.
func TestTracingOff(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		logs := &lockedBuffer{}
		off := newEnvWith(t, db, func(c *env) { c.logger = slog.New(slog.NewJSONHandler(logs, nil)) })
		admin, _ := off.tokens(webClient)
		r := off.do("GET", "/v2/users/"+off.admin.ID, nil, append(bearer(admin), "traceparent", traceparent)...)
		if r.status != http.StatusOK {
			t.Fatalf("get user: %d %s", r.status, r.body)
		}
		lines := logs.requestLines(t)
		if len(lines) == 0 {
			t.Fatal("no access log line")
		}
		for _, l := range lines {
			if _, ok := l["trace_id"]; ok {
				t.Errorf("access log line with tracing off has trace_id: %v", l)
			}
			if _, ok := l["span_id"]; ok {
				t.Errorf("access log line with tracing off has span_id: %v", l)
			}
		}
		if tp := r.header.Get("Traceparent"); tp != "" {
			t.Errorf("response carries traceparent %q", tp)
		}
	})
}

// BenchmarkTracing measures what tracing costs a cheap authenticated request (one user by id: a token
// verification, the session from the cache, one query): off (no tracer provider: no middleware, no callbacks)
// against on, sampling every request into an in-memory exporter behind the SDK's batcher as in production.
func BenchmarkTracing(b *testing.B) {
	for _, d := range storetest.Dialects {
		for _, traced := range []bool{false, true} {
			name := string(d) + "/off"
			if traced {
				name = string(d) + "/on"
			}
			b.Run(name, func(b *testing.B) {
				exp := tracetest.NewInMemoryExporter()
				var e *env
				if traced {
					tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
					b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
					db := storetest.OpenWith(b, d, func(o *store.Options) { o.TracerProvider = tp })
					e = newEnvWith(b, db, func(e *env) { e.tracer = tp })
				} else {
					e = newEnv(b, storetest.Open(b, d))
				}
				access, _ := e.tokens(webClient)
				auth := bearer(access)
				path := "/v2/users/" + e.admin.ID
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, r := exchange(b, e.h, "GET", path, nil, auth...); r.status != 200 {
						b.Fatalf("%d %s", r.status, r.body)
					}
					if i++; i%10_000 == 0 {
						exp.Reset() // keep memory flat
					}
				}
			})
		}
	}
}
