// Package gen holds the code that oapi-codegen generates from openapi.yaml: the models, the Echo strict server
// interface and the embedded specification. Never edit it by hand; run `make generate`.
package gen

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen --config=config.yaml ../openapi.yaml
