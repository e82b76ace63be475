package contract

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

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
