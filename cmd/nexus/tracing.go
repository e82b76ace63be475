package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/nexus-cloud/nexus-core/internal/telemetry"
)

// tracingFlushTimeout bounds the export of the spans still buffered at shutdown.
const tracingFlushTimeout = 5 * time.Second

// startTracing turns tracing on when the standard OTEL_* variables ask for it (see telemetry.Read), with
// service.version from the build information. It changes no global state: the tracer provider and the propagator
// are handed to the store and the node; stop flushes the spans still buffered, and is a no-op with tracing off.
func startTracing(ctx context.Context, getenv func(string) string) (*telemetry.Tracing, error) {
	s, err := telemetry.Read(getenv)
	if err != nil {
		return nil, err
	}
	return telemetry.Start(ctx, s, readBuildInfo(debug.ReadBuildInfo).Version)
}

// logTracingErrors sends the SDK's errors (a collector that cannot be reached) to the log as warnings: the one
// global setting tracing makes, and only when it is on.
func logTracingErrors(t *telemetry.Tracing, log *slog.Logger) {
	if t.Provider == nil {
		return
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing", slog.Any("error", err))
	}))
}

// stopTracing exports the spans still buffered, within tracingFlushTimeout, and stops the tracer provider.
func stopTracing(ctx context.Context, t *telemetry.Tracing, log *slog.Logger) {
	if t.Provider == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("tracing: spans were lost at shutdown", slog.Any("error", err))
	}
}
