package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	nest := func(open, close string, levels int) string {
		return strings.Repeat(open, levels) + strings.Repeat(close, levels)
	}
	objects := func(levels int) string { // {"a":{"a":{}}} is 3 levels
		return strings.Repeat(`{"a":`, levels-1) + "{}" + strings.Repeat("}", levels-1)
	}
	var many strings.Builder // an object past dupMapAt members, then a nested object, then a duplicate
	many.WriteString("{")
	for i := range dupMapAt + 4 {
		many.WriteString(`"k` + strconv.Itoa(i) + `":0,`)
	}
	many.WriteString(`"n":{"k1":1,"k2":2},"k3":1}`)
	// Six levels of 15 members each, more keys than the checker keeps in its array, then a duplicate innermost or,
	// after the inner objects closed, outermost.
	wide := func(inner, outer string) string {
		var b strings.Builder
		for range 6 {
			b.WriteString("{")
			for i := range dupMapAt - 2 {
				b.WriteString(`"k` + strconv.Itoa(i) + `":0,`)
			}
			b.WriteString(`"n":`)
		}
		b.WriteString("{" + inner + "}")
		for range 6 {
			b.WriteString(`}`)
		}
		s := b.String()
		return s[:len(s)-1] + outer + "}"
	}
	cases := []struct {
		in      string
		fault   jsonFault
		pointer string
	}{
		{`{"a":1,"b":[true,false,null,"x",-0.5e+3]}`, jsonOK, ""},
		{" \t\r\n{} \n", jsonOK, ""},
		{`"\u0061\ud800\n\/"`, jsonOK, ""},
		{"\"\xff\x7f\"", jsonOK, ""}, // json.Valid takes invalid UTF-8 and DEL
		{`{"a":{"a":1},"b":{"a":1},"c":[{"a":1},{"a":1}]}`, jsonOK, ""},
		{`{"a":1,"A":2}`, jsonOK, ""}, // case matters here; the validator refuses unknown members
		{many.String(), jsonDuplicate, "/k3"},
		{strings.Replace(many.String(), `"k3":1`, `"k99":1`, 1), jsonOK, ""},

		{wide(`"k0":0`, ``), jsonOK, ""},
		{wide(`"k0":0,"k1":0,"k0":1`, ``), jsonDuplicate, strings.Repeat("/n", 6) + "/k0"},
		{wide(`"k0":0`, `,"k13":1`), jsonDuplicate, "/k13"},
		{wide(`"k0":0`, `,"k14":1`), jsonOK, ""},
		{`{"a":1,"a":2}`, jsonDuplicate, "/a"},
		{`{"a":1,"\u0061":2}`, jsonDuplicate, "/a"},
		{`{"a\/b":1,"a/b":2}`, jsonDuplicate, "/a~1b"},
		{`{"~":1,"\u007e":2}`, jsonDuplicate, "/~0"},
		{"{\"\xff\":1,\"\xfe\":2}", jsonDuplicate, "/\ufffd"}, // both decode to U+FFFD
		{`{"\ud800":1,"\udbff":2}`, jsonDuplicate, "/\ufffd"},
		{`{"a":{"b":1,"b":2}}`, jsonDuplicate, "/a/b"},
		{`[{"x":1},{"x":1,"y":[1,{"z":0,"z":1}]}]`, jsonDuplicate, "/1/y/1/z"},
		{`{"a":1,"a":2,"b":1,"b":2}`, jsonDuplicate, "/a"}, // the first
		{`{"a":1,"a":2,"b":` + nest("[", "]", 40) + `}`, jsonDuplicate, "/a"},
		{`{"a":1,"a":2,` + "}", jsonSyntax, ""}, // a syntax error anywhere wins

		{nest("[", "]", MaxJSONDepth), jsonOK, ""},
		{nest("[", "]", MaxJSONDepth+1), jsonTooDeep, strings.Repeat("/0", MaxJSONDepth)},
		{objects(MaxJSONDepth), jsonOK, ""},
		{objects(MaxJSONDepth + 1), jsonTooDeep, strings.Repeat("/a", MaxJSONDepth)},
		{`[1,2,` + nest("[", "]", MaxJSONDepth) + `]`, jsonTooDeep, "/2" + strings.Repeat("/0", MaxJSONDepth-1)},
		{`[` + nest("[", "]", MaxJSONDepth) + `,{"a":1,"a":2}]`, jsonTooDeep, strings.Repeat("/0", MaxJSONDepth)},
		{`[` + nest("[", "]", MaxJSONDepth) + `,]`, jsonSyntax, ""},
		{nest("[", "]", scanMaxDepth), jsonTooDeep, strings.Repeat("/0", MaxJSONDepth)},
		{nest("[", "]", scanMaxDepth+1), jsonSyntax, ""}, // encoding/json's own limit

		{"", jsonSyntax, ""},
		{" ", jsonSyntax, ""},
		{`{} {}`, jsonSyntax, ""},
		{`{}x`, jsonSyntax, ""},
		{`1 2`, jsonSyntax, ""},
		{`{"a":1}]`, jsonSyntax, ""},
		{`[1,]`, jsonSyntax, ""},
		{`{"a":1,}`, jsonSyntax, ""},
		{`{"a" 1}`, jsonSyntax, ""},
		{`{1:1}`, jsonSyntax, ""},
		{`[1}`, jsonSyntax, ""},
		{`{"a":1]`, jsonSyntax, ""},
		{`01`, jsonSyntax, ""},
		{`-`, jsonSyntax, ""},
		{`1.`, jsonSyntax, ""},
		{`1e`, jsonSyntax, ""},
		{`.5`, jsonSyntax, ""},
		{`+1`, jsonSyntax, ""},
		{`tru`, jsonSyntax, ""},
		{`nulls`, jsonSyntax, ""},
		{`"\x"`, jsonSyntax, ""},
		{`"\u12g4"`, jsonSyntax, ""},
		{"\"a\x01\"", jsonSyntax, ""},
		{`"abc`, jsonSyntax, ""},
		{"\ufeff{}", jsonSyntax, ""},
	}
	for _, c := range cases {
		fault, pointer := checkJSON([]byte(c.in))
		if fault != c.fault || pointer != c.pointer {
			t.Errorf("checkJSON(%.60q) = %d %q, want %d %q", c.in, fault, pointer, c.fault, c.pointer)
		}
		if want := c.fault != jsonSyntax; json.Valid([]byte(c.in)) != want {
			t.Errorf("json.Valid(%.60q) = %v: the case is wrong", c.in, !want)
		}
		if rf, rp := referenceCheck([]byte(c.in)); rf != c.fault || rp != c.pointer {
			t.Errorf("referenceCheck(%.60q) = %d %q, want %d %q", c.in, rf, rp, c.fault, c.pointer)
		}
	}
}

