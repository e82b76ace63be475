package contract

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Operation is one operation of the contract, compiled for the pipeline from the document and its x-nexus-*
// extensions:
//   - x-nexus-permission (operation): what the caller's role must grant; on a boolean query flag, what asking
//     for it needs besides;
//   - x-nexus-own-parameter (operation): the path parameter naming the user the request is about, for
//     permissions limited to the caller's own record;
//   - x-nexus-max-body-bytes (operation): the largest body accepted (default 64 KiB);
//   - x-nexus-rate-limits (operation): the per-IP policies besides "ip" that its requests take (auth_ip);
//   - x-nexus-items (operation): the array member of a batch body whose items are judged one by one;
//   - x-nexus-error-format (operation): "oauth" for the OAuth 2.0 endpoints, whose errors carry the RFC 6749
//     §5.2 members beside the problem's (the HTTP layer's mapper reads OAuthErrors);
//   - x-nexus-rules (schema): the name of the Rule (Config.Rules) of objects of the schema, bodies or items.
type Operation struct {
	Route       *routers.Route  // the operation, with a batch's envelope schema for its body (x-nexus-items)
	Secured     bool            // needs a bearer token (a security requirement names a bearer or OAuth 2.0 scheme)
	MaxBody     int64           // largest accepted request body
	JSONBody    bool            // takes a JSON request body
	FormBody    bool            // takes an application/x-www-form-urlencoded request body
	FormParams  map[string]bool // the parameters of a form body (its schema's properties); others are ignored
	OAuthErrors bool            // x-nexus-error-format: oauth
	Produces    []string        // media types of the successful responses' bodies

	Permission      nexus.Permission            // x-nexus-permission
	OwnParam        string                      // x-nexus-own-parameter
	FlagPermissions map[string]nexus.Permission // query flags with their own x-nexus-permission, by name
	IPPolicies      []string                    // x-nexus-rate-limits

	ruleName string // x-nexus-rules of the body's schema, or of the items' with x-nexus-items
	rule     *Rule

	// x-nexus-items names the array member of a batch body whose items are judged one by one: the route
	// validates the envelope with any items, and the validator checks each item against itemSchema.
	items      string
	itemSchema *openapi3.Schema
	minItems   int
	maxItems   int
	// plainEnvelope: the batch body has no rule but its items array's (a required member, no other member, at
	// least minItems items), which decodeEventBatch then checks itself.
	plainEnvelope bool

	// flat decodes the operation's bodies (or items) in one pass, with the rule's Bind; nil when it cannot.
	flat *flatSchema
}

// ID returns the operationId.
func (o *Operation) ID() string { return o.Route.Operation.OperationID }

// defaultMaxBody is the body limit of operations that do not set x-nexus-max-body-bytes.
const defaultMaxBody = 64 << 10

