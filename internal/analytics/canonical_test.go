package analytics

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// canonicalSeeds are properties objects of every shape canonicalFast handles or hands over.
var canonicalSeeds = []string{
	`{}`,
	` { } `,
	`{"plan":"pro","seats":5,"referrer":"newsletter"}`,
	`{"b":1,"a":2,"c":{"z":[1,2,{"y":null,"x":true}],"a":false}}`,
	`{"path":"/pricing","referrer":"https://www.example.com/blog/launch","plan":"team","seats":12,"trial":false}`,
	`{"n":[-0,0.5,1e3,1E+3,-1.25e-7,12345678901234567890123,1.0,100]}`,
	`{"s":"\u00e9\u4e2d\ud83d\ude00 \" \\ \/ \b \f \n \r \t \u0001 \u001f \u007f <>& \u2028 \u2029"}`,
	"{\"raw\":\"é中😀 \u2028 \u2029 \x7f\"}",
	`{"\u0062":1,"b\n":2,"a":3}`,
	`{"\u0061":1,"b\n":2,"a":3}`,
	`{"a\u0000b":1}`,
	`{"a":"x\u0000"}`,
	`{"a":1,"a":2}`,
	`{"b":1,"a":1,"b":2}`,
	`{"lone":"\ud800"}`,
	`{"lone":"\udc00x"}`,
	"{\"bad\":\"\xff\"}",
	`{"deep":{"a":{"b":{"c":{"d":1}}}}}`,
	`{"deeper":{"a":{"b":{"c":{"d":{"e":1}}}}}}`,
	`{"arr":[[[[1]]]]}`,
	`{"arr":[[[[[1]]]]]}`,
	`[1,2]`,
	`"text"`,
	`{"a":1} trailing`,
	`{"a":1,}`,
	`{"a" 1}`,
	`{"a":01}`,
	`{"a":tru}`,
	`{"\u00e9":1,"e":2,"z":3,"é":4}`,
	`{"U+2028 in a key \u2028":1}`,
	`{"<script>":"&amp;"}`,
}

func FuzzCanonicalProperties(f *testing.F) {
	for _, s := range canonicalSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(object(256, "1")))
	f.Add([]byte(object(255, "1")))
	f.Add([]byte(`{"big":"` + strings.Repeat("x", MaxPropertiesBytes) + `"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := canonicalFast(raw)
		if !ok {
			return // canonicalProperties decides
		}
		want, fields := canonicalProperties(raw)
		if len(fields) > 0 {
			t.Fatalf("canonicalFast(%q) = %q, but canonicalProperties refuses it: %v", raw, fast, fields)
		}
		if !bytes.Equal(fast, want) {
			t.Fatalf("canonicalFast(%q)\n = %q\nwant %q", raw, fast, want)
		}
	})
}

// TestCanonicalFastHandles checks that the one-pass form serves the usual objects, rather than handing every
// object to canonicalProperties (which FuzzCanonicalProperties alone would not notice), and hands over each
// object with a problem.
func TestCanonicalFastHandles(t *testing.T) {
	for _, s := range []string{canonicalSeeds[0], canonicalSeeds[2], canonicalSeeds[3], canonicalSeeds[4], canonicalSeeds[5],
		canonicalSeeds[6], canonicalSeeds[7], canonicalSeeds[8], canonicalSeeds[17], canonicalSeeds[19], object(255, "1")} {
		if _, ok := canonicalFast([]byte(s)); !ok {
			t.Errorf("canonicalFast(%.80q) hands it over", s)
		}
	}
	for _, s := range []string{canonicalSeeds[9], `{"a\u0000b":1}`, `{"a":"x\u0000"}`, `{"a":1,"a":2}`, `{"b":1,"a":1,"b":2}`,
		`{"lone":"\ud800"}`, "{\"bad\":\"\xff\"}", canonicalSeeds[18], canonicalSeeds[20], `[1,2]`, `{"a":1} trailing`, object(256, "1"),
		`{"big":"` + strings.Repeat("x", MaxPropertiesBytes) + `"}`} {
		if out, ok := canonicalFast([]byte(s)); ok {
			t.Errorf("canonicalFast(%.80q) = %.80q, want it handed over", s, out)
		}
	}
}

// TestStoredFormsUnchanged pins the canonical properties and the fingerprint of one event to the values every
// earlier version stored: a retry of an event stored before an upgrade must still be its duplicate, not a
// conflict.
func TestStoredFormsUnchanged(t *testing.T) {
	at := time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC)
	in := Input{EventID: testEvent, Name: "click", Category: "ui", Timestamp: &at,
		Properties: []byte(`{"b":{"d":"x","c":[1,2]},"a":1}`), UserID: otherUser, Source: "web"}
	ev, err := prepare(principal(nexus.RoleAdmin), in, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(ev.Properties), `{"a":1,"b":{"c":[1,2],"d":"x"}}`; got != want {
		t.Errorf("properties = %s, want %s", got, want)
	}
	// sha256("click\0ui\02026-03-09T08:00:00Z\0<user>\0web\0<properties>")
	if got, want := ev.Fingerprint, "8f21dc3891293153ad87894fa473daa1adc5718bd374954827534788afbe55d1"; got != want {
		t.Errorf("fingerprint = %s, want %s", got, want)
	}
}