// FuzzJSONCheck compares checkJSON with json.Valid and with referenceCheck, which finds the same faults with
// encoding/json's tokenizer.
//
//	go test -run '^$' -fuzz FuzzJSONCheck -fuzztime 60s ./internal/httpapi
func FuzzJSONCheck(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"\u0061":2}`, `[[[[]]]]`, `{"a":[1,{"b":null}]} `, `"\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fault, pointer := checkJSON(data)
		if valid := json.Valid(data); valid != (fault != jsonSyntax) {
			t.Fatalf("checkJSON(%q) = %d, json.Valid = %v", data, fault, valid)
		}
		if rf, rp := referenceCheck(data); rf != fault || rp != pointer {
			t.Fatalf("checkJSON(%q) = %d %q, referenceCheck = %d %q", data, fault, pointer, rf, rp)
		}
	})
}

// referenceCheck is checkJSON written the slow way, with json.Valid and json.Decoder's tokens.
func referenceCheck(data []byte) (jsonFault, string) {
	if !json.Valid(data) {
		return jsonSyntax, ""
	}
	type level struct {
		object  bool
		wantKey bool
		keys    map[string]bool
		key     string
		index   int
	}
	var stack []*level
	path := func() string {
		var parts []string
		for _, l := range stack {
			if l.object {
				parts = append(parts, l.key)
			} else {
				parts = append(parts, strconv.Itoa(l.index))
			}
		}
		return jsonPointer(parts)
	}
	done := func() { // a value of the innermost level ended
		if len(stack) > 0 {
			if top := stack[len(stack)-1]; top.object {
				top.wantKey = true
			} else {
				top.index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return jsonOK, ""
		}
		if err != nil {
			panic(err) // json.Valid took it
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			done()
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			top, key := stack[n-1], tok.(string)
			top.key, top.wantKey = key, false
			if top.keys[key] {
				return jsonDuplicate, path()
			}
			top.keys[key] = true
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			if len(stack) == MaxJSONDepth {
				return jsonTooDeep, path()
			}
			stack = append(stack, &level{object: d == '{', wantKey: true, keys: map[string]bool{}})
			continue
		}
		done()
	}
}

// BenchmarkCheckJSON compares checkJSON with json.Valid, which it replaces, on a batch of 1,000 events as the
// ingest benchmark sends them (about 270 KB).
//
//	go test -run '^$' -bench CheckJSON -count 5 ./internal/httpapi
func BenchmarkCheckJSON(b *testing.B) {
	g := newEventGen()
	body := []byte(`{"events":[`)
	for i := range batchEvents {
		if i > 0 {
			body = append(body, ',')
		}
		body = g.appendEvent(body)
	}
	body = append(body, "]}"...)
	if fault, _ := checkJSON(body); fault != jsonOK {
		b.Fatalf("fault %d", fault)
	}
	b.Run("checkJSON", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			checkJSON(body)
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			json.Valid(body)
		}
	})
}
