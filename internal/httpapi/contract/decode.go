package contract

import (
	"bytes"
	"io"
	"reflect"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/oapi-codegen/runtime"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// The busiest bodies of the contract (events) are decoded by the validator itself, in one pass over the text
// (see flatSchema), when their schema names a Rule with Bind: a body, or each item of a batch, into the value the
// handler binds. What the pass is not sure of takes the usual way, so every answer is the one kin-openapi's
// validation gives: a body wholly, a batch's items one by one (and the whole batch when an item the pass refused
// turns out to be valid).

// Member is a member of a flat object as sent: Text is a string's value, decoded; Raw an object's JSON text.
type Member struct {
	Name string
	Set  bool
	Text string
	Raw  []byte
}

// flatDecoder returns the one-pass decoder of the operation's bodies (or items, with x-nexus-items), or nil when
// they cannot be served so: the operation has parameters (which only kin-openapi validates), its objects are not
// flat, or its batch envelope has rules beyond its items.
func flatDecoder(spec *openapi3.T, op *Operation) *flatSchema {
	r := op.Route
	if len(r.Operation.Parameters) > 0 || len(r.PathItem.Parameters) > 0 || r.Operation.RequestBody == nil {
		return nil
	}
	schema := op.itemSchema
	if op.items == "" {
		schema = bodySchema(r.Operation)
	} else if !op.plainEnvelope {
		return nil
	}
	return compileFlat(spec, schema)
}

// OnePass reports whether the operation's bodies (or items) are decoded in one pass.
func (op *Operation) OnePass() bool { return op.flat != nil }

// Decode decodes one object of the operation (its body, or an item of its batch) in one pass, into the value
// its rule's Bind makes of it; false when the pass is not sure (or the operation has none), and kin-openapi's
// validation must decide. raw must be JSON that checkJSON accepts, as the pipeline's bodies are by then.
func (op *Operation) Decode(raw []byte) (any, bool) {
	if op.flat == nil {
		return nil, false
	}
	vals := op.flat.newMembers()
	if !op.flat.decode(raw, vals) {
		return nil, false
	}
	return op.rule.Bind(vals)
}

// decodeBody decodes a body for the handler in one pass; false when kin-openapi's validation must decide.
func (k *Contract) decodeBody(x *exchange) bool {
	v, ok := x.op.Decode(x.body)
	if !ok {
		return false
	}
	setDecodedBody(x.c, x.body, v)
	return true
}

// decodeBatch decodes a batch for the handler: its envelope, then each item, the items the pass refuses
// validated by kin-openapi (whose failing fields the handler gets, as validateItems gives them). False when the
// envelope is not plain (the usual way validates it) or when an item the pass refused is valid after all. Errors:
// 413 for more items than the operation takes.
func (k *Contract) decodeBatch(x *exchange) (bool, error) {
	op := x.op
	items, ok := splitEnvelope(x.body, op.items)
	switch {
	case !ok || len(items) < op.minItems:
		return false, nil
	case len(items) > op.maxItems:
		return false, tooManyItems(op)
	}
	values := make([]any, len(items))
	var failed map[int][]nexus.FieldError
	vals := op.flat.newMembers() // one buffer for every item: Bind keeps nothing of it
	for i, raw := range items {
		if op.flat.decode(raw, vals) {
			if v, ok := op.rule.Bind(vals); ok {
				values[i] = v
				continue
			}
		}
		fields := itemFields(op, i, raw)
		if len(fields) == 0 {
			return false, nil
		}
		if failed == nil {
			failed = map[int][]nexus.FieldError{}
		}
		failed[i] = fields
	}
	x.items = failed
	setDecodedBody(x.c, x.body, op.rule.Batch(values))
	return true, nil
}

// splitEnvelope returns the items of a body that is an object with one member, the array named items, or false.
func splitEnvelope(body []byte, items string) ([][]byte, bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	name, end, ok := jsonText(body, skipSpace(body, i+1))
	if !ok || name != items {
		return nil, false
	}
	if i = skipSpace(body, end); i >= len(body) || body[i] != ':' {
		return nil, false
	}
	if i = skipSpace(body, i+1); i >= len(body) || body[i] != '[' {
		return nil, false
	}
	out := [][]byte{}
	if i = skipSpace(body, i+1); i < len(body) && body[i] == ']' {
		i++
	} else {
		for {
			end, _, ok := skipValue(body, i)
			if !ok {
				return nil, false
			}
			out = append(out, body[i:end])
			if i = skipSpace(body, end); i < len(body) && body[i] == ',' {
				i = skipSpace(body, i+1)
				continue
			}
			if i < len(body) && body[i] == ']' {
				i++
				break
			}
			return nil, false
		}
	}
	if i = skipSpace(body, i); i >= len(body) || body[i] != '}' || skipSpace(body, i+1) != len(body) {
		return nil, false
	}
	return out, true
}

// decodedBody is a request body that the validator has decoded for the handler already.
type decodedBody struct {
	io.Reader
	value any // a pointer to the body, of the type the handler binds
}

func (decodedBody) Close() error { return nil }

func setDecodedBody(c echo.Context, body []byte, value any) {
	req := c.Request()
	req.Body = decodedBody{Reader: bytes.NewReader(body), value: value}
	req.ContentLength = int64(len(body))
}

// Binder binds the bodies of the strict handlers: a body the validator decoded, as it is; any other as the
// generated handlers bind with Echo's DefaultBinder (the value kin-openapi validated, else the body decoded
// again). The generated handlers call it for the body only.
type Binder struct{ echo.DefaultBinder }

// Bind implements echo.Binder.
func (b *Binder) Bind(i any, c echo.Context) error {
	switch body := c.Request().Body.(type) {
	case decodedBody:
		if dst, src := reflect.ValueOf(i), reflect.ValueOf(body.value); dst.Type() == src.Type() {
			dst.Elem().Set(src.Elem())
			return nil
		}
	case interface{ ValidatedValue() any }:
		if runtime.BindJSONValue(body.ValidatedValue(), i) == nil {
			return nil
		}
	}
	return b.BindBody(c, i)
}
