// Package nexus is the shared vocabulary of the service: error kinds and the error type, the authenticated
// Principal and its context helpers, the ID, role and status types, and the strict parsers of the contract's time
// formats. It imports only the standard library.
package nexus

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind classifies an error by what the caller can do about it. The set is closed; the HTTP layer maps each kind
// to one status code.
type Kind uint8

// The kinds of error.
const (
	KindInternal         Kind = iota // a bug or an unexpected failure
	KindInvalid                      // the request is malformed or breaks a rule
	KindUnauthenticated              // the caller is not (or no longer) authenticated
	KindPermissionDenied             // the caller is authenticated but not allowed
	KindNotFound                     // the resource does not exist (or is not visible to the caller)
	KindConflict                     // the request conflicts with the current state
	KindTooManyRequests              // the caller must slow down
	KindUnavailable                  // a dependency is unavailable; retrying later may succeed
	KindUnprocessable                // the request is well-formed but names something that cannot be used
)

// String returns the kind's Go name (KindNotFound), for messages and logs; clients see codes (codes.go), never
// kinds.
func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "KindInvalid"
	case KindUnauthenticated:
		return "KindUnauthenticated"
	case KindPermissionDenied:
		return "KindPermissionDenied"
	case KindNotFound:
		return "KindNotFound"
	case KindConflict:
		return "KindConflict"
	case KindTooManyRequests:
		return "KindTooManyRequests"
	case KindUnavailable:
		return "KindUnavailable"
	case KindUnprocessable:
		return "KindUnprocessable"
	default:
		return "KindInternal"
	}
}

// FieldError names one failing input field: In says where it is (InBody, InQuery, InPath, InHeader) and Name
// is a JSON Pointer into the body ("" for the whole body) or the parameter or header name. Detail never
// repeats the value that was sent.
type FieldError struct {
	In     string
	Name   string
	Detail string
}

// Where a failing field is.
const (
	InBody   = "body"
	InQuery  = "query"
	InPath   = "path"
	InHeader = "header"
)

// BodyField returns a FieldError for the body member at the JSON Pointer pointer.
func BodyField(pointer, detail string) FieldError {
	return FieldError{In: InBody, Name: pointer, Detail: detail}
}

// Error is the one error type: every error the HTTP layer answers with is one. Code is a stable identifier that
// clients may branch on (codes.go); Message is a human-readable sentence safe to show to the caller; RetryAfter,
// when positive, tells the caller when to try again (Retry-After); Header holds response header fields the
// error asks for beyond that (Allow, Accept-Encoding, Connection); Err, if set, is the cause and is never shown
// to the caller.
type Error struct {
	Kind       Kind
	Code       Code
	Message    string
	Fields     []FieldError
	RetryAfter time.Duration
	Header     http.Header
	Err        error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same kind and code, so that a sentinel matches a copy of
// itself that carries fields or a cause.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Code == e.Code
}

// Sentinel errors that callers branch on with errors.Is.
var (
	ErrInvalidCredentials = &Error{Kind: KindUnauthenticated, Code: CodeInvalidCredentials,
		Message: "The email or password is incorrect."}
	ErrInvalidClient = &Error{Kind: KindUnauthenticated, Code: CodeInvalidClient,
		Message: "The client_id is unknown, disabled, or not allowed for this account."}
	ErrInvalidGrant = &Error{Kind: KindUnauthenticated, Code: CodeInvalidGrant,
		Message: "The refresh token is invalid, expired, revoked, or bound to another client or device."}
	ErrRefreshTokenReused = &Error{Kind: KindUnauthenticated, Code: CodeRefreshTokenReused,
		Message: "The refresh token was already used; the session has been revoked. Log in again."}
	ErrUnauthenticated = &Error{Kind: KindUnauthenticated, Code: CodeUnauthenticated,
		Message: "A valid bearer access token is required."}
	ErrAccountInactive = &Error{Kind: KindPermissionDenied, Code: CodeAccountInactive,
		Message: "This account is deactivated. Contact your organization's administrator."}
	ErrNotFound = &Error{Kind: KindNotFound, Code: CodeNotFound,
		Message: "The resource does not exist."}
	ErrConflict = &Error{Kind: KindConflict, Code: CodeConflict,
		Message: "The request conflicts with the current state of the resource."}
	ErrUnavailable = &Error{Kind: KindUnavailable, Code: CodeUnavailable,
		Message: "The service is temporarily unavailable. Retry after the number of seconds in Retry-After."}
)

// Invalid returns a validation error listing every failing field.
func Invalid(fields ...FieldError) *Error {
	return &Error{Kind: KindInvalid, Code: CodeValidationFailed, Message: invalidMessage(len(fields)), Fields: fields}
}

func invalidMessage(n int) string {
	if n == 1 {
		return "The request has 1 invalid field."
	}
	return fmt.Sprintf("The request has %d invalid fields.", n)
}

// Internal wraps an unexpected failure. The cause is logged, never shown to the caller.
func Internal(err error) *Error {
	return &Error{Kind: KindInternal, Code: CodeInternal, Message: "An unexpected error occurred.", Err: err}
}

// Unavailable wraps a failure of a dependency that may succeed when retried.
func Unavailable(err error) *Error {
	e := *ErrUnavailable
	e.Err = err
	return &e
}

// KindOf returns the kind of err: that of the first *Error in its chain, or KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// RateLimited is the error of a request over a rate limit, which may be retried after retryAfter (at least a
// second).
func RateLimited(retryAfter time.Duration) *Error {
	return &Error{Kind: KindTooManyRequests, Code: CodeRateLimited, RetryAfter: max(retryAfter, time.Second),
		Message: "Too many requests. Retry after the number of seconds in Retry-After."}
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up (a client that waits that long may retry), for
// the Retry-After header; 0 when the error says nothing of retrying.
func (e *Error) RetryAfterSeconds() int { return WholeSeconds(e.RetryAfter) }

// WholeSeconds is d in whole seconds, rounded up, never below 0: the unit of the HTTP header fields that count
// time (Retry-After, RateLimit, RateLimit-Policy).
func WholeSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
