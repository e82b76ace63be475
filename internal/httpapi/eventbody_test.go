package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"github.com/oapi-codegen/runtime"

	"github.com/nexus-cloud/nexus-core/gen"
)

// eventOps returns the operations of the contract that take events: trackEvent and trackEventBatch.
func eventOps(t testing.TB) (*openapi3.T, *operation, *operation) {
	t.Helper()
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	ops, err := indexOperations(spec, BasePath)
	if err != nil {
		t.Fatal(err)
	}
	single, batch := ops["POST "+BasePath+"/analytics/events"], ops["POST "+BasePath+"/analytics/events/batch"]
	if single == nil || batch == nil {
		t.Fatal("the contract has no trackEvent or trackEventBatch")
	}
	return spec, single, batch
}

// TestEventDecoderServes checks that the one-pass decoder serves both event operations: a change of the contract
// that it does not understand turns it off silently (every request still validated, by kin-openapi), so this
// test says so.
func TestEventDecoderServes(t *testing.T) {
	spec, single, batch := eventOps(t)
	for _, op := range []*operation{single, batch} {
		if eventDecoder(spec, op) == nil {
			t.Errorf("%s: no one-pass event decoder", op.route.Operation.OperationID)
		}
	}
	// And no other operation gets one.
	ops, _ := indexOperations(spec, BasePath)
	for key, op := range ops {
		if op != nil && eventDecoder(spec, op) != nil && op.route.Operation.OperationID != "trackEvent" && op.route.Operation.OperationID != "trackEventBatch" {
			t.Errorf("%s has a one-pass event decoder", key)
		}
	}
}

// eventSeeds are event bodies of every shape: valid ones the decoder takes, and ones it must hand over.
var eventSeeds = []string{
	`{"event_name":"signup","event_category":"onboarding"}`,
	`{"event_id":"0193a5c2-7d1e-7b3a-9c4f-2e8d6a1b5f70","event_name":"page_view","event_category":"navigation","timestamp":"2026-11-25T08:59:00.123Z","source":"web","properties":{"path":"/pricing","seats":12,"trial":false}}`,
	` { "event_name" : "a" , "event_category" : "b" , "properties" : { } } `,
	`{"event_name":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/","event_category":"\u4e2d","user_id":"0193A5C2-7D1E-7B3A-9C4F-2E8D6A1B5F70"}`,
	"{\"event_name\":\"café 😀\",\"event_category\":\"x\"}",
	`{"event_name":"a","event_category":"b","timestamp":"2026-11-25T09:14:03+01:00"}`,
	`{"event_name":"a","event_category":"b","timestamp":"2026-11-25T09:14:03.123456789123Z"}`,
	`{"event_name":"a","event_category":"b","timestamp":"2026-11-25t09:14:03Z"}`,
	`{"event_name":"a","event_category":"b","timestamp":"2026-02-30T09:14:03Z"}`,
	`{"event_name":"a","event_category":"b","timestamp":"2026-11-25T23:59:60Z"}`,
	`{"event_name":"","event_category":"b"}`,
	`{"event_name":"   ","event_category":"b"}`,
	`{"event_name":"a\u0000","event_category":"b"}`,
	`{"event_name":"a\n","event_category":"b"}`,
	`{"event_name":"` + strings.Repeat("x", 128) + `","event_category":"b"}`,
	`{"event_name":"` + strings.Repeat("é", 128) + `","event_category":"b"}`,
	`{"event_name":"` + strings.Repeat("x", 129) + `","event_category":"b"}`,
	`{"event_name":"a"}`,
	`{"event_name":"a","event_category":"b","extra":1}`,
	`{"event_name":"a","event_category":"b","Event_Name":"c"}`,
	`{"event_name":"a","event_category":"b","source":null}`,
	`{"event_name":"a","event_category":"b","source":5}`,
	`{"event_name":"a","event_category":"b","properties":[1]}`,
	`{"event_name":"a","event_category":"b","properties":"x"}`,
	`{"event_name":"a","event_category":"b","event_id":"not-a-uuid"}`,
	`{"event_name":"a","event_category":"b","event_id":"{0193a5c2-7d1e-7b3a-9c4f-2e8d6a1b5f70}"}`,
	`{"event_name":"a","event_category":"b","event_id":"urn:uuid:0193a5c2-7d1e-7b3a-9c4f-2e8d6a1b5f70"}`,
	`{"event_name":"a","event_category":"b","properties":{"s":"{\"k\":1}","n":[1,{"a":"b"}],"o":{"p":{"q":{"r":{}}}}}}`,
	`{"\u0065vent_name":"a","event_category":"b"}`,
	`{"event_name":"a","event_category":"b","user_id":"0193a5c2-7d1e-7b3a-9c4f-2e8d6a1b5f70","properties":{"k":"\u2028"}}`,
	`[]`,
	`"text"`,
}

