package contract

import (
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/users"
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

// StringFormats are the string formats the contract uses, validated for real (kin-openapi checks only date and
// date-time by default).
func StringFormats() map[string]openapi3.StringFormatValidator {
	return map[string]openapi3.StringFormatValidator{
		"email": openapi3.NewCallbackValidator(func(s string) error {
			if !users.ValidEmail(s) {
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
