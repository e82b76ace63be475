package contract

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Batch bodies (x-nexus-items): the envelope is validated like any body, each item on its own. An item that
// fails is replaced by null in the body the handler binds, and its failing fields (pointers from the body's
// root) are handed to the handler through the request context (ItemErrors), so one bad item never refuses the
// others.

// batchBody is a batch body taken apart: its envelope's members and the raw items of its array.
type batchBody struct {
	raw      []byte // the body as sent
	envelope map[string]json.RawMessage
	items    []json.RawMessage
}

// splitItems takes a batch body apart, answers 413 for more items than the operation takes (before anything is
// validated), and puts in its place, for the envelope's validation, the same body with every item null: the
// items are validated one by one afterwards, so decoding and re-encoding them whole would only cost time. A body
// that cannot be taken apart is left as it is, for validation to describe.
func splitItems(req *http.Request, op *Operation, body []byte) (*batchBody, error) {
	b := batchBody{raw: body}
	if json.Unmarshal(body, &b.envelope) != nil || json.Unmarshal(b.envelope[op.items], &b.items) != nil || b.items == nil {
		return nil, nil
	}
	if len(b.items) > op.maxItems {
		return nil, tooManyItems(op)
	}
	stub := make(map[string]json.RawMessage, len(b.envelope))
	for k, v := range b.envelope {
		stub[k] = v
	}
	stub[op.items] = json.RawMessage("[" + strings.TrimSuffix(strings.Repeat("null,", len(b.items)), ",") + "]")
	raw, err := json.Marshal(stub)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(raw))
	req.ContentLength = int64(len(raw))
	return &b, nil
}

// tooManyItems is the answer to a batch with more items than the operation takes.
func tooManyItems(op *Operation) error {
	return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodePayloadTooLarge,
		Message: fmt.Sprintf("A batch must not have more than %d items.", op.maxItems),
		Fields:  []nexus.FieldError{nexus.BodyField("/"+op.items, fmt.Sprintf("must have at most %d items", op.maxItems))}}
}

// validateItems validates every item of a batch whose envelope passed validation, and gives the handler the
// body with the items it refused replaced by null.
func validateItems(x *exchange, b *batchBody) error {
	op, req := x.op, x.c.Request()
	if b == nil {
		return nexus.Invalid(nexus.BodyField("/"+op.items, "must be an array"))
	}
	items := b.items
	failed := map[int][]nexus.FieldError{}
	for i, raw := range items {
		if fields := itemFields(op, i, raw); len(fields) > 0 {
			failed[i] = fields
			items[i] = json.RawMessage("null")
		}
	}
	body := b.raw // every item valid: the body as sent
	if len(failed) > 0 {
		// The envelope as sent, with the refused items null: concatenated, every part is valid JSON already.
		var buf bytes.Buffer
		buf.Grow(len(b.raw))
		buf.WriteByte('{')
		for k, v := range b.envelope {
			if buf.Len() > 1 {
				buf.WriteByte(',')
			}
			key, _ := json.Marshal(k)
			buf.Write(key)
			buf.WriteByte(':')
			if k != op.items {
				buf.Write(v)
				continue
			}
			buf.WriteByte('[')
			for i, item := range items {
				if i > 0 {
					buf.WriteByte(',')
				}
				buf.Write(item)
			}
			buf.WriteByte(']')
		}
		buf.WriteByte('}')
		body = buf.Bytes()
	}
	if len(failed) > 0 {
		x.items = failed
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	return nil
}

// itemFields validates item i of a batch against the operation's item schema, and returns its failing fields
// (pointers from the body's root), none if it is valid.
func itemFields(op *Operation, i int, raw []byte) []nexus.FieldError {
	prefix := "/" + op.items + "/" + strconv.Itoa(i)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []nexus.FieldError{nexus.BodyField(prefix, "must be a valid JSON value")}
	}
	err := op.itemSchema.VisitJSON(v, openapi3.MultiErrors(), openapi3.WithStringFormatValidators(StringFormats()))
	if err == nil {
		return nil
	}
	var fields []nexus.FieldError
	for _, d := range schemaDetails(err) {
		fields = append(fields, nexus.BodyField(prefix+d.pointer, d.detail))
	}
	if op.rule != nil && op.rule.Check != nil {
		for _, f := range op.rule.Check(raw) {
			fields = append(fields, nexus.BodyField(prefix+f.Name, f.Detail))
		}
	}
	if len(fields) == 0 {
		fields = []nexus.FieldError{nexus.BodyField(prefix, "is invalid")}
	}
	return dedupe(fields)
}
