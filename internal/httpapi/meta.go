package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/gen"
)

// specCacheControl lets clients and proxies cache the contract briefly.
var specCacheControl = "public, max-age=300"

// openAPIYAML serves openapi.yaml byte for byte. It stands outside the contract, like /docs: client generators
// cannot read an application/yaml response (openapi-python-client omits it with a warning), and the JSON form is
// in the contract.
func (s *Server) openAPIYAML(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", specCacheControl)
	return c.Blob(http.StatusOK, "application/yaml", gen.OpenAPIYAML)
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