func FuzzEventDecoder(f *testing.F) {
	spec, single, _ := eventOps(f)
	dec := eventDecoder(spec, single)
	schema := spec.Components.Schemas["EventRequest"].Value
	opts := []openapi3.SchemaValidationOption{openapi3.VisitAsRequest(), openapi3.MultiErrors(), openapi3.WithStringFormatValidators(StringFormats())}
	for _, s := range eventSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"event_name":"a","event_category":"b","properties":` + object(255) + `}`))
	f.Add([]byte(`{"event_name":"a","event_category":"b","properties":` + object(256) + `}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if fault, _ := checkJSON(raw); fault != jsonOK {
			return // refused before
		}
		vals := make([]flatValue, len(dec.members))
		if !dec.decode(raw, vals) {
			return // kin-openapi decides
		}
		got, ok := toEventRequest(dec, vals)
		if !ok {
			return
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("decode %q: %v", raw, err)
		}
		if err := schema.VisitJSON(v, opts...); err != nil {
			t.Fatalf("decoded %q, which kin-openapi refuses: %v", raw, err)
		}
		// As a batch's item was bound: encoding/json over the item's text.
		var want gen.EventRequest
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("unmarshal %q: %v", raw, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("decoded %q (-encoding/json +one pass):\n%s", raw, diff)
		}
		// As a single event was bound: from the value kin-openapi validated (properties re-encoded).
		var bound gen.EventRequest
		if err := runtime.BindJSONValue(v, &bound); err != nil {
			t.Fatalf("bind %q: %v", raw, err)
		}
		if (bound.Properties == nil) != (got.Properties == nil) {
			t.Fatalf("decoded %q: properties %v, bound %v", raw, got.Properties, bound.Properties)
		}
		if got.Properties != nil {
			var a, b any
			_ = json.Unmarshal(*got.Properties, &a)
			_ = json.Unmarshal(*bound.Properties, &b)
			if diff := cmp.Diff(b, a); diff != "" {
				t.Fatalf("decoded %q: properties (-bound +one pass):\n%s", raw, diff)
			}
			bound.Properties = got.Properties
		}
		if diff := cmp.Diff(bound, got); diff != "" {
			t.Fatalf("decoded %q (-bound +one pass):\n%s", raw, diff)
		}
	})
}

// object returns a JSON object of n members.
func object(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `` + string(rune('a'+i/26)) + `":1`)
	}
	b.WriteByte('}')
	return b.String()
}

// TestEventDecoderTakes checks that the one pass takes the usual events, rather than handing them all to
// kin-openapi (which FuzzEventDecoder alone would not notice), and hands over those kin-openapi refuses.
func TestEventDecoderTakes(t *testing.T) {
	spec, single, _ := eventOps(t)
	dec := eventDecoder(spec, single)
	decodes := func(s string) bool {
		vals := make([]flatValue, len(dec.members))
		if !dec.decode([]byte(s), vals) {
			return false
		}
		_, ok := toEventRequest(dec, vals)
		return ok
	}
	for _, s := range []string{eventSeeds[0], eventSeeds[1], eventSeeds[2], eventSeeds[3], eventSeeds[4], eventSeeds[5], eventSeeds[6],
		eventSeeds[14], eventSeeds[15], eventSeeds[27], eventSeeds[28], eventSeeds[29]} {
		if !decodes(s) {
			t.Errorf("the one pass hands over %.100s", s)
		}
	}
	for _, s := range []string{eventSeeds[7], eventSeeds[8], eventSeeds[9], eventSeeds[10], eventSeeds[11], eventSeeds[12], eventSeeds[13],
		eventSeeds[16], eventSeeds[17], eventSeeds[18], eventSeeds[19], eventSeeds[20], eventSeeds[21], eventSeeds[22], eventSeeds[23],
		eventSeeds[24], eventSeeds[25], eventSeeds[26], eventSeeds[30], eventSeeds[31],
		`{"event_name":"a","event_category":"b","properties":` + object(256) + `}`} {
		if decodes(s) {
			t.Errorf("the one pass takes %.100s", s)
		}
	}
}

// TestAcceptedTexts checks the memo of accepted texts: a text is found only once added, and the memo is
// per member (a name accepted is not thereby an accepted category).
func TestAcceptedTexts(t *testing.T) {
	spec, single, _ := eventOps(t)
	dec := eventDecoder(spec, single)
	name := dec.members[dec.byName["event_name"]]
	if name.accepted == nil || dec.members[dec.byName["event_id"]].accepted != nil {
		t.Fatal("event_name has no memo, or event_id (a uuid) has one")
	}
	if name.accepted.has("signup") {
		t.Fatal("an empty memo has a text")
	}
	vals := make([]flatValue, len(dec.members))
	if !dec.decode([]byte(`{"event_name":"signup","event_category":"onboarding"}`), vals) {
		t.Fatal("a valid event refused")
	}
	if !name.accepted.has("signup") || name.accepted.has("onboarding") {
		t.Error("the memo of event_name does not have exactly the name accepted")
	}
	// A category the schema refuses stays refused, whatever the names accepted.
	if dec.decode([]byte(`{"event_name":"signup","event_category":""}`), vals) {
		t.Error("an empty category accepted")
	}
}
