package ratelimit

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
)

// readOnly is a view of a store whose writes succeed without writing, for
// Peek: the library's limiter with quantity 0 writes back the state it read.
type readOnly struct{ throttled.GCRAStoreCtx }

func (readOnly) SetIfNotExistsWithTTL(context.Context, string, int64, time.Duration) (bool, error) {
	return true, nil
}

func (readOnly) CompareAndSwapWithTTL(context.Context, string, int64, int64, time.Duration) (bool, error) {
	return true, nil
}

// describe returns a short description of a Redis failure for logs and
// Status. It never includes the error's own text, which may name the
// server's address; only Redis' error code is kept from a server reply.
func describe(err error) string {
	var netErr net.Error
	var dnsErr *net.DNSError
	var redisErr redis.Error
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return "connection lost"
	case errors.As(err, &dnsErr):
		return "host not found"
	case errors.Is(err, redis.ErrPoolTimeout):
		return "connection pool timeout"
	case errors.Is(err, redis.ErrClosed):
		return "client closed"
	case errors.As(err, &redisErr):
		code, _, _ := strings.Cut(redisErr.Error(), " ")
		return "redis error " + code
	case strings.Contains(err.Error(), "EOF"):
		return "connection lost"
	default:
		return "unavailable"
	}
}
