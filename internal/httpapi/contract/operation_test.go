package contract

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestExtensionDeclarations checks that the contract refuses to start on a document whose x-nexus-* declarations
// it cannot enforce, rather than leaving an operation open.
func TestExtensionDeclarations(t *testing.T) {
	cases := []struct {
		name  string
		apply func(spec *openapi3.T)
	}{
		{"unknown permission", func(spec *openapi3.T) {
			spec.Paths.Find("/users/{userId}").Get.Extensions["x-nexus-permission"] = "users:fly"
		}},
		{"own form as permission", func(spec *openapi3.T) {
			spec.Paths.Find("/users/{userId}").Get.Extensions["x-nexus-permission"] = "users:read:own"
		}},
		{"own parameter that is not a path parameter", func(spec *openapi3.T) {
			spec.Paths.Find("/users/{userId}").Get.Extensions["x-nexus-own-parameter"] = "user"
		}},
		{"permission on a non-boolean parameter", func(spec *openapi3.T) {
			spec.Paths.Find("/users").Get.Parameters.GetByInAndName("query", "status").Extensions =
				map[string]any{"x-nexus-permission": "users:read"}
		}},
		{"rate limit that is not per IP", func(spec *openapi3.T) {
			spec.Paths.Find("/auth/login").Post.Extensions["x-nexus-rate-limits"] = []any{"principal"}
		}},
		{"error format that is not oauth", func(spec *openapi3.T) {
			spec.Paths.Find("/auth/token").Post.Extensions["x-nexus-error-format"] = "problem"
		}},
		{"rate limits that are no list", func(spec *openapi3.T) {
			spec.Paths.Find("/auth/login").Post.Extensions["x-nexus-rate-limits"] = "auth_ip"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec, err := openapi3.NewLoader().LoadFromFile("../../../openapi.yaml")
			must(t, err)
			c.apply(spec)
			if _, err := Index(spec, base); err == nil {
				t.Fatal("Index accepted the declaration")
			}
		})
	}
	spec, err := openapi3.NewLoader().LoadFromFile("../../../openapi.yaml")
	must(t, err)
	ops, err := Index(spec, base)
	must(t, err)
	if get := ops["GET /v2/users/:userId"]; get.Permission != "users:read" || get.OwnParam != "userId" ||
		get.FlagPermissions["include_activity"] != "users:read_activity" || get.FlagPermissions["include_permissions"] != "users:read_permissions" {
		t.Fatalf("getUser declarations read as %+v", get)
	}
	for key, op := range ops {
		oauth := op.ID() == "issueToken" || op.ID() == "revokeToken" || op.ID() == "introspectToken"
		if op.OAuthErrors != oauth || op.FormBody != oauth || oauth && op.Secured {
			t.Errorf("%s: x-nexus-error-format, form body or security read as %v, %v, %v", key, op.OAuthErrors, op.FormBody, op.Secured)
		}
		auth := op.ID() == "login" || op.ID() == "refreshToken" || op.OAuthErrors
		if got := len(op.IPPolicies) == 1 && op.IPPolicies[0] == PolicyAuthIP; got != auth {
			t.Errorf("%s: x-nexus-rate-limits read as %v", key, op.IPPolicies)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
