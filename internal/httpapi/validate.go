package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// validate authenticates and validates every request to an operation of the contract before its handler runs:
// bearer token first (401 before anything about the request is revealed), then body size and media type, then
// kin-openapi's validation of parameters and body, which leaves the validated body for the strict handler to
// bind, so JSON keys that differ only in case never reach a handler.
func (s *Server) validate(next echo.HandlerFunc) echo.HandlerFunc {
	opts := validationOptions()
	return func(c echo.Context) error {
		op, ok := s.ops[c.Request().Method+" "+c.Path()]
		if !ok {
			return next(c)
		}
		params := make(map[string]string, len(c.ParamNames()))
		for i, name := range c.ParamNames() {
			v := c.ParamValues()[i]
			if u, err := url.PathUnescape(v); err == nil {
				v = u
			}
			params[name] = v
		}
		// The user the request is about, for permissions limited to the caller's own record.
		subject := params[op.ownParam]
		var p nexus.Principal
		if op.secured {
			var err error
			if p, err = s.authenticate(c); err != nil {
				return err
			}
			if err := s.limitPrincipal(c.Request().Context(), p); err != nil {
				return err
			}
			c.SetRequest(c.Request().WithContext(nexus.WithPrincipal(c.Request().Context(), p)))
			// The operation's permission is decided before anything about the request is looked at.
			if op.permission != "" {
				if err := nexus.Authorize(p, op.permission, subject); err != nil {
					return err
				}
			}
		}
		var body []byte
		var batch *batchBody
		if op.jsonBody {
			var err error
			if body, err = readBody(c.Request(), op.maxBody); err != nil {
				return err
			}
			// Events, in one pass: an operation with them has no parameters, and nothing below but the
			// validation of the body to do.
			if op.events != nil && len(body) > 0 {
				done := false
				if op.items == "" {
					done = s.decodeEvent(c, op, body)
				} else if done, err = s.decodeEventBatch(c, op, body); err != nil {
					return err
				}
				if done {
					return next(c)
				}
			}
			if op.items != "" {
				if batch, err = splitItems(c.Request(), op, body); err != nil {
					return err
				}
			}
		}
		// Parameters given twice, or whose values are not text: whatever else the schema says about them.
		paramFields := append(repeatedParameters(c.Request(), op), unreadableParameters(c.Request(), op, params)...)
		req := c.Request()
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: op.route, Options: opts}
		if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
			fields := fieldErrors(err)
			if len(fields) == 0 {
				return nexus.Internal(fmt.Errorf("unclassified validation error: %w", err))
			}
			// Rules beyond the schema are reported with the schema's failures, so one answer names every field.
			if check := s.rawChecks[op.route.Operation.OperationID]; check != nil && op.items == "" && len(body) > 0 {
				fields = append(fields, check(body)...)
			}
			return nexus.Invalid(dedupe(append(paramFields, withoutUnreadable(fields, paramFields)...))...)
		}
		if len(paramFields) > 0 {
			return nexus.Invalid(paramFields...)
		}
		if op.items != "" {
			if err := s.validateItems(c, op, batch); err != nil {
				return err
			}
		}
		// Flags that need a permission of their own (include_permissions, include_activity): asking without it is
		// refused, never silently ignored. Their values are valid booleans, given once, by now.
		for name, perm := range op.paramPerms {
			if on, _ := strconv.ParseBool(c.QueryParam(name)); on {
				if err := nexus.Authorize(p, perm, subject); err != nil {
					return err
				}
			}
		}
		return next(c)
	}
}

// authenticate verifies the bearer token of the request.
func (s *Server) authenticate(c echo.Context) (nexus.Principal, error) {
	token := bearerToken(c.Request())
	if token == "" {
		return nexus.Principal{}, nexus.ErrUnauthenticated
	}
	return s.auth.Authenticate(c.Request().Context(), token)
}

