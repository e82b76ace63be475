package contract

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// validate checks the request's parameters and body against the operation's schema with kin-openapi, which
// leaves the validated body for the strict handler to bind, so JSON keys that differ only in case never reach a
// handler. A body whose schema has a one-pass decoder (decode.go) is decoded instead, unless the pass is not sure;
// a batch's items (x-nexus-items) are validated one by one (items.go). One answer names every failing field:
// the parameters', the schema's, and the operation rule's (Rule.Check).
func (k *Contract) validate(x *exchange) error {
	op, c := x.op, x.c
	var batch *batchBody
	if len(x.body) > 0 {
		// The one pass: an operation with it has no parameters, and nothing but its body to validate.
		if op.flat != nil {
			done := false
			if op.items == "" {
				done = k.decodeBody(x)
			} else {
				var err error
				if done, err = k.decodeBatch(x); err != nil {
					return err
				}
			}
			if done {
				return nil
			}
		}
		if op.items != "" {
			var err error
			if batch, err = splitItems(c.Request(), op, x.body); err != nil {
				return err
			}
		}
	}
	// Parameters given twice, or whose values are not text: whatever else the schema says about them.
	paramFields := append(repeatedParameters(c.Request(), op), unreadableParameters(c.Request(), op, x.params)...)
	req := c.Request()
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: x.params, Route: op.Route, Options: k.opts}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		fields := fieldErrors(err)
		if len(fields) == 0 {
			return nexus.Internal(fmt.Errorf("unclassified validation error: %w", err))
		}
		// Rules beyond the schema are reported with the schema's failures, so one answer names every field.
		if op.rule != nil && op.rule.Check != nil && op.items == "" && len(x.body) > 0 {
			fields = append(fields, op.rule.Check(x.body)...)
		}
		return nexus.Invalid(dedupe(append(paramFields, withoutUnreadable(fields, paramFields)...))...)
	}
	if len(paramFields) > 0 {
		return nexus.Invalid(paramFields...)
	}
	if op.items != "" && op.JSONBody {
		return validateItems(x, batch)
	}
	return nil
}

// repeatedParameters names every single-valued query parameter of the operation that the request gives more
// than once: which of the values counts would otherwise be up to each layer.
func repeatedParameters(req *http.Request, op *Operation) []nexus.FieldError {
	var out []nexus.FieldError
	query := req.URL.Query()
	for _, p := range op.Route.Operation.Parameters {
		v := p.Value
		if v == nil || v.In != openapi3.ParameterInQuery || (v.Schema != nil && v.Schema.Value.Type.Is("array")) {
			continue
		}
		if len(query[v.Name]) > 1 {
			out = append(out, nexus.FieldError{In: nexus.InQuery, Name: v.Name, Detail: "must be given at most once"})
		}
	}
	return out
}

// notUTF8 is the detail of a parameter whose value, percent-decoded, is not UTF-8.
const notUTF8 = "must be valid UTF-8"

// unreadableParameters names every query and path parameter of the operation whose value, percent-decoded, is not
// valid UTF-8 (%FF, an overlong %C0%AF, an encoded surrogate %ED%A0%80). Such a value is no text: it matches no
// stored name, SQLite would compare it as bytes and PostgreSQL refuses it as a query argument; so it is refused
// here, naming the parameter, for every operation alike. pathParams are the decoded path parameters.
func unreadableParameters(req *http.Request, op *Operation, pathParams map[string]string) []nexus.FieldError {
	var out []nexus.FieldError
	var query url.Values
	for _, p := range operationParameters(op) {
		var in string
		var values []string
		switch p.In {
		case openapi3.ParameterInQuery:
			if query == nil {
				query = req.URL.Query()
			}
			in, values = nexus.InQuery, query[p.Name]
		case openapi3.ParameterInPath:
			in, values = nexus.InPath, []string{pathParams[p.Name]}
		default:
			continue
		}
		if slices.ContainsFunc(values, func(v string) bool { return !utf8.ValidString(v) }) {
			out = append(out, nexus.FieldError{In: in, Name: p.Name, Detail: notUTF8})
		}
	}
	return out
}

// operationParameters returns the parameters of the operation and of its path.
func operationParameters(op *Operation) []*openapi3.Parameter {
	var out []*openapi3.Parameter
	for _, ps := range []openapi3.Parameters{op.Route.PathItem.Parameters, op.Route.Operation.Parameters} {
		for _, p := range ps {
			if p != nil && p.Value != nil {
				out = append(out, p.Value)
			}
		}
	}
	return out
}

// withoutUnreadable drops from the schema's failures those of parameters whose values are not UTF-8: what the
// schema says about them ("must be a UUID", "must be one of") adds nothing.
func withoutUnreadable(fields, paramFields []nexus.FieldError) []nexus.FieldError {
	out := fields[:0]
	for _, f := range fields {
		if !slices.ContainsFunc(paramFields, func(p nexus.FieldError) bool {
			return p.Detail == notUTF8 && p.In == f.In && p.Name == f.Name
		}) {
			out = append(out, f)
		}
	}
	return out
}
