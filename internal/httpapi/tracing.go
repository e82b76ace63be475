package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the tracer of this package's spans.
const instrumentationName = "github.com/nexus-cloud/nexus-core/internal/httpapi"

// tracing starts one server span per request, named by the operation (the operationId, or the route of the
// routes outside the contract), a child of the W3C traceparent the client sent, if any; the request's context
// carries it to the database spans below. It ends the span once the answer is written, with the standard HTTP
// attributes (method, route, status code) and an error status for 5xx answers only: a 4xx is the client's
// mistake, not the server's failure. With tracing off it is not installed at all.
func (s *Server) tracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) echo.MiddlewareFunc {
	tracer := tp.Tracer(instrumentationName)
	ops := s.contract.Operations()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			ctx := prop.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
			route := c.Path()
			m := req.Method
			if m == http.MethodHead {
				m = http.MethodGet // HEAD runs the GET operation
			}
			name := route
			if op, ok := ops[m+" "+route]; ok {
				name = op.ID()
			} else if route == "" || c.Handler() == nil {
				name = spanMethod(req.Method)
			}
			ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
				semconv.HTTPRequestMethodKey.String(spanMethod(req.Method)),
				semconv.URLScheme(c.Scheme()),
				semconv.ClientAddress(c.RealIP()),
			))
			defer span.End()
			if route != "" {
				span.SetAttributes(semconv.HTTPRoute(route))
			}
			if req.ProtoMajor > 0 {
				span.SetAttributes(semconv.NetworkProtocolVersion(strconv.Itoa(req.ProtoMajor) + "." + strconv.Itoa(req.ProtoMinor)))
			}
			c.SetRequest(req.WithContext(ctx))
			if err := next(c); err != nil {
				c.Error(err) // write the answer now, so that the status below is the one sent
			}
			status := c.Response().Status
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			if status >= 500 {
				span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
				span.SetStatus(codes.Error, "")
			}
			return nil
		}
	}
}

// spanMethod is the method as the semantic conventions record it: a known method, or _OTHER.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// traceIDs returns the trace and span ids of a span for the access log, when it has a sampled one.
func traceIDs(sc trace.SpanContext) (traceID, spanID string, ok bool) {
	if !sc.IsValid() || !sc.IsSampled() {
		return "", "", false
	}
	return sc.TraceID().String(), sc.SpanID().String(), true
}
