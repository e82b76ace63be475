package nexus

// Code is a problem code: a stable snake_case identifier of what went wrong, which clients may branch on. Every
// code the service answers with is defined here, with its title; nowhere else is one spelled out.
type Code string

// The problem codes. Most belong to one kind; CodeValidationFailed and the codes of the HTTP exchange itself
// (media type, size, method) are KindInvalid, and the HTTP layer picks their status from the code.
const (
	CodeValidationFailed       Code = "validation_failed"
	CodeInvalidCredentials     Code = "invalid_credentials" // #nosec G101 -- a problem code, no credential
	CodeInvalidClient          Code = "invalid_client"
	CodeInvalidGrant           Code = "invalid_grant"
	CodeRefreshTokenReused     Code = "refresh_token_reused" // #nosec G101 -- a problem code, no credential
	CodeUnauthenticated        Code = "unauthenticated"
	CodeAccountInactive        Code = "account_inactive"
	CodeInsufficientPermission Code = "insufficient_permission"
	CodeLastAdmin              Code = "last_admin"
	CodeNotFound               Code = "not_found"
	CodeConflict               Code = "conflict"
	CodeUnknownUser            Code = "unknown_user"
	CodeRateLimited            Code = "rate_limited"
	CodeUnavailable            Code = "unavailable"
	CodeInternal               Code = "internal"

	// Codes of the OAuth 2.0 endpoints (RFC 6749 §5.2), besides invalid_client and invalid_grant.
	CodeInvalidScope         Code = "invalid_scope"
	CodeUnsupportedGrantType Code = "unsupported_grant_type"
	CodeUnauthorizedClient   Code = "unauthorized_client"

	// Codes of the HTTP exchange itself.
	CodeNotAcceptable          Code = "not_acceptable"
	CodeMethodNotAllowed       Code = "method_not_allowed"
	CodePayloadTooLarge        Code = "payload_too_large"
	CodeUnsupportedMediaType   Code = "unsupported_media_type"
	CodeRequestHeadersTooLarge Code = "request_headers_too_large"
)

// #nosec G101 -- problem codes and their titles (invalid_credentials, refresh_token_reused), no credentials
var titles = map[Code]string{
	CodeValidationFailed:       "Validation failed",
	CodeInvalidCredentials:     "Invalid credentials",
	CodeInvalidClient:          "Invalid client",
	CodeInvalidGrant:           "Invalid grant",
	CodeRefreshTokenReused:     "Refresh token reused",
	CodeUnauthenticated:        "Unauthenticated",
	CodeAccountInactive:        "Account inactive",
	CodeInsufficientPermission: "Insufficient permission",
	CodeLastAdmin:              "Last admin",
	CodeNotFound:               "Not found",
	CodeConflict:               "Conflict",
	CodeUnknownUser:            "Unknown user",
	CodeRateLimited:            "Too many requests",
	CodeUnavailable:            "Service unavailable",
	CodeInternal:               "Internal server error",
	CodeInvalidScope:           "Invalid scope",
	CodeUnsupportedGrantType:   "Unsupported grant type",
	CodeUnauthorizedClient:     "Unauthorized client",
	CodeNotAcceptable:          "Not acceptable",
	CodeMethodNotAllowed:       "Method not allowed",
	CodePayloadTooLarge:        "Payload too large",
	CodeUnsupportedMediaType:   "Unsupported media type",
	CodeRequestHeadersTooLarge: "Request header fields too large",
}

// Title returns the code's short human-readable summary, the problem's title; "" for a code not defined here.
func (c Code) Title() string { return titles[c] }

// Codes returns every defined code, for tests that hold the contract's list of codes to this one.
func Codes() []Code {
	out := make([]Code, 0, len(titles))
	for c := range titles {
		out = append(out, c)
	}
	return out
}
