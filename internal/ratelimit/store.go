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
	"github.com/throttled/throttled/v2/store/goredisstore.v9"
)

// redisStore is throttled's go-redis v9 store (goredisstore.v9) with fixes;
// the state, its layout and the compare-and-swap script are the library's.
//
//   - GetWithTime: the library ignores the error of its TIME+GET pipeline
//     and reads the commands' own errors instead; go-redis does not set
//     those when the connection fails, so a refused connection surfaced
//     only as "strconv.ParseInt: parsing """ (and a zero time with it). The
//     same pipeline, with its error checked.
//   - SetIfNotExistsWithTTL: the library sends SETNX, then EXPIRE. That is
//     not atomic (a timeout in between leaves a key that never expires), and
//     when SETNX loses a race its EXPIRE still runs and shortens the TTL of
//     the winner's key, which may by then hold a long budget: the key
//     expires early and the budget refills early. One SET NX PX does both
//     atomically and only for the key it creates.
//   - CompareAndSwapWithTTL: the library rounds the TTL down to whole
//     seconds, so a key may expire up to a second before its theoretical
//     arrival time, refilling the budget early. A second is added.
//
// Every error from Redis is wrapped in backendError, so that the Limiter can
// tell a failing Redis from the library's "lost every race" error.
type redisStore struct {
	lib    *goredisstore.GoRedisStore
	client *redis.Client
	prefix string
}

// ttlPad is added to every TTL so that no key expires before the time its
// state stops mattering (whole-second rounding, clock granularity).
const ttlPad = time.Second

var _ throttled.GCRAStoreCtx = (*redisStore)(nil)

func (s *redisStore) GetWithTime(ctx context.Context, key string) (int64, time.Time, error) {
	pipe := s.client.Pipeline()
	timeCmd := pipe.Time(ctx)
	getCmd := pipe.Get(ctx, s.prefix+key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, time.Time{}, &backendError{err}
	}
	now, err := timeCmd.Result()
	if err != nil {
		return 0, time.Time{}, &backendError{err}
	}
	v, err := getCmd.Int64()
	switch {
	case errors.Is(err, redis.Nil):
		return -1, now, nil
	case err != nil:
		return 0, now, &backendError{err}
	}
	return v, now, nil
}

func (s *redisStore) SetIfNotExistsWithTTL(ctx context.Context, key string, value int64, ttl time.Duration) (bool, error) {
	ok, err := s.client.SetNX(ctx, s.prefix+key, value, ttl+ttlPad).Result()
	if err != nil {
		return false, &backendError{err}
	}
	return ok, nil
}

func (s *redisStore) CompareAndSwapWithTTL(ctx context.Context, key string, old, new int64, ttl time.Duration) (bool, error) {
	ok, err := s.lib.CompareAndSwapWithTTL(ctx, key, old, new, ttl+ttlPad)
	if err != nil {
		return false, &backendError{err}
	}
	return ok, nil
}

// readOnly is a view of a store whose writes succeed without writing, for
// Peek: the library's limiter with quantity 0 writes back the state it read.
type readOnly struct{ throttled.GCRAStoreCtx }

func (readOnly) SetIfNotExistsWithTTL(context.Context, string, int64, time.Duration) (bool, error) {
	return true, nil
}

func (readOnly) CompareAndSwapWithTTL(context.Context, string, int64, int64, time.Duration) (bool, error) {
	return true, nil
}

// backendError is a failure of Redis itself (unreachable, timed out,
// refusing commands).
type backendError struct{ err error }

func (e *backendError) Error() string { return e.err.Error() }
func (e *backendError) Unwrap() error { return e.err }

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
