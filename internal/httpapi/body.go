package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// readBody reads the whole body up to limit bytes (checked while reading, not only from Content-Length) and
// checks its media type, then puts it back for validation and binding.
func readBody(req *http.Request, limit int64) ([]byte, error) {
	tooLarge := &transportError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
		detail: fmt.Sprintf("The request body must not exceed %d bytes.", limit)}
	if req.ContentLength > limit {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, &transportError{status: http.StatusBadRequest, code: "validation_failed",
			detail: "The request body could not be read.", fields: []nexus.FieldError{nexus.BodyField("", "could not be read")}}
	}
	if int64(len(body)) > limit {
		return nil, tooLarge
	}
	if ct := req.Header.Get(echo.HeaderContentType); len(body) > 0 || ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != echo.MIMEApplicationJSON {
			return nil, &transportError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
				detail: "The request body must be application/json.",
				fields: []nexus.FieldError{{In: nexus.InHeader, Name: "Content-Type", Detail: "must be application/json"}}}
		}
	}
	// One JSON value and nothing after it: kin-openapi's decoder would ignore trailing data.
	if len(body) > 0 && !json.Valid(body) {
		return nil, nexus.Invalid(nexus.BodyField("", "must be a valid JSON document"))
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	return body, nil
}
