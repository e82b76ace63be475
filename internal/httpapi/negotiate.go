package httpapi

import (
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// negotiate answers 406 when the request's Accept header rules out every media type the operation's successful
// responses have. Problem bodies are always application/problem+json, whatever Accept says (RFC 9110 allows an
// error response in another type than asked for).
func (s *Server) negotiate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		accept := c.Request().Header.Get(echo.HeaderAccept)
		op, ok := s.ops[c.Request().Method+" "+c.Path()]
		if !ok || accept == "" || len(op.produces) == 0 {
			return next(c)
		}
		for _, mt := range op.produces {
			if acceptable(accept, mt) {
				return next(c)
			}
		}
		return &transportError{status: http.StatusNotAcceptable, code: "not_acceptable",
			detail: "The response can only be " + strings.Join(op.produces, " or ") + ".",
			fields: []nexus.FieldError{{In: nexus.InHeader, Name: "Accept", Detail: "must accept " + strings.Join(op.produces, " or ")}}}
	}
}

// acceptable reports whether the Accept header value admits the media type mt with a non-zero quality.
func acceptable(accept, mt string) bool {
	typ, sub, _ := strings.Cut(mt, "/")
	for _, part := range strings.Split(accept, ",") {
		rng, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if v, err := strconv.ParseFloat(q, 64); err != nil || v <= 0 {
				continue
			}
		}
		rt, rs, _ := strings.Cut(rng, "/")
		if (rt == "*" && rs == "*") || (rt == typ && (rs == "*" || rs == sub)) {
			return true
		}
	}
	return false
}
