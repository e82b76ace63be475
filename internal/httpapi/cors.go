package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

// cors lets browsers on the given origins call the API. It is off unless origins are configured: a JSON API
// with bearer tokens needs no cookies, so credentials are never allowed, and a preflight is answered before
// authentication, rate limits and validation. Clients may read the headers they need to act on: the request id,
// where a created resource is, and when to retry.
func cors(origins []string, maxAge time.Duration) echo.MiddlewareFunc {
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins: origins,
		AllowMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch},
		AllowHeaders: []string{echo.HeaderAuthorization, echo.HeaderContentType, echo.HeaderAccept, headerRequestID, echo.HeaderContentEncoding},
		ExposeHeaders: []string{headerRequestID, echo.HeaderLocation, echo.HeaderRetryAfter, echo.HeaderWWWAuthenticate,
			"RateLimit", "RateLimit-Policy"},
		MaxAge: int(maxAge.Seconds()),
	})
}
