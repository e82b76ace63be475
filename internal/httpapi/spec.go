package httpapi

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// LoadSpec returns the OpenAPI document embedded in the binary, validated. It loads the byte-exact copy of
// openapi.yaml: oapi-codegen's own embedded spec has its operationIds rewritten (login → Login).
func LoadSpec() (*openapi3.T, error) {
	spec, err := openapi3.NewLoader().LoadFromData(gen.OpenAPIYAML)
	if err != nil {
		return nil, fmt.Errorf("load embedded OpenAPI document: %w", err)
	}
	spec.SetStringFormatValidators(StringFormats())
	if err := spec.Validate(openapi3.NewLoader().Context, openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("embedded OpenAPI document is invalid: %w", err)
	}
	return spec, nil
}

// emailPattern accepts what a mail system would: a dot-atom local part of RFC 5322 atext (which includes "`") and
// a domain of LDH labels with at least one dot.
var emailPattern = regexp.MustCompile("^" + atext + `+(\.` + atext + `+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$`)

const atext = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"

// StringFormats are the string formats the contract uses, validated for real (kin-openapi checks only date and
// date-time by default).
func StringFormats() map[string]openapi3.StringFormatValidator {
	return map[string]openapi3.StringFormatValidator{
		"email": openapi3.NewCallbackValidator(func(s string) error {
			at := strings.LastIndexByte(s, '@')
			if len(s) > 254 || at < 1 || at > 64 || !emailPattern.MatchString(s) {
				return fmt.Errorf("not an email address")
			}
			return nil
		}),
		"uuid": openapi3.NewCallbackValidator(func(s string) error {
			if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
				return fmt.Errorf("not a UUID")
			}
			return nil
		}),
		"password": openapi3.NewCallbackValidator(func(string) error { return nil }),
		// RFC 3339 strictly, by the parser the services use too. kin-openapi's own checks accept what Go's parser
		// refuses (a leap second, February 30th), which the handler's binder would then report as a malformed
		// body; Go's parser accepts what RFC 3339 refuses (a comma before the fraction, an offset of +24:00).
		"date-time": openapi3.NewCallbackValidator(func(s string) error {
			_, err := nexus.ParseTime(s)
			return err
		}),
		"date": openapi3.NewCallbackValidator(func(s string) error {
			_, err := nexus.ParseDate(s)
			return err
		}),
	}
}

// operation is one operation of the contract, ready for the validator.
type operation struct {
	route    *routers.Route
	secured  bool     // needs a bearer token
	maxBody  int64    // largest accepted request body
	jsonBody bool     // takes a JSON request body
	produces []string // media types of the successful responses' bodies

	permission nexus.Permission            // x-nexus-permission: what the caller's role must grant
	ownParam   string                      // x-nexus-own-parameter: the path parameter naming the subject user
	paramPerms map[string]nexus.Permission // query flags with their own x-nexus-permission, by name

	// x-nexus-items names the array member of a batch body whose items are judged one by one: the route
	// validates the envelope with any items, and the validator checks each item against itemSchema.
	items      string
	itemSchema *openapi3.Schema
	minItems   int
	maxItems   int
	// plainEnvelope: the batch body has no rule but its items array's (a required member, no other member, at
	// least minItems items), which decodeEventBatch then checks itself.
	plainEnvelope bool

	// events decodes the operation's events in one pass (see eventDecoder); nil for other operations.
	events *flatSchema
}

// defaultMaxBody is the body limit of operations that do not set x-nexus-max-body-bytes.
const defaultMaxBody = 64 << 10

// indexOperations maps "METHOD /base/echo/:path" to each operation of spec.
func indexOperations(spec *openapi3.T, base string) (map[string]*operation, error) {
	ops := map[string]*operation{}
	for path, item := range spec.Paths.Map() {
		echoPath := base + pathParam.ReplaceAllString(path, ":$1")
		for method, op := range item.Operations() {
			security := spec.Security
			if op.Security != nil {
				security = *op.Security
			}
			o := &operation{
				route:   &routers.Route{Spec: spec, Path: path, PathItem: item, Method: method, Operation: op},
				secured: len(security) > 0,
				maxBody: defaultMaxBody,
			}
			if v, ok := op.Extensions["x-nexus-max-body-bytes"].(float64); ok && v > 0 {
				o.maxBody = int64(v)
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
						o.produces = append(o.produces, mt)
					}
				}
			}
			sort.Strings(o.produces)
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				o.jsonBody = op.RequestBody.Value.Content.Get("application/json") != nil
			}
			ops[method+" "+echoPath] = o
		}
	}
	if len(ops) == 0 {
		return nil, fmt.Errorf("the OpenAPI document has no operations")
	}
	return ops, nil
}

// readPermissions reads the operation's x-nexus-permission, x-nexus-own-parameter and the x-nexus-permission
// of its query flags. (TestContractConventions checks that every secured operation declares one.)
func (o *operation) readPermissions(op *openapi3.Operation) error {
	perm, err := permissionExtension(op.Extensions)
	if err != nil {
		return err
	}
	o.permission = perm
	if v, ok := op.Extensions["x-nexus-own-parameter"]; ok {
		name, _ := v.(string)
		if p := o.route.PathItem.Parameters.GetByInAndName(openapi3.ParameterInPath, name); p == nil && op.Parameters.GetByInAndName(openapi3.ParameterInPath, name) == nil {
			return fmt.Errorf("x-nexus-own-parameter %q is not a path parameter", name)
		}
		o.ownParam = name
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
		if o.paramPerms == nil {
			o.paramPerms = map[string]nexus.Permission{}
		}
		o.paramPerms[p.Value.Name] = perm
	}
	return nil
}

// readItems reads x-nexus-items: the operation's route then validates a copy of the body schema whose array
// accepts any items, and each item is validated on its own against the array's item schema.
func (o *operation) readItems(op *openapi3.Operation) error {
	v, ok := op.Extensions["x-nexus-items"]
	if !ok {
		return nil
	}
	name, _ := v.(string)
	var body *openapi3.Schema
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		if mt := op.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
			body = mt.Schema.Value
		}
	}
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
	route := *o.route
	route.Operation = &copied
	o.route = &route
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

// validationOptions are the kin-openapi options of every request validation.
func validationOptions() *openapi3filter.Options {
	o := &openapi3filter.Options{
		MultiError:         true,
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, // authentication runs before validation
		KeepValidatedValue: true,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{
			openapi3.WithStringFormatValidators(StringFormats()),
		},
	}
	return o
}
