package httpapi

import (
	"fmt"
	"net/http"
	"testing"
)

// detailNotUTF8 is what a parameter value or a JSON string that is not UTF-8 is told.
const detailNotUTF8 = "must be valid UTF-8"

// TestParametersNotUTF8: a query or path parameter whose value is not UTF-8 once percent-decoded is 400 naming
// it, with that detail alone (not also "must be a UUID"), on every operation and both databases (PostgreSQL
// would refuse the value as a query argument); a valid non-ASCII value is fine.
func TestParametersNotUTF8(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		userPath := "/v2/users/" + e.admin.ID
		bad := []string{"%FF", "%C0%AF", "%ED%A0%80", "caf%E9", "%E2%82"}
		params := []struct{ path, name, query string }{
			{eventsPath, "event_name", "event_name=%s"},
			{eventsPath, "event_category", "event_category=%s"},
			{eventsPath, "source", "source=%s"},
			{eventsPath, "user_id", "user_id=%s"},
			{eventsPath, "from", "from=%s"},
			{eventsPath, "cursor", "cursor=%s"},
			{eventsPath, "limit", "limit=%s"},
			{"/v2/users", "role", "role=%s"},
			{"/v2/users", "status", "status=%s"},
			{"/v2/users", "limit", "limit=%s"},
			{summaryPath, "event_name", "event_name=%s"},
			{summaryPath, "event_category", "event_category=%s"},
			{summaryPath, "from", "from=%s"},
			{userPath, "include_activity", "include_activity=%s"},
		}
		for _, p := range params {
			for _, v := range bad {
				t.Run(p.path+"?"+fmt.Sprintf(p.query, v), func(t *testing.T) {
					r := e.do("GET", p.path+"?"+fmt.Sprintf(p.query, v), nil, bearer(admin)...)
					expectInvalid(t, r, "?"+p.name)
					onlyNotUTF8(t, r, p.name)
				})
			}
		}
		for _, v := range bad {
			for _, method := range []string{"GET", "PATCH"} {
				t.Run(method+" /v2/users/"+v, func(t *testing.T) {
					var body any
					if method == "PATCH" {
						body = map[string]any{"name": "x"}
					}
					r := e.do(method, "/v2/users/"+v, body, bearer(admin)...)
					expectInvalid(t, r, "?userId")
					onlyNotUTF8(t, r, "userId")
				})
			}
		}
		// Named together with the other failing parameters.
		expectInvalid(t, e.do("GET", eventsPath+"?event_name=%FF&limit=0&from=x", nil, bearer(admin)...), "?event_name", "?limit", "?from")
		// Valid text beyond ASCII is a value like any other.
		for _, path := range []string{eventsPath + "?event_name=caf%C3%A9&source=%F0%9F%98%80", summaryPath + "?event_name=%EF%BF%BD"} {
			if r := e.do("GET", path, nil, bearer(admin)...); r.status != http.StatusOK {
				t.Errorf("%s: %d %s", path, r.status, r.body)
			}
		}
	})
}

// onlyNotUTF8 fails unless the problem's one failing field is the parameter, with detailNotUTF8.
func onlyNotUTF8(t testing.TB, r resp, name string) {
	t.Helper()
	if errs, _ := r.obj(t)["errors"].([]any); len(errs) != 1 {
		t.Errorf("%d failing fields, want 1: %s", len(errs), r.body)
	}
	if d := parameterDetail(t, r, name); d != detailNotUTF8 {
		t.Errorf("detail %q, want %q", d, detailNotUTF8)
	}
}
