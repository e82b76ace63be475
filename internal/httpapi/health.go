package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// healthz answers 200 while the process is alive. It touches nothing else, so it stays fast.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the server can serve requests: not draining, and the database answers within 2 s.
func (s *Server) readyz(c echo.Context) error {
	if s.draining.Load() {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	}
	if s.ready != nil {
		if err := s.ready(c.Request().Context()); err != nil {
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "database": "unreachable"})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready", "database": "ok"})
}