// Index compiles the operations of spec, by "METHOD /base/echo/:path". The rules that x-nexus-rules names are
// resolved by New.
func Index(spec *openapi3.T, base string) (map[string]*Operation, error) {
	ops := map[string]*Operation{}
	for path, item := range spec.Paths.Map() {
		echoPath := base + pathParam.ReplaceAllString(path, ":$1")
		for method, op := range item.Operations() {
			security := spec.Security
			if op.Security != nil {
				security = *op.Security
			}
			o := &Operation{
				Route:   &routers.Route{Spec: spec, Path: path, PathItem: item, Method: method, Operation: op},
				Secured: bearerSecured(spec, security),
				MaxBody: defaultMaxBody,
			}
			switch v, ok := op.Extensions["x-nexus-error-format"]; {
			case !ok:
			case v == "oauth":
				o.OAuthErrors = true
			default:
				return nil, fmt.Errorf("%s %s: x-nexus-error-format %v is not \"oauth\"", method, path, v)
			}
			if v, ok := op.Extensions["x-nexus-max-body-bytes"].(float64); ok && v > 0 {
				o.MaxBody = int64(v)
			}
			if err := o.readRateLimits(op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			if err := o.readPermissions(op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			if err := o.readItems(op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", method, path, err)
			}
			for code, r := range op.Responses.Map() {
				if strings.HasPrefix(code, "2") && r.Value != nil {
					for mt := range r.Value.Content {
						o.Produces = append(o.Produces, mt)
					}
				}
			}
			sort.Strings(o.Produces)
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				o.JSONBody = op.RequestBody.Value.Content.Get("application/json") != nil
				if mt := op.RequestBody.Value.Content.Get("application/x-www-form-urlencoded"); mt != nil {
					o.FormBody, o.FormParams = true, map[string]bool{}
					if mt.Schema != nil && mt.Schema.Value != nil {
						for name := range mt.Schema.Value.Properties {
							o.FormParams[name] = true
						}
					}
				}
				if o.JSONBody && o.FormBody {
					return nil, fmt.Errorf("%s %s: a request body is JSON or a form, not both", method, path)
				}
			}
			o.readRules(op)
			ops[method+" "+echoPath] = o
		}
	}
	if len(ops) == 0 {
		return nil, fmt.Errorf("the OpenAPI document has no operations")
	}
	return ops, nil
}

// bearerSecured reports whether the security requirements ask for a bearer token: some requirement names an
// HTTP bearer or an OAuth 2.0 scheme. (Client authentication by HTTP Basic at the OAuth endpoints is the
// handler's, and an empty requirement makes none.)
func bearerSecured(spec *openapi3.T, security openapi3.SecurityRequirements) bool {
	for _, req := range security {
		for name := range req {
			ref := spec.Components.SecuritySchemes[name]
			if ref == nil || ref.Value == nil {
				continue
			}
			if s := ref.Value; s.Type == "oauth2" || s.Type == "http" && strings.EqualFold(s.Scheme, "bearer") {
				return true
			}
		}
	}
	return false
}

// readPermissions reads the operation's x-nexus-permission, x-nexus-own-parameter and the x-nexus-permission
// of its query flags. (TestContractConventions checks that every secured operation declares one.)
func (o *Operation) readPermissions(op *openapi3.Operation) error {
	perm, err := permissionExtension(op.Extensions)
	if err != nil {
		return err
	}
	o.Permission = perm
	if v, ok := op.Extensions["x-nexus-own-parameter"]; ok {
		name, _ := v.(string)
		if p := o.Route.PathItem.Parameters.GetByInAndName(openapi3.ParameterInPath, name); p == nil && op.Parameters.GetByInAndName(openapi3.ParameterInPath, name) == nil {
			return fmt.Errorf("x-nexus-own-parameter %q is not a path parameter", name)
		}
		o.OwnParam = name
	}
	for _, p := range op.Parameters {
		perm, err := permissionExtension(p.Value.Extensions)
		if err != nil {
			return fmt.Errorf("parameter %s: %w", p.Value.Name, err)
		}
		if perm == "" {
			continue
		}
		if p.Value.In != openapi3.ParameterInQuery || p.Value.Schema == nil || !p.Value.Schema.Value.Type.Is("boolean") {
			return fmt.Errorf("parameter %s: x-nexus-permission is only for boolean query flags", p.Value.Name)
		}
		if o.FlagPermissions == nil {
			o.FlagPermissions = map[string]nexus.Permission{}
		}
		o.FlagPermissions[p.Value.Name] = perm
	}
	return nil
}

// readItems reads x-nexus-items: the operation's route then validates a copy of the body schema whose array
// accepts any items, and each item is validated on its own against the array's item schema.
func (o *Operation) readItems(op *openapi3.Operation) error {
	v, ok := op.Extensions["x-nexus-items"]
	if !ok {
		return nil
	}
	name, _ := v.(string)
	body := bodySchema(op)
	if body == nil || body.Properties[name] == nil || body.Properties[name].Value.Items == nil || body.Properties[name].Value.MaxItems == nil {
		return fmt.Errorf("x-nexus-items %q is not a bounded array member of the JSON request body", name)
	}
	arr := *body.Properties[name].Value
	o.itemSchema, o.maxItems, o.items = arr.Items.Value, int(*arr.MaxItems), name // #nosec G115 -- a limit of the embedded openapi.yaml
	o.minItems = int(arr.MinItems)                                                // #nosec G115 -- a limit of the embedded openapi.yaml
	o.plainEnvelope = plainEnvelope(body, name)
	// Any item, null too: each is judged alone. Over the limit is 413, decided before validation.
	arr.Items = openapi3.NewSchemaRef("", &openapi3.Schema{Nullable: true})
	arr.MaxItems = nil
	envelope := *body
	envelope.Properties = openapi3.Schemas{}
	for k, p := range body.Properties {
		envelope.Properties[k] = p
	}
	envelope.Properties[name] = openapi3.NewSchemaRef("", &arr)
	rb := *op.RequestBody.Value
	rb.Content = openapi3.NewContentWithJSONSchema(&envelope)
	copied := *op
	copied.RequestBody = &openapi3.RequestBodyRef{Value: &rb}
	route := *o.Route
	route.Operation = &copied
	o.Route = &route
	return nil
}

// readRateLimits reads x-nexus-rate-limits: the per-IP policies, besides "ip", that the operation's requests take.
func (o *Operation) readRateLimits(op *openapi3.Operation) error {
	v, ok := op.Extensions["x-nexus-rate-limits"]
	if !ok {
		return nil
	}
	list, _ := v.([]any)
	for _, item := range list {
		name, _ := item.(string)
		if name != PolicyAuthIP {
			return fmt.Errorf("x-nexus-rate-limits: %v is not a per-IP policy (only %q is)", item, PolicyAuthIP)
		}
		if !slices.Contains(o.IPPolicies, name) {
			o.IPPolicies = append(o.IPPolicies, name)
		}
	}
	if len(list) == 0 {
		return fmt.Errorf("x-nexus-rate-limits must be a non-empty list of policy names")
	}
	return nil
}

// readRules reads the x-nexus-rules of the schema of the operation's JSON body, or of its items with x-nexus-items.
func (o *Operation) readRules(op *openapi3.Operation) {
	schema := o.itemSchema
	if o.items == "" {
		schema = bodySchema(op)
	}
	if schema != nil {
		o.ruleName, _ = schema.Extensions["x-nexus-rules"].(string)
	}
}

// bodySchema returns the schema of the operation's JSON request body, or nil.
func bodySchema(op *openapi3.Operation) *openapi3.Schema {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil
	}
	if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
		return mt.Schema.Value
	}
	return nil
}

