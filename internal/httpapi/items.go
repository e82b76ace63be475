package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Batch bodies (x-nexus-items): the envelope is validated like any body, each item on its own. An item that
// fails is replaced by null in the body the handler binds, and its failing fields (pointers from the body's
// root) are handed to the handler through the request context, so one bad item never refuses the others.

const itemErrorsKey ctxKey = 100

// itemErrors returns the failing fields of the batch items the validator refused, by index.
func itemErrors(ctx context.Context) map[int][]nexus.FieldError {
	m, _ := ctx.Value(itemErrorsKey).(map[int][]nexus.FieldError)
	return m
}

// countItems answers 413 for a batch with more items than the operation takes, before anything is validated.
func countItems(req *http.Request, op *operation) error {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var env map[string]json.RawMessage
	if json.Unmarshal(body, &env) != nil {
		return nil // not an object: validation says so
	}
	var items []json.RawMessage
	if json.Unmarshal(env[op.items], &items) != nil {
		return nil
	}
	if len(items) > op.maxItems {
		return &transportError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
			detail: fmt.Sprintf("A batch must not have more than %d items.", op.maxItems),
			fields: []nexus.FieldError{nexus.BodyField("/"+op.items, fmt.Sprintf("must have at most %d items", op.maxItems))}}
	}
	return nil
}

// validateItems validates every item of a batch body that passed envelope validation.
func (s *Server) validateItems(c echo.Context, op *operation) error {
	req := c.Request()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return err
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		return nexus.Invalid(nexus.BodyField("", "must be a valid JSON document"))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(env[op.items], &items); err != nil {
		return nexus.Invalid(nexus.BodyField("/"+op.items, "must be an array"))
	}
	failed := map[int][]nexus.FieldError{}
	prefix := "/" + op.items + "/"
	for i, raw := range items {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			failed[i] = []nexus.FieldError{nexus.BodyField(prefix+strconv.Itoa(i), "must be a valid JSON value")}
			items[i] = json.RawMessage("null")
			continue
		}
		err := op.itemSchema.VisitJSON(v, openapi3.MultiErrors(), openapi3.WithStringFormatValidators(StringFormats()))
		if err == nil {
			continue
		}
		var fields []nexus.FieldError
		for _, d := range schemaDetails(err) {
			fields = append(fields, nexus.BodyField(prefix+strconv.Itoa(i)+d.pointer, d.detail))
		}
		if check := s.rawChecks[op.route.Operation.OperationID]; check != nil {
			for _, f := range check(raw) {
				fields = append(fields, nexus.BodyField(prefix+strconv.Itoa(i)+f.Name, f.Detail))
			}
		}
		if len(fields) == 0 {
			fields = []nexus.FieldError{nexus.BodyField(prefix+strconv.Itoa(i), "is invalid")}
		}
		failed[i] = dedupe(fields)
		items[i] = json.RawMessage("null")
	}
	if len(failed) > 0 {
		rewritten, err := json.Marshal(items)
		if err != nil {
			return err
		}
		env[op.items] = rewritten
		if body, err = json.Marshal(env); err != nil {
			return err
		}
		req = req.WithContext(context.WithValue(req.Context(), itemErrorsKey, failed))
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	c.SetRequest(req)
	return nil
}
