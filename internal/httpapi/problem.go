package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

const (
	problemContentType = "application/problem+json"
	problemTypeBase    = "https://api.nexus-cloud.com/problems/"
	retryAfterSeconds  = 5
)

// transportError is an error of the HTTP exchange itself (route, method, media type, size) rather than of the
// domain.
type transportError struct {
	status int
	code   string
	detail string
	fields []nexus.FieldError

	retryAfter int // seconds, sent as Retry-After when positive
}

func (e *transportError) Error() string { return e.code + ": " + e.detail }

// #nosec G101 -- problem codes and their titles (invalid_credentials, refresh_token_reused), no credentials
var titles = map[string]string{
	"validation_failed":       "Validation failed",
	"invalid_credentials":     "Invalid credentials",
	"invalid_client":          "Invalid client",
	"invalid_grant":           "Invalid grant",
	"refresh_token_reused":    "Refresh token reused",
	"unauthenticated":         "Unauthenticated",
	"account_inactive":        "Account inactive",
	"insufficient_permission": "Insufficient permission",
	"last_admin":              "Last admin",
	"not_found":               "Not found",
	"not_acceptable":          "Not acceptable",
	"method_not_allowed":      "Method not allowed",
	"conflict":                "Conflict",
	"unknown_user":            "Unknown user",
	"payload_too_large":       "Payload too large",
	"unsupported_media_type":  "Unsupported media type",
	"unavailable":             "Service unavailable",
	"rate_limited":            "Too many requests",
	"internal":                "Internal server error",

	"request_headers_too_large": "Request header fields too large",
}

func statusOf(k nexus.Kind) int {
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
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.log.ErrorContext(c.Request().Context(), "error after response was committed",
			slog.String("request_id", RequestIDFrom(c.Request().Context())), slog.Any("error", err))
		return
	}
	status, code, detail, fields := classify(err)
	h := c.Response().Header()
	switch {
	case status == http.StatusUnauthorized && code == nexus.ErrUnauthenticated.Code:
		if c.Request().Header.Get(echo.HeaderAuthorization) == "" {
			h.Set("WWW-Authenticate", `Bearer realm="nexus"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="nexus", error="invalid_token"`)
		}
	case status == http.StatusServiceUnavailable:
		h.Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	var te *transportError
	if errors.As(err, &te) && te.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(te.retryAfter))
	}
	if status >= 500 {
		s.log.ErrorContext(c.Request().Context(), "request failed",
			slog.String("request_id", RequestIDFrom(c.Request().Context())),
			slog.Int("status", status), slog.Any("error", err))
	}
	title, ok := titles[code]
	if !ok {
		title = http.StatusText(status)
	}
	p := gen.Problem{
		Type: problemTypeBase + code, Title: title, Status: status, Detail: detail, Code: code,
		RequestId: RequestIDFrom(c.Request().Context()),
	}
	if len(fields) > 0 {
		p.Errors = toFieldErrors(fields)
	}
	h.Set(echo.HeaderContentType, problemContentType)
	c.Response().WriteHeader(status)
	if err := json.NewEncoder(c.Response()).Encode(p); err != nil {
		s.log.ErrorContext(c.Request().Context(), "write problem", slog.Any("error", err))
	}
}

// classify maps an error to status, code, a detail safe to show, and failing fields.
func classify(err error) (int, string, string, []nexus.FieldError) {
	var te *transportError
	var ne *nexus.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &te):
		return te.status, te.code, te.detail, te.fields
	case errors.As(err, &ne):
		status := statusOf(ne.Kind)
		if status >= 500 {
			return status, ne.Code, genericDetail(status), nil
		}
		return status, ne.Code, ne.Message, ne.Fields
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return he.Code, "not_found", "No resource matches the request path.", nil
		case http.StatusMethodNotAllowed:
			return he.Code, "method_not_allowed", "The resource does not support this method; see the Allow header.", nil
		case http.StatusRequestEntityTooLarge:
			return he.Code, "payload_too_large", "The request body is too large.", nil
		case http.StatusUnsupportedMediaType:
			return he.Code, "unsupported_media_type", "The request body must be application/json.", nil
		case http.StatusBadRequest:
			return he.Code, "validation_failed", "The request body is not valid JSON.",
				[]nexus.FieldError{nexus.BodyField("", "must be a valid JSON document")}
		case http.StatusServiceUnavailable:
			return he.Code, "unavailable", genericDetail(he.Code), nil
		}
	}
	return http.StatusInternalServerError, "internal", genericDetail(http.StatusInternalServerError), nil
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
