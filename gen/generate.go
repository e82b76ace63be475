// Package gen holds the code that oapi-codegen generates from openapi.yaml: the models, the Echo strict server
// interface and the embedded specification. Never edit it by hand; run `make generate`.
package gen

import _ "embed" // for OpenAPIYAML

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen --config=config.yaml ../openapi.yaml
//go:generate cp ../openapi.yaml openapi.yaml

// OpenAPIYAML is openapi.yaml byte for byte, as the server serves it.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte
