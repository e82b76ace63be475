package httpapi

import (
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestContractConventions checks the conventions of openapi.yaml that integrators' generators depend on and that
// no linter expresses: every operation has a unique camelCase operationId, exactly one declared tag, a summary, a
// description, and documents 500; secured operations declare x-nexus-permission; request bodies are named, closed components with examples; response bodies
// are named components (never inline, never allOf over a closed schema); every response carries X-Request-Id.
func TestContractConventions(t *testing.T) {
	// Secured operations that every authenticated user may call, whatever the role; every other secured
	// operation names its permission.
	anyAuthenticatedUser := map[string]bool{"logout": true}
	strictOnce.Do(loadStrictSpec)
	if strictErr != nil {
		t.Fatal(strictErr)
	}
	// Read the document again: the strict copy has its response schemas closed.
	spec, err := openapi3.NewLoader().LoadFromFile("../../openapi.yaml")
	must(t, err)
	camel := regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)
	tags := map[string]bool{}
	for _, tag := range spec.Tags {
		tags[tag.Name] = true
		if tag.Description == "" {
			t.Errorf("tag %s has no description", tag.Name)
		}
	}
	ids := map[string]string{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			if !camel.MatchString(op.OperationID) {
				t.Errorf("%s: operationId %q is not camelCase", where, op.OperationID)
			}
			if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %q also names %s", where, op.OperationID, other)
			}
			ids[op.OperationID] = where
			if len(op.Tags) != 1 || !tags[op.Tags[0]] {
				t.Errorf("%s: tags %v, want exactly one declared tag", where, op.Tags)
			}
			if op.Summary == "" || op.Description == "" {
				t.Errorf("%s: summary or description missing", where)
			}
			secured := spec.Security
			if op.Security != nil {
				secured = *op.Security
			}
			// Client authentication at the OAuth endpoints (HTTP Basic, or credentials in the body) is no bearer
			// token: those operations need no permission.
			bearer := false
			for _, req := range secured {
				_, user := req["bearerAuth"]
				_, service := req["oauth2"]
				bearer = bearer || user || service
			}
			if _, ok := op.Extensions["x-nexus-permission"]; bearer && !ok && !anyAuthenticatedUser[op.OperationID] {
				t.Errorf("%s: secured operation declares no x-nexus-permission", where)
			}
			if op.Responses.Value("500") == nil {
				t.Errorf("%s: 500 not documented", where)
			}
			if rb := op.RequestBody; rb != nil {
				for ct, mt := range rb.Value.Content {
					s := mt.Schema
					if s.Ref == "" || !strings.HasPrefix(s.Ref, "#/components/schemas/") {
						t.Errorf("%s: request body %s is not a named component", where, ct)
						continue
					}
					// RFC 6749 §3.2: the OAuth endpoints ignore parameters they do not know.
					if ct != "application/x-www-form-urlencoded" && (s.Value.AdditionalProperties.Has == nil || *s.Value.AdditionalProperties.Has) {
						t.Errorf("%s: request schema %s does not set additionalProperties: false", where, s.Ref)
					}
					if len(mt.Examples) == 0 && mt.Example == nil {
						t.Errorf("%s: request body %s has no example", where, ct)
					}
				}
			}
			for code, r := range op.Responses.Map() {
				if r.Value.Headers["X-Request-Id"] == nil {
					t.Errorf("%s %s: no X-Request-Id header", where, code)
				}
				for ct, mt := range r.Value.Content {
					if mt.Schema.Ref == "" {
						t.Errorf("%s %s %s: inline response schema; name it in components", where, code, ct)
					} else if len(mt.Schema.Value.AllOf) > 0 {
						t.Errorf("%s %s %s: allOf in a response schema", where, code, ct)
					}
				}
			}
			for _, p := range op.Parameters {
				if p.Value.Example == nil && len(p.Value.Examples) == 0 && (p.Value.Schema == nil || p.Value.Schema.Value.Example == nil) {
					t.Errorf("%s: parameter %s has no example", where, p.Value.Name)
				}
			}
		}
	}
}
