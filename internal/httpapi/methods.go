package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

type headKey struct{}

// headRoutes registers every GET route for HEAD too, with the same handler, so that the router finds HEAD
// wherever GET is (and names it in Allow). headAsGet then serves it as the GET.
type headRoutes struct{ *echo.Echo }

// GET registers h for GET and HEAD.
func (r headRoutes) GET(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	r.Echo.HEAD(path, h, m...)
	return r.Echo.GET(path, h, m...)
}

// headAsGet serves a HEAD request as the GET request of the same target (RFC 9110 section 9.3.2): what comes
// after it sees a GET, on a copy of the request, while net/http, which holds the original, knows that it answers
// a HEAD and sends the status and header fields without the body.
func headAsGet(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Method != http.MethodHead {
			return next(c)
		}
		get := req.WithContext(context.WithValue(req.Context(), headKey{}, true))
		get.Method = http.MethodGet
		c.SetRequest(get)
		return next(c)
	}
}

// method returns the method the client sent: HEAD for a HEAD request served as GET.
func method(req *http.Request) string {
	if head, _ := req.Context().Value(headKey{}).(bool); head {
		return http.MethodHead
	}
	return req.Method
}

// allowedMethods answers OPTIONS to a path that exists 204 with Allow (RFC 9110 section 9.3.7), as the router
// would, but after the middleware before it (security headers, path checks, CORS); any other method the path does
// not have is the router's 405 with Allow. (A CORS preflight, an OPTIONS request too, is answered by cors.)
func allowedMethods(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		allow, ok := c.Get(echo.ContextKeyHeaderAllow).(string)
		if !ok || allow == "" {
			return next(c)
		}
		if c.Request().Method == http.MethodOptions {
			c.Response().Header().Set(echo.HeaderAllow, allow)
			return c.NoContent(http.StatusNoContent)
		}
		return next(c)
	}
}

// canonicalPaths answers 404 to a path that only looks like a route: a trailing slash, an empty segment, or a
// path parameter that spans segments. /v2/users/ and /v2/users/{id}/ name nothing, alike.
func canonicalPaths(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := c.Request().URL.Path
		if len(p) > 1 && strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
			return echo.ErrNotFound
		}
		for _, v := range c.ParamValues() {
			if strings.Contains(v, "/") {
				return echo.ErrNotFound
			}
		}
		return next(c)
	}
}
