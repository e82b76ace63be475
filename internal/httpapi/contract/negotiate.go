package contract

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
	return anyRange(accept, func(rt, rs string) bool { return (rt == "*" && rs == "*") || (rt == typ && (rs == "*" || rs == sub)) })
}

// NamesMediaType reports whether an Accept field of h names the media type mt itself (no wildcard) with a
// non-zero quality: for answers that have a second representation only for clients that ask for it.
func NamesMediaType(h http.Header, mt string) bool {
	typ, sub, _ := strings.Cut(mt, "/")
	for _, accept := range h.Values("Accept") {
		if anyRange(accept, func(rt, rs string) bool { return rt == typ && rs == sub }) {
			return true
		}
	}
	return false
}

// anyRange reports whether one media range of the Accept header value, with a non-zero quality, matches.
func anyRange(accept string, match func(typ, sub string) bool) bool {
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
		if rt, rs, _ := strings.Cut(rng, "/"); match(rt, rs) {
			return true
		}
	}
	return false
}
