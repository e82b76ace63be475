package httpapi

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"slices"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/oapi-codegen/runtime"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Event bodies are the busiest of the contract, so the validator decodes them itself, in one pass over the text
// (see flatSchema): a single event's body, and each item of a batch, into the gen.EventRequest the handler
// receives. What the pass is not sure of takes the usual way, so every answer is the one kin-openapi's
// validation gives: a single event's body wholly, a batch's items one by one (and the whole batch when an item
// the pass refused turns out to be valid).

// eventMembers are the members of gen.EventRequest that toEventRequest sets: the one pass serves an operation
// only while the contract's EventRequest has exactly these.
var eventMembers = []string{"event_id", "event_name", "event_category", "timestamp", "properties", "user_id", "source"}

// eventDecoder returns the one-pass decoder of the operation's events (its body's, or its items' with
// x-nexus-items), or nil when the operation takes no events or cannot be served so: it has parameters (which
// only kin-openapi validates), its events are not the contract's flat EventRequest of eventMembers, or its batch
// envelope has rules beyond its items.
func eventDecoder(spec *openapi3.T, op *operation) *flatSchema {
	event := spec.Components.Schemas["EventRequest"]
	if event == nil || len(op.route.Operation.Parameters) > 0 || len(op.route.PathItem.Parameters) > 0 || op.route.Operation.RequestBody == nil {
		return nil
	}
	schema := op.itemSchema
	if op.items == "" {
		schema = nil
		if mt := op.route.Operation.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
			schema = mt.Schema.Value
		}
	} else if !op.plainEnvelope {
		return nil
	}
	if schema != event.Value {
		return nil
	}
	f := compileFlat(spec, schema)
	if f == nil {
		return nil
	}
	names := make([]string, len(f.members))
	for i, m := range f.members {
		names[i] = m.name
	}
	slices.Sort(names)
	if !slices.Equal(names, slices.Sorted(slices.Values(eventMembers))) {
		return nil
	}
	return f
}

// toEventRequest makes the event of a flat object's members; false if one does not convert as the binder would
// convert it (which a value the schema accepts always does).
func toEventRequest(f *flatSchema, vals []flatValue) (gen.EventRequest, bool) {
	var ev gen.EventRequest
	id := func(text string) (*openapi_types.UUID, bool) {
		u, err := uuid.Parse(text)
		return &u, err == nil
	}
	for k, m := range f.members {
		v := vals[k]
		if !v.set {
			continue
		}
		ok := true
		switch m.name {
		case "event_id":
			ev.EventId, ok = id(v.text)
		case "user_id":
			ev.UserId, ok = id(v.text)
		case "event_name":
			ev.EventName = v.text
		case "event_category":
			ev.EventCategory = v.text
		case "source":
			src := v.text
			ev.Source = &src
		case "timestamp":
			var t time.Time
			ok = t.UnmarshalText([]byte(v.text)) == nil
			ev.Timestamp = &t
		case "properties":
			props := gen.EventProperties(v.raw)
			ev.Properties = &props
		default:
			ok = false
		}
		if !ok {
			return gen.EventRequest{}, false
		}
	}
	return ev, true
}

// decodeEvent decodes a single event's body for the handler; false when kin-openapi's validation must decide.
func (s *Server) decodeEvent(c echo.Context, op *operation, body []byte) bool {
	vals := make([]flatValue, len(op.events.members))
	if !op.events.decode(body, vals) {
		return false
	}
	ev, ok := toEventRequest(op.events, vals)
	if !ok {
		return false
	}
	setDecodedBody(c, body, &ev)
	return true
}

// decodeEventBatch decodes a batch of events for the handler: its envelope, then each item, the items the pass
// refuses validated by kin-openapi (whose failing fields the handler gets, as validateItems gives them). False
// when the envelope is not plain (the usual way validates it) or when an item the pass refused is valid after
// all. Errors: 413 for more items than the operation takes.
func (s *Server) decodeEventBatch(c echo.Context, op *operation, body []byte) (bool, error) {
	items, ok := splitEnvelope(body, op.items)
	switch {
	case !ok || len(items) < op.minItems:
		return false, nil
	case len(items) > op.maxItems:
		return false, tooManyItems(op)
	}
	batch := &gen.EventBatch{Events: make([]gen.EventRequest, len(items))}
	var failed map[int][]nexus.FieldError
	vals := make([]flatValue, len(op.events.members))
	for i, raw := range items {
		if op.events.decode(raw, vals) {
			if ev, ok := toEventRequest(op.events, vals); ok {
				batch.Events[i] = ev
				continue
			}
		}
		fields := s.itemFields(op, i, raw)
		if len(fields) == 0 {
			return false, nil
		}
		if failed == nil {
			failed = map[int][]nexus.FieldError{}
		}
		failed[i] = fields
	}
	if failed != nil {
		c.SetRequest(c.Request().WithContext(context.WithValue(c.Request().Context(), itemErrorsKey, failed)))
	}
	setDecodedBody(c, body, batch)
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

// binder binds the bodies of the strict handlers: a body the validator decoded, as it is; any other as the
// generated handlers bind with Echo's DefaultBinder (the value kin-openapi validated, else the body decoded
// again). The generated handlers call it for the body only.
type binder struct{ echo.DefaultBinder }

// Bind implements echo.Binder.
func (b *binder) Bind(i any, c echo.Context) error {
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
