package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// SetRedisLogger sends go-redis' own log lines (such as "connection pool:
// failed to dial", printed on every failed dial while Redis is down) to l at
// debug level, instead of go-redis' default: unstructured lines on stderr.
// The Limiter reports outages itself (one warning per transition, and
// Status), so these lines are only detail. They may name the Redis address,
// never its password.
//
// go-redis keeps its logger in a process-wide variable, so call this once,
// from main, before New.
func SetRedisLogger(l *slog.Logger) {
	redis.SetLogger(redisLogger{l})
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if !r.l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	r.l.DebugContext(ctx, "go-redis: "+strings.TrimSpace(fmt.Sprintf(format, v...)))
}
