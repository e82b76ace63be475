package httpapi

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// DefaultMaxHeaderBytes is the request line and header size that Options.MaxHeaderBytes 0 stands for.
const DefaultMaxHeaderBytes = 32 << 10

// HeaderHardLimit is the http.Server.MaxHeaderBytes to give the listener for a header limit of limit bytes (0 for
// the default): twice the limit plus 4 KiB, so that a request between the two still reaches headerLimit and gets
// a 431 problem+json, while a larger one is cut off by net/http (with its own plain-text 431) before it takes
// more memory.
func HeaderHardLimit(limit int) int {
	if limit <= 0 {
		limit = DefaultMaxHeaderBytes
	}
	return 2*limit + 4<<10
}

// headerLimit answers 431 request_headers_too_large when the request line and header fields, counted as sent
// over HTTP/1.1 (every line with its CRLF, Host and Transfer-Encoding included), exceed limit bytes. It runs
// before routing, so that no route, however unknown, costs more than a header of the limit's size.
func headerLimit(limit int) echo.MiddlewareFunc {
	if limit <= 0 {
		limit = DefaultMaxHeaderBytes
	}
	tooLarge := &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeRequestHeadersTooLarge,
		Message: fmt.Sprintf("The request line and header fields must not exceed %d bytes.", limit)}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if headerSize(c.Request(), limit) > limit {
				return tooLarge
			}
			return next(c)
		}
	}
}

// headerSize returns the size of the request line and header fields of req as HTTP/1.1 sends them, or a number
// over limit as soon as it is known to exceed it.
func headerSize(req *http.Request, limit int) int {
	// "GET /path HTTP/1.1\r\n" ... "\r\n"
	n := len(req.Method) + 1 + len(req.RequestURI) + 1 + len(req.Proto) + 2 + 2
	if req.Host != "" {
		n += len("Host: ") + len(req.Host) + 2
	}
	for _, te := range req.TransferEncoding { // net/http takes it out of the header
		n += len("Transfer-Encoding: ") + len(te) + 2
	}
	for name, values := range req.Header {
		for _, v := range values {
			n += len(name) + 2 + len(v) + 2
		}
		if n > limit {
			return n
		}
	}
	return n
}
