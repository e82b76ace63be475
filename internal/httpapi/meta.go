package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/nexus-cloud/nexus-core/gen"
)

// specCacheControl lets clients and proxies cache the contract briefly.
var specCacheControl = "public, max-age=300"

// GetOpenApiYaml implements gen.StrictServerInterface.
func (s *Server) GetOpenApiYaml(context.Context, gen.GetOpenApiYamlRequestObject) (gen.GetOpenApiYamlResponseObject, error) {
	return gen.GetOpenApiYaml200ApplicationyamlResponse{
		Body: bytes.NewReader(gen.OpenAPIYAML), ContentLength: int64(len(gen.OpenAPIYAML)),
		Headers: gen.GetOpenApiYaml200ResponseHeaders{CacheControl: &specCacheControl},
	}, nil
}

// GetOpenApiJson implements gen.StrictServerInterface.
func (s *Server) GetOpenApiJson(context.Context, gen.GetOpenApiJsonRequestObject) (gen.GetOpenApiJsonResponseObject, error) {
	return gen.GetOpenApiJson200JSONResponse{Body: s.specJSON,
		Headers: gen.GetOpenApiJson200ResponseHeaders{CacheControl: &specCacheControl}}, nil
}

// specDocument returns the contract as the generated free-form document type.
func specDocument(spec *openapi3.T) (gen.OpenAPIDocument, error) {
	raw, err := json.Marshal(spec)
	if err != nil {
		return gen.OpenAPIDocument{}, fmt.Errorf("marshal the OpenAPI document: %w", err)
	}
	var doc gen.OpenAPIDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		return gen.OpenAPIDocument{}, fmt.Errorf("unmarshal the OpenAPI document: %w", err)
	}
	return doc, nil
}
