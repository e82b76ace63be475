package httpapi

import (
	"net/http"
	"strings"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The errors of the OAuth 2.0 endpoints (x-nexus-error-format: oauth) are one body with the members of both
// standards: RFC 6749 §5.2's error and error_description, which OAuth libraries read, and the problem's, which
// this API's clients read; served as application/json, as RFC 6749 requires.

// oauthStatus is the status of an error at an OAuth endpoint: RFC 6749 §5.2 answers 400 for every error of the
// request but invalid_client (401); this API's 401s for tokens (invalid_grant, refresh_token_reused) become 400
// there. The other statuses (403, 406, 413, 415, 429, 5xx) are the problem's.
func oauthStatus(e *nexus.Error, status int) int {
	if status == http.StatusUnauthorized && e.Code != nexus.CodeInvalidClient {
		return http.StatusBadRequest
	}
	return status
}

// oauthErrorCode is the RFC 6749 error code of a problem code.
func oauthErrorCode(c nexus.Code) gen.OAuthErrorError {
	switch c {
	case nexus.CodeInvalidClient:
		return gen.InvalidClient
	case nexus.CodeInvalidGrant, nexus.CodeRefreshTokenReused, nexus.CodeAccountInactive:
		return gen.InvalidGrant
	case nexus.CodeInvalidScope:
		return gen.InvalidScope
	case nexus.CodeUnsupportedGrantType:
		return gen.UnsupportedGrantType
	case nexus.CodeUnauthorizedClient, nexus.CodeInsufficientPermission:
		return gen.UnauthorizedClient
	case nexus.CodeRateLimited, nexus.CodeUnavailable:
		return gen.TemporarilyUnavailable
	case nexus.CodeInternal:
		return gen.ServerError
	}
	return gen.InvalidRequest
}

func toOAuthError(p gen.Problem, code nexus.Code) gen.OAuthError {
	return gen.OAuthError{
		Error: oauthErrorCode(code), ErrorDescription: oauthDescription(p.Detail),
		Type: p.Type, Title: p.Title, Status: p.Status, Detail: p.Detail, Code: p.Code, RequestId: p.RequestId, Errors: p.Errors,
	}
}

// oauthDescription returns text in the characters RFC 6749 §5.2 allows in error_description (printable ASCII
// but '"' and '\'): others become '?', quotes become "'".
func oauthDescription(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r == '\\' || r < 0x20 || r > 0x7e:
			return '?'
		}
		return r
	}, s)
}