// bearerToken returns the request's bearer token, or "".
func bearerToken(req *http.Request) string {
	scheme, token, ok := strings.Cut(req.Header.Get(echo.HeaderAuthorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// repeatedParameters names every single-valued query parameter of the operation that the request gives more
// than once: which of the values counts would otherwise be up to each layer.
func repeatedParameters(req *http.Request, op *operation) []nexus.FieldError {
	var out []nexus.FieldError
	query := req.URL.Query()
	for _, p := range op.route.Operation.Parameters {
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
func unreadableParameters(req *http.Request, op *operation, pathParams map[string]string) []nexus.FieldError {
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
func operationParameters(op *operation) []*openapi3.Parameter {
	var out []*openapi3.Parameter
	for _, ps := range []openapi3.Parameters{op.route.PathItem.Parameters, op.route.Operation.Parameters} {
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

// fieldErrors lists the failing fields of a kin-openapi validation error, in messages of our own that never
// repeat the value sent or dump the schema.
func fieldErrors(err error) []nexus.FieldError {
	var out []nexus.FieldError
	// A direct assertion: a *RequestError unwraps to a MultiError of schema errors, so errors.As would match it.
	if me, ok := err.(openapi3.MultiError); ok {
		for _, e := range me {
			out = append(out, fieldErrors(e)...)
		}
		return dedupe(out)
	}
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return nil
	}
	switch {
	case re.Parameter != nil:
		in := re.Parameter.In
		if in == openapi3.ParameterInCookie {
			in = nexus.InHeader
		}
		details := schemaDetails(re.Err)
		if len(details) == 0 {
			d := "is invalid"
			switch {
			case errors.Is(re.Err, openapi3filter.ErrInvalidRequired) || strings.Contains(re.Reason, "required"):
				d = "is required"
			case re.Parameter.Schema != nil && re.Parameter.Schema.Value.Type.Is("integer"):
				d = "must be an integer"
			case re.Parameter.Schema != nil && re.Parameter.Schema.Value.Type.Is("boolean"):
				d = "must be true or false"
			}
			details = []fieldDetail{{detail: d}}
		}
		for _, d := range details {
			out = append(out, nexus.FieldError{In: in, Name: re.Parameter.Name, Detail: d.detail})
		}
	case re.RequestBody != nil:
		var pe *openapi3filter.ParseError
		switch {
		case errors.As(re.Err, &pe):
			out = append(out, nexus.BodyField("", "must be a valid JSON document"))
		case errors.Is(re.Err, openapi3filter.ErrInvalidRequired) || (re.Err == nil && strings.Contains(re.Reason, "required")):
			out = append(out, nexus.BodyField("", "is required"))
		default:
			details := schemaDetails(re.Err)
			if len(details) == 0 {
				details = []fieldDetail{{detail: "is invalid"}}
			}
			for _, d := range details {
				out = append(out, nexus.BodyField(d.pointer, d.detail))
			}
		}
	}
	return dedupe(out)
}

type fieldDetail struct{ pointer, detail string }

func schemaDetails(err error) []fieldDetail {
	var out []fieldDetail
	if me, ok := err.(openapi3.MultiError); ok {
		for _, e := range me {
			out = append(out, schemaDetails(e)...)
		}
		return out
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		path := se.JSONPointer()
		detail := describe(se)
		// kin-openapi reports an unknown member against its object, naming the member only in the reason.
		if rest, ok := strings.CutPrefix(se.Reason, "property "); ok && se.SchemaField == "properties" {
			if quoted, ok := strings.CutSuffix(rest, " is unsupported"); ok {
				if key, err := strconv.Unquote(quoted); err == nil {
					path, detail = append(path, key), "is not a recognized field"
				}
			}
		}
		out = append(out, fieldDetail{pointer: jsonPointer(path), detail: detail})
	}
	return out
}

func jsonPointer(parts []string) string {
	var b strings.Builder
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(esc.Replace(p))
	}
	return b.String()
}

var formatNames = map[string]string{
	"email":     "a valid email address",
	"uuid":      "a UUID",
	"date-time": "an RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS, optionally a fraction after a dot, then Z or ±HH:MM",
	"date":      "an RFC 3339 date (YYYY-MM-DD)",
}

// describe says what is wrong in terms of the schema only.
func describe(se *openapi3.SchemaError) string {
	sch := se.Schema
	if sch == nil {
		return "is invalid"
	}
	switch se.SchemaField {
	case "required":
		return "is required"
	case "additionalProperties":
		return "is not a recognized field"
	case "type":
		if sch.Type != nil && len(*sch.Type) > 0 {
			t := (*sch.Type)[0]
			if t == "integer" || t == "object" || t == "array" {
				return "must be an " + t
			}
			return "must be a " + t
		}
	case "nullable":
		return "must not be null"
	case "format":
		if name, ok := formatNames[sch.Format]; ok {
			return "must be " + name
		}
		return "must be a valid " + sch.Format
	case "minLength":
		return "must be at least " + plural(int(sch.MinLength), "character") // #nosec G115 -- a limit of the embedded openapi.yaml
	case "maxLength":
		if sch.MaxLength != nil {
			return "must be at most " + plural(int(*sch.MaxLength), "character") // #nosec G115 -- a limit of the embedded openapi.yaml
		}
	case "pattern":
		// A pattern that spells out a format (date-time) or stands for one (x-nexus-pattern-detail) names it, as
		// the format's own failure does; others say what patterns say.
		if name, ok := formatNames[sch.Format]; ok {
			return "must be " + name
		}
		if d, ok := sch.Extensions["x-nexus-pattern-detail"].(string); ok {
			return d
		}
		return "contains characters that are not allowed"
	case "enum":
		vals := make([]string, len(sch.Enum))
		for i, v := range sch.Enum {
			vals[i] = fmt.Sprint(v)
		}
		return "must be one of: " + strings.Join(vals, ", ")
	case "minimum", "exclusiveMinimum":
		if sch.Min != nil {
			return fmt.Sprintf("must be at least %v", *sch.Min)
		}
	case "maximum", "exclusiveMaximum":
		if sch.Max != nil {
			return fmt.Sprintf("must be at most %v", *sch.Max)
		}
	case "minItems":
		return "must have at least " + plural(int(sch.MinItems), "item") // #nosec G115 -- a limit of the embedded openapi.yaml
	case "maxItems":
		if sch.MaxItems != nil {
			return "must have at most " + plural(int(*sch.MaxItems), "item") // #nosec G115 -- a limit of the embedded openapi.yaml
		}
	case "minProperties":
		return "must have at least " + plural(int(sch.MinProps), "member") // #nosec G115 -- a limit of the embedded openapi.yaml
	case "maxProperties":
		if sch.MaxProps != nil {
			return "must have at most " + plural(int(*sch.MaxProps), "member") // #nosec G115 -- a limit of the embedded openapi.yaml
		}
	}
	return "is invalid"
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func dedupe(in []nexus.FieldError) []nexus.FieldError {
	seen := make(map[nexus.FieldError]bool, len(in))
	out := in[:0]
	for _, f := range in {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}
