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
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
)

// eventOps returns the contract's operations that take events, trackEvent and trackEventBatch, compiled with
// the server's event rule.
func eventOps(t testing.TB) (*openapi3.T, *contract.Operation, *contract.Operation) {
	t.Helper()
	spec, err := contract.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	k, err := contract.New(spec, contract.Config{Base: BasePath, Rules: map[string]contract.Rule{"event": eventRule(nil)}})
	if err != nil {
		t.Fatal(err)
	}
	ops := k.Operations()
	single, batch := ops["POST "+BasePath+"/analytics/events"], ops["POST "+BasePath+"/analytics/events/batch"]
	if single == nil || batch == nil || !single.OnePass() || !batch.OnePass() {
		t.Fatal("the contract has no trackEvent or trackEventBatch decoded in one pass")
	}
	return spec, single, batch
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
	schema := spec.Components.Schemas["EventRequest"].Value
	opts := []openapi3.SchemaValidationOption{openapi3.VisitAsRequest(), openapi3.MultiErrors(), openapi3.WithStringFormatValidators(contract.StringFormats())}
	for _, s := range eventSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"event_name":"a","event_category":"b","properties":` + object(255) + `}`))
	f.Add([]byte(`{"event_name":"a","event_category":"b","properties":` + object(256) + `}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !contract.WellFormed(raw) {
			return // refused before
		}
		v, ok := single.Decode(raw)
		if !ok {
			return // kin-openapi decides
		}
		got := *v.(*gen.EventRequest)
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		var tree any
		if err := d.Decode(&tree); err != nil {
			t.Fatalf("decode %q: %v", raw, err)
		}
		if err := schema.VisitJSON(tree, opts...); err != nil {
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
		if err := runtime.BindJSONValue(tree, &bound); err != nil {
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
	_, single, _ := eventOps(t)
	decodes := func(s string) bool {
		_, ok := single.Decode([]byte(s))
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
