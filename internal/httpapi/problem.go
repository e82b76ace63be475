package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

const (
	problemContentType = "application/problem+json"
	problemTypeBase    = "https://api.nexus-cloud.com/problems/"
	retryAfterSeconds  = 5
)

// statusOf is the status code of an error: the codes of the HTTP exchange itself have their own, every other
// code its kind's.
func statusOf(e *nexus.Error) int {
	switch e.Code {
	case nexus.CodeNotAcceptable:
		return http.StatusNotAcceptable
	case nexus.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case nexus.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case nexus.CodeUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case nexus.CodeRequestHeadersTooLarge:
		return http.StatusRequestHeaderFieldsTooLarge
	}
	return kindStatus(e.Kind)
}

func kindStatus(k nexus.Kind) int {
	switch k {
	case nexus.KindInvalid:
		return http.StatusBadRequest
	case nexus.KindUnauthenticated:
		return http.StatusUnauthorized
	case nexus.KindPermissionDenied:
		return http.StatusForbidden
	case nexus.KindNotFound:
		return http.StatusNotFound
	case nexus.KindConflict:
		return http.StatusConflict
	case nexus.KindTooManyRequests:
		return http.StatusTooManyRequests
	case nexus.KindUnavailable:
		return http.StatusServiceUnavailable
	case nexus.KindUnprocessable:
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

// handleError is the one place where errors become responses: problem+json with a stable code, the request id,
// and for validation failures every failing field. 5xx bodies are generic; their causes are logged here, once.
// Every error it is given is a *nexus.Error, but for Echo's own (the router's 404 and 405), which asNexus
// translates, and unclassified failures, which are internal.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.log.ErrorContext(c.Request().Context(), "error after response was committed",
			slog.String("request_id", RequestIDFrom(c.Request().Context())), slog.Any("error", err))
		return
	}
	ne := asNexus(err)
	status := statusOf(ne)
	op := contract.OperationFrom(c.Request().Context())
	oauth := op != nil && op.OAuthErrors
	if oauth {
		status = oauthStatus(ne, status)
	}
	h := c.Response().Header()
	for k, v := range ne.Header {
		h[k] = v
	}
	switch {
	case oauth && ne.Code == nexus.CodeInvalidClient:
		h.Set("WWW-Authenticate", `Basic realm="nexus"`)
	case ne.Code == nexus.CodeUnauthenticated:
		if c.Request().Header.Get(echo.HeaderAuthorization) == "" {
			h.Set("WWW-Authenticate", `Bearer realm="nexus"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="nexus", error="invalid_token"`)
		}
	case status == http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	if n := ne.RetryAfterSeconds(); n > 0 {
		h.Set("Retry-After", strconv.Itoa(n))
	}
	detail, fields := ne.Message, ne.Fields
	if status >= 500 {
		s.log.ErrorContext(c.Request().Context(), "request failed",
			slog.String("request_id", RequestIDFrom(c.Request().Context())),
			slog.Int("status", status), slog.Any("error", err))
		detail, fields = genericDetail(status), nil
	}
	title := ne.Code.Title()
	if title == "" {
		title = http.StatusText(status)
	}
	p := gen.Problem{
		Type: problemTypeBase + string(ne.Code), Title: title, Status: status, Detail: detail, Code: string(ne.Code),
		RequestId: RequestIDFrom(c.Request().Context()),
	}
	if len(fields) > 0 {
		p.Errors = toFieldErrors(fields)
	}
	var body any = p
	h.Set(echo.HeaderContentType, problemContentType)
	if oauth {
		body = toOAuthError(p, ne.Code)
		if !contract.NamesMediaType(c.Request().Header, problemContentType) {
			h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON) // RFC 6749 §5.2
		}
	}
	c.Response().WriteHeader(status)
	if err := json.NewEncoder(c.Response()).Encode(body); err != nil {
		s.log.ErrorContext(c.Request().Context(), "write problem", slog.Any("error", err))
	}
}

// asNexus returns the *nexus.Error in err's chain; Echo's errors (the router's 404 and 405, and what the
// generated handlers' binding returns) translated; anything else, internal.
func asNexus(err error) *nexus.Error {
	var ne *nexus.Error
	if errors.As(err, &ne) {
		return ne
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &nexus.Error{Kind: nexus.KindNotFound, Code: nexus.CodeNotFound, Message: "No resource matches the request path."}
		case http.StatusMethodNotAllowed:
			return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeMethodNotAllowed,
				Message: "The resource does not support this method; see the Allow header."}
		case http.StatusRequestEntityTooLarge:
			return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodePayloadTooLarge, Message: "The request body is too large."}
		case http.StatusUnsupportedMediaType:
			return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeUnsupportedMediaType,
				Message: "The request body must be application/json."}
		case http.StatusBadRequest:
			return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeValidationFailed, Message: "The request body is not valid JSON.",
				Fields: []nexus.FieldError{nexus.BodyField("", "must be a valid JSON document")}}
		case http.StatusServiceUnavailable:
			return nexus.Unavailable(err)
		}
	}
	return nexus.Internal(err)
}

func genericDetail(status int) string {
	if status == http.StatusServiceUnavailable {
		return nexus.ErrUnavailable.Message
	}
	return "An unexpected error occurred. Quote the request_id when reporting it."
}

func toFieldErrors(fields []nexus.FieldError) *[]gen.FieldError {
	out := make([]gen.FieldError, len(fields))
	for i, f := range fields {
		name := f.Name
		out[i].Detail = f.Detail
		switch f.In {
		case nexus.InQuery, nexus.InPath:
			out[i].Parameter = &name
		case nexus.InHeader:
			out[i].Header = &name
		default:
			out[i].Pointer = &name
		}
	}
	return &out
}