// plainEnvelope reports whether body is an object of one member, the array name, which it may require, and with
// no other rule; and whether that array has no rule but its items and their number.
func plainEnvelope(body *openapi3.Schema, name string) bool {
	if !body.Type.Is("object") || len(body.Properties) != 1 || body.AdditionalProperties.Has == nil || *body.AdditionalProperties.Has ||
		len(body.Required) > 1 || len(body.Required) == 1 && body.Required[0] != name {
		return false
	}
	rest := *body
	rest.Type, rest.Properties, rest.Required, rest.AdditionalProperties = nil, nil, nil, openapi3.AdditionalProperties{}
	arr := *body.Properties[name].Value
	if !arr.Type.Is("array") {
		return false
	}
	arr.Type, arr.Items, arr.MinItems, arr.MaxItems = nil, nil, 0, nil
	return onlyAnnotations(rest) && onlyAnnotations(arr)
}

func permissionExtension(ext map[string]any) (nexus.Permission, error) {
	v, ok := ext["x-nexus-permission"]
	if !ok {
		return "", nil
	}
	name, _ := v.(string)
	if !nexus.KnownPermission(nexus.Permission(name)) {
		return "", fmt.Errorf("x-nexus-permission %v is not a known permission", v)
	}
	return nexus.Permission(name), nil
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)
