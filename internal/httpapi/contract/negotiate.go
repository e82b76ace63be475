package contract

import (
	"mime"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// negotiate answers 406 when the request's Accept header rules out every media type the operation's successful
// responses have. Problem bodies are always application/problem+json, whatever Accept says (RFC 9110 allows an
// error response in another type than asked for).
func (k *Contract) negotiate(x *exchange) error {
	accept := x.c.Request().Header.Get(echo.HeaderAccept)
	if accept == "" || len(x.op.Produces) == 0 {
		return nil
	}
	for _, mt := range x.op.Produces {
		if acceptable(accept, mt) {
			return nil
		}
	}
	return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeNotAcceptable,
		Message: "The response can only be " + strings.Join(x.op.Produces, " or ") + ".",
		Fields:  []nexus.FieldError{{In: nexus.InHeader, Name: "Accept", Detail: "must accept " + strings.Join(x.op.Produces, " or ")}}}
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
