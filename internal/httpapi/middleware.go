package httpapi

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexus-cloud/nexus-core/internal/auth"
)

const headerRequestID = "X-Request-Id"

var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	metaKey
)

// requestID echoes a sane client X-Request-Id, or makes a new one, on the response and in the request context.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(headerRequestID)
		if !saneRequestID.MatchString(id) {
			id = newRequestID()
		}
		c.Response().Header().Set(headerRequestID, id)
		req := c.Request()
		c.SetRequest(req.WithContext(context.WithValue(req.Context(), requestIDKey, id)))
		return next(c)
	}
}

// newRequestID returns 26 random characters of Crockford's base32.
func newRequestID() string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	b := make([]byte, 26)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return string(b)
}

// RequestIDFrom returns the request id carried by ctx.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// recoverPanics turns a panic into an internal error that the error handler logs once, with the stack.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		return next(c)
	}
}

// accessLog logs one line per request: never the query string, headers or bodies, which may carry secrets.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // write the response now, so the status below is the one sent
		}
		req := c.Request()
		attrs := make([]slog.Attr, 0, 10)
		attrs = append(attrs,
			slog.String("request_id", RequestIDFrom(req.Context())),
			slog.String("method", method(req)),
			slog.String("route", c.Path()),
			slog.Int("status", c.Response().Status),
			slog.Int64("bytes", c.Response().Size),
			slog.Duration("duration", time.Since(start)),
			slog.String("ip", c.RealIP()),
		)
		// The request's span (tracing on and the request sampled): its trace id finds the trace of this line.
		if traceID, spanID, ok := traceIDs(trace.SpanContextFromContext(req.Context())); ok {
			attrs = append(attrs, slog.String("trace_id", traceID), slog.String("span_id", spanID))
		}
		s.log.LogAttrs(req.Context(), slog.LevelInfo, "request", attrs...)
		return nil
	}
}

// securityHeaders sets the headers every API response carries. Responses are not cacheable unless a handler
// says otherwise (the JWKS document).
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		if s.https {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		return next(c)
	}
}

// requestMeta puts what the audit log records about the caller into the request context, where the strict
// handlers can read it.
func (s *Server) requestMeta(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		meta := auth.Meta{SocketIP: c.RealIP(), UserAgent: req.UserAgent()}
		c.SetRequest(req.WithContext(context.WithValue(req.Context(), metaKey, meta)))
		return next(c)
	}
}

func metaFrom(ctx context.Context) auth.Meta {
	m, _ := ctx.Value(metaKey).(auth.Meta)
	return m
}
