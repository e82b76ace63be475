package config

import (
	"log/slog"
	"time"
)

// ReplaceAttr is the slog.HandlerOptions.ReplaceAttr of the server's logs: it writes a time.Duration as
// time.Duration.String ("15m0s"), where the JSON handler would write a number of nanoseconds (900000000000).
// The text handler already writes durations that way, so text logs do not change.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// duration is a duration of the configuration as LogValue logs it: in words ("15m0s") whatever the handler.
func duration(key string, d time.Duration) slog.Attr { return slog.String(key, d.String()) }
