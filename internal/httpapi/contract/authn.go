package contract

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// authenticate verifies the bearer token of a request to a secured operation, and puts its principal into the
// request context, where the handlers find it (nexus.PrincipalFrom). 401 before anything about the request is
// looked at.
func (k *Contract) authenticate(x *exchange) error {
	if !x.op.Secured {
		return nil
	}
	req := x.c.Request()
	token := bearerToken(req)
	if token == "" {
		return nexus.ErrUnauthenticated
	}
	p, err := k.auth.Authenticate(req.Context(), token)
	if err != nil {
		return err
	}
	x.p = p
	x.c.SetRequest(req.WithContext(nexus.WithPrincipal(req.Context(), p)))
	return nil
}

// bearerToken returns the request's bearer token, or "".
func bearerToken(req *http.Request) string {
	scheme, token, ok := strings.Cut(req.Header.Get(echo.HeaderAuthorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// authorize decides the operation's permission (x-nexus-permission), for the user the request is about where
// the permission may be limited to the caller's own record (x-nexus-own-parameter), before anything else about
// the request is looked at: 403.
func (k *Contract) authorize(x *exchange) error {
	if !x.op.Secured || x.op.Permission == "" {
		return nil
	}
	return nexus.Authorize(x.p, x.op.Permission, x.subject)
}

// flagRequests refuses a query flag that needs a permission of its own (x-nexus-permission on a boolean query
// parameter: include_permissions, include_activity) when the caller lacks it: asking without it is refused,
// never silently ignored. The flags' values are valid booleans, given once, by now.
func (k *Contract) flagRequests(x *exchange) error {
	for name, perm := range x.op.FlagPermissions {
		if on, _ := strconv.ParseBool(x.c.QueryParam(name)); on {
			if err := nexus.Authorize(x.p, perm, x.subject); err != nil {
				return err
			}
		}
	}
	return nil
}
