package telemetry

import (
	"context"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	for name, c := range map[string]struct {
		env      map[string]string
		enabled  bool
		endpoint string
		err      string
	}{
		"nothing set":        {env: nil},
		"endpoint":           {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, enabled: true, endpoint: "http://collector:4318/v1/traces"},
		"endpoint with path": {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector/otlp/"}, enabled: true, endpoint: "https://collector/otlp/v1/traces"},
		"traces endpoint wins": {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/custom"},
			enabled: true, endpoint: "http://b:4318/custom"},
		"credentials never shown": {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:pa55@collector:4318?token=t0k"}, enabled: true, endpoint: "https://collector:4318/v1/traces"},
		"sdk disabled":            {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "TRUE"}},
		"exporter none":           {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}},
		"exporter otlp":           {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "otlp"}, enabled: true, endpoint: "http://c:4318/v1/traces"},
		"exporter console":        {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "console"}, err: "OTEL_TRACES_EXPORTER"},
		"grpc":                    {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, err: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		"no scheme":               {env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, err: "OTLP endpoint"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Read(func(k string) string { return c.env[k] })
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one naming %s", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Enabled != c.enabled || s.Endpoint != c.endpoint {
				t.Errorf("enabled %v endpoint %q, want %v %q", s.Enabled, s.Endpoint, c.enabled, c.endpoint)
			}
			tr, err := Start(context.Background(), s, "v1.2.3")
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			if (tr.Provider != nil) != c.enabled || (tr.Propagator != nil) != c.enabled {
				t.Errorf("provider %v propagator %v with enabled %v", tr.Provider, tr.Propagator, c.enabled)
			}
			if str := tr.String(); strings.Contains(str, "pa55") || strings.Contains(str, "t0k") {
				t.Errorf("String() shows credentials: %s", str)
			}
		})
	}
}
