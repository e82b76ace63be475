// Package telemetry turns OpenTelemetry tracing on from the standard OTEL_* environment variables: an OTLP/HTTP
// exporter behind a batching tracer provider of the SDK. Tracing is off unless an OTLP endpoint is configured;
// then the other packages get a trace.TracerProvider and start their spans with it. Only cmd/nexus imports this
// package, so that the SDK and the exporter stay out of everything else.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// DefaultServiceName is service.name unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says otherwise.
const DefaultServiceName = "nexus"

// Settings is what the environment asks of tracing, as far as this package decides it; the SDK and the exporter
// read the rest of the OTEL_* variables themselves (sampler, batching, headers, timeouts, TLS, resource).
type Settings struct {
	Enabled  bool
	Endpoint string // where spans go, for the log: the traces URL without credentials, query or fragment
	Protocol string // http/protobuf or http/json
	Why      string // why tracing is off, for the log

	url string // the traces URL as configured, credentials included, for the exporter
}

// Read decides from the environment whether tracing is on: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is set, OTEL_TRACES_EXPORTER is unset, "otlp" or "none" (off), and
// OTEL_SDK_DISABLED is not "true". The exporter speaks OTLP over HTTP only: a gRPC protocol is an error, as is an
// exporter other than otlp, so that a configuration asking for spans never runs silently without them.
func Read(getenv func(string) string) (Settings, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return Settings{Why: "OTEL_SDK_DISABLED=true"}, nil
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "", "otlp":
	case "none":
		return Settings{Why: "OTEL_TRACES_EXPORTER=none"}, nil
	default:
		return Settings{}, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (otlp or none)", exp)
	}
	endpoint, signal := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")), true
	if endpoint == "" {
		endpoint, signal = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")), false
	}
	if endpoint == "" {
		return Settings{Why: "no OTEL_EXPORTER_OTLP_ENDPOINT"}, nil
	}
	protocol := strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
	name := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	if protocol == "" {
		protocol, name = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_PROTOCOL")), "OTEL_EXPORTER_OTLP_PROTOCOL"
	}
	switch protocol {
	case "":
		protocol = "http/protobuf"
	case "http/protobuf", "http/json":
	default:
		return Settings{}, fmt.Errorf("%s: %q is not supported (http/protobuf or http/json; this build has no gRPC exporter)", name, protocol)
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Settings{}, errors.New("OTLP endpoint: not an http:// or https:// URL with a host")
	}
	if !signal {
		// The signal's path is appended to the generic endpoint.
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	full := u.String()
	u.User, u.RawQuery, u.Fragment = nil, "", "" // never log credentials
	return Settings{Enabled: true, Endpoint: u.String(), Protocol: protocol, url: full}, nil
}

// Tracing is the process's tracing: a tracer provider and the propagator of incoming trace context, or nothing
// at all when tracing is off.
type Tracing struct {
	Settings
	// Provider starts spans; nil when tracing is off (the instrumented packages then do nothing).
	Provider trace.TracerProvider
	// Propagator reads W3C traceparent and tracestate; nil when tracing is off.
	Propagator propagation.TextMapPropagator

	sdk *sdktrace.TracerProvider
}

// Start builds the tracing that s asks for: with tracing on, a tracer provider exporting batches of spans over
// OTLP/HTTP, with service.name "nexus" and service.version version unless OTEL_SERVICE_NAME or
// OTEL_RESOURCE_ATTRIBUTES set them. opts are added to the provider's options (tests: a synchronous exporter).
func Start(ctx context.Context, s Settings, version string, opts ...sdktrace.TracerProviderOption) (*Tracing, error) {
	t := &Tracing{Settings: s}
	if !s.Enabled {
		return t, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", DefaultServiceName), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, last: they win
	)
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	// The endpoint and protocol as Read decided them; the exporter reads the other OTEL_EXPORTER_OTLP_* variables
	// (headers, timeout, TLS, compression) from the process's environment itself.
	encoding := otlptracehttp.EncodingProtobuf
	if s.Protocol == "http/json" {
		encoding = otlptracehttp.EncodingJSON
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(s.url), otlptracehttp.WithEncoding(encoding))
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	t.sdk = sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}, opts...)...)
	t.Provider = t.sdk
	t.Propagator = propagation.TraceContext{}
	return t, nil
}

// Shutdown exports the spans still buffered and stops the provider; a no-op when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	return t.sdk.Shutdown(ctx)
}

// String is what the configuration log line shows: on or off, and where spans go (never any header).
func (t *Tracing) String() string {
	if !t.Enabled {
		return "off (" + t.Why + ")"
	}
	return "otlp " + t.Protocol + " to " + t.Endpoint
}
