package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// defaultRequestTimeout is the deadline of a request when Options.RequestTimeout is zero.
const defaultRequestTimeout = 10 * time.Second

// requestDeadline gives every request's context a deadline, s.requestTimeout from now. Everything a request
// waits for honours it: a connection of the pool, a query or transaction (PostgreSQL drops the connection, SQLite
// stops waiting for the write lock), a place in the event writer's queue. What the deadline cut short is the
// server's failure to answer in time, not the client's: an error it causes that is not already classified
// becomes 503 unavailable (with Retry-After), never 500.
func (s *Server) requestDeadline(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		ctx, cancel := context.WithTimeout(req.Context(), s.requestTimeout)
		defer cancel()
		c.SetRequest(req.WithContext(ctx))
		err := next(c)
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && unclassified(err) {
			return nexus.Unavailable(err)
		}
		return err
	}
}

// unclassified reports whether err would otherwise be answered 500: it is internal (asNexus).
func unclassified(err error) bool {
	return asNexus(err).Kind == nexus.KindInternal
}
