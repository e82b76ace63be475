package config_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/config"
)

// TestLogDurationsInWords checks that the logged configuration shows durations as "15m0s" in JSON, not as
// nanoseconds, and that text logs keep showing them the way they always did.
func TestLogDurationsInWords(t *testing.T) {
	c, err := config.Load(env(map[string]string{"NEXUS_SECRET_KEY": secret, "NEXUS_ACCESS_TOKEN_TTL": "15m"}), false)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, tc := range []struct {
		name       string
		newHandler func(*bytes.Buffer) slog.Handler
		want       string
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }, `"access_token_ttl":"15m0s"`},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }, `config.access_token_ttl=15m0s `},
	} {
		var buf bytes.Buffer
		slog.New(tc.newHandler(&buf)).Info("configuration", "config", c)
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%s: %q not in\n%s", tc.name, tc.want, buf.String())
		}
		if strings.Contains(buf.String(), "900000000000") {
			t.Errorf("%s: nanoseconds logged:\n%s", tc.name, buf.String())
		}
	}
}

// TestReplaceAttr checks the handler option: any duration, also in a group, is written in words by the JSON
// handler, and the text handler writes exactly what it writes without it.
func TestReplaceAttr(t *testing.T) {
	logTo := func(h slog.Handler) {
		slog.New(h).Info("shutting down", slog.Duration("timeout", 1500*time.Millisecond),
			slog.Group("pool", slog.Duration("idle", 15*time.Minute)), slog.Int("n", 3))
	}
	var j bytes.Buffer
	logTo(slog.NewJSONHandler(&j, &slog.HandlerOptions{ReplaceAttr: config.ReplaceAttr}))
	for _, s := range []string{`"timeout":"1.5s"`, `"pool":{"idle":"15m0s"}`, `"n":3`} {
		if !strings.Contains(j.String(), s) {
			t.Errorf("%q not in %s", s, j.String())
		}
	}
	var with, without bytes.Buffer
	logTo(slog.NewTextHandler(&with, &slog.HandlerOptions{ReplaceAttr: func(g []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(g) == 0 {
			return slog.Attr{}
		}
		return config.ReplaceAttr(g, a)
	}}))
	logTo(slog.NewTextHandler(&without, &slog.HandlerOptions{ReplaceAttr: func(g []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey && len(g) == 0 {
			return slog.Attr{}
		}
		return a
	}}))
	if with.String() != without.String() {
		t.Errorf("text log changed:\n%s\nwas\n%s", with.String(), without.String())
	}
}
