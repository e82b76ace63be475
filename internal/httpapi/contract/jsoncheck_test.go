package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/google/uuid"
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
		{`"\u0061\n\/"`, jsonOK, ""},
		{"\"\x7f\"", jsonOK, ""}, // json.Valid takes DEL
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
		{"{\"\ufffd\":1,\"\\ufffd\":2}", jsonDuplicate, "/\ufffd"}, // U+FFFD itself is a character like any other
		{`{"\ud83d\ude00":1,"😀":2}`, jsonDuplicate, "/😀"},
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

		// Text that is not UTF-8, in a value (its pointer) or a member name (its object's pointer).
		{"\"\xff\"", jsonBadUTF8, ""},
		{"{\"a\":\"x\xffy\"}", jsonBadUTF8, "/a"},
		{"[1,\"\xc0\xaf\"]", jsonBadUTF8, "/1"},                 // an overlong "/"
		{"{\"a\":[\"\xed\xa0\x80\"]}", jsonBadUTF8, "/a/0"},     // an encoded surrogate
		{"{\"a\":\"\xe2\x82\"}", jsonBadUTF8, "/a"},             // cut short by the quote
		{"{\"a\":\"\x80\"}", jsonBadUTF8, "/a"},                 // a continuation byte alone
		{"{\"a\":\"\xf4\x90\x80\x80\"}", jsonBadUTF8, "/a"},     // beyond U+10FFFF
		{"{\"a\":\"\xf8\x88\x80\x80\x80\"}", jsonBadUTF8, "/a"}, // a five-byte form
		{"{\"a\":{\"\xff\":1}}", jsonNameBadUTF8, "/a"},
		{"{\"\xff\":1,\"\xfe\":2}", jsonNameBadUTF8, ""}, // before it could be a duplicate
		{"{\"é\":\"ü€😀\ufffd\"}", jsonOK, ""},
		{"{\"a\":\"\xef\xbf\xbd\"}", jsonOK, ""}, // U+FFFD as UTF-8
		{"{\"a\":\"\xff\"", jsonSyntax, ""},      // not closed: the syntax error wins
		{"{\"a\":\"\xff\",}", jsonSyntax, ""},
		{"[\"\xff\",\"\\u12g4\"]", jsonSyntax, ""},

		// Escaped surrogates: a pair is a character, a half alone is a fault.
		{`"\ud83d\ude00"`, jsonOK, ""},
		{`"\uD83D\uDE00"`, jsonOK, ""},
		{`"\udbff\udfff"`, jsonOK, ""},
		{`"\ud800"`, jsonSurrogate, ""},
		{`{"a":"\udc00"}`, jsonSurrogate, "/a"},
		{`{"a":"\ud800x"}`, jsonSurrogate, "/a"},
		{`{"a":"\ud800\n"}`, jsonSurrogate, "/a"},
		{`{"a":"\ud800\u0041"}`, jsonSurrogate, "/a"},
		{`{"a":"\ud800\ud800\udc00"}`, jsonSurrogate, "/a"},
		{`{"a":"\ude00\ud83d"}`, jsonSurrogate, "/a"}, // the halves in the wrong order
		{`{"a":"x\\ud800"}`, jsonOK, ""},              // an escaped backslash, then text
		{`{"a":["ok","\udfff"]}`, jsonSurrogate, "/a/1"},
		{`{"a":{"\ud800":1}}`, jsonNameSurrogate, "/a"},
		{`{"\ud800":1,"\udbff":2}`, jsonNameSurrogate, ""},
		{`{"a":"\ud800\u12g4"}`, jsonSyntax, ""},
		{`{"a":"\ud800`, jsonSyntax, ""},
		{"{\"a\":\"\xff\\ud800\"}", jsonBadUTF8, "/a"}, // the first fault of a string
		{"{\"a\":\"\\ud800\xff\"}", jsonSurrogate, "/a"},

		// Numbers beyond a double; underflow to zero is fine.
		{`1e400`, jsonNumberRange, ""},
		{`{"a":[-1e400]}`, jsonNumberRange, "/a/0"},
		{`{"a":1E+309}`, jsonNumberRange, "/a"},
		{`{"a":1.7976931348623159e308}`, jsonNumberRange, "/a"}, // rounds to Inf
		{`{"a":179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792}`, jsonNumberRange, "/a"},
		{`{"a":0.00000000000000000000000000000000000000000000000001e359}`, jsonNumberRange, "/a"},
		{`{"a":1e99999999999999999999999}`, jsonNumberRange, "/a"},
		{`{"a":1.7976931348623157e308}`, jsonOK, ""},
		{`{"a":-1.7976931348623157e308}`, jsonOK, ""},
		{`{"a":179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368}`, jsonOK, ""},
		{`{"a":1e308,"b":1e-400,"c":-1e-99999999999999999999,"d":0e999999,"e":0.000e400,"f":4.9e-324,"g":1e-325}`, jsonOK, ""},
		{`{"a":0.00000000000000000000000000000000000000000000000001e358}`, jsonOK, ""},
		{`{"a":1e400,"a":1}`, jsonNumberRange, "/a"}, // the first fault in document order
		{`{"a":1,"a":1e400}`, jsonDuplicate, "/a"},
		{`{"a":1e400,"b":1e}`, jsonSyntax, ""},
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
// encoding/json's tokenizer, utf8.DecodeRune, utf16.DecodeRune and strconv.ParseFloat.
//
//	go test -run '^$' -fuzz FuzzJSONCheck -fuzztime 60s ./internal/httpapi/contract
func FuzzJSONCheck(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"\u0061":2}`, `[[[[]]]]`, `{"a":[1,{"b":null}]} `, `"\ud800"`,
		"{\"a\":\"\xc0\xaf\"}", "{\"\xed\xa0\x80\":1}", `{"a":["\ud83d\ude00","\udc00"]}`, `[1e400,-1e-400,1.7976931348623157e308]`} {
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

// referenceCheck is checkJSON written the slow way, with json.Valid and json.Decoder's tokens, each string checked
// as sent (its bytes between the decoder's offsets) by referenceString and each number by strconv.
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
	dec.UseNumber()
	for {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return jsonOK, ""
		}
		if err != nil {
			panic(err) // json.Valid took it
		}
		raw := bytes.TrimLeft(data[before:dec.InputOffset()], " \t\r\n,:")
		var sf jsonFault
		if _, ok := tok.(string); ok {
			sf = referenceString(raw)
		}
		if num, ok := tok.(json.Number); ok {
			if f, _ := strconv.ParseFloat(string(num), 64); math.IsInf(f, 0) {
				sf = jsonNumberRange
			}
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			done()
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if sf != jsonOK { // at the object: the path without its current member
				stack = stack[:n-1]
				p := path()
				if sf == jsonBadUTF8 {
					return jsonNameBadUTF8, p
				}
				return jsonNameSurrogate, p
			}
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
		if sf != jsonOK {
			return sf, path()
		}
		done()
	}
}

// referenceString returns jsonBadUTF8 or jsonSurrogate for the first fault of a string token as sent, quotes
// included, that json.Valid accepts.
func referenceString(raw []byte) jsonFault {
	s := raw[1 : len(raw)-1]
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				return jsonBadUTF8
			}
			i += n
			continue
		}
		if s[i+1] != 'u' {
			i += 2
			continue
		}
		unit := func(at int) rune {
			v, err := strconv.ParseUint(string(s[at+2:at+6]), 16, 16)
			if err != nil {
				panic(err) // json.Valid took it
			}
			return rune(v)
		}
		r := unit(i)
		i += 6
		if !utf16.IsSurrogate(r) {
			continue
		}
		if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' && utf16.DecodeRune(r, unit(i)) != unicode.ReplacementChar {
			i += 6
			continue
		}
		return jsonSurrogate
	}
	return jsonOK
}

// TestCheckJSONAllocs: the common path allocates nothing: a batch as the ingest benchmark sends it, and a body with
// text beyond ASCII, an escaped surrogate pair, escapes in values and numbers with exponents. (Only faults, escaped
// member names and numbers from 1e308 to 1e309 may allocate.)
func TestCheckJSONAllocs(t *testing.T) {
	for _, body := range [][]byte{
		benchBatch(),
		[]byte(`{"name":"caf\u00e9 \ud83d\ude00 é€😀` + "\uFFFD" + `\n","n":[1e307,-1.5E-400,0.000e999,12345678901234567890,0.5e+300]}`),
	} {
		if fault, _ := checkJSON(body); fault != jsonOK {
			t.Fatalf("fault %d in %.60q", fault, body)
		}
		if n := testing.AllocsPerRun(20, func() { checkJSON(body) }); n != 0 {
			t.Errorf("checkJSON(%.60q): %v allocations, want none", body, n)
		}
	}
}

// benchBatch is a batch of 1,000 events as the ingest benchmark (internal/httpapi) sends them (about 270 KB).
func benchBatch() []byte {
	at := time.Date(2026, 11, 25, 8, 59, 0, 0, time.UTC)
	body := []byte(`{"events":[`)
	for i := range 1000 {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"event_id":"`...)
		body = append(body, uuid.New().String()...)
		body = append(body, `","event_name":"page_view","event_category":"navigation","timestamp":"`...)
		body = at.Add(time.Duration(i)*time.Millisecond).AppendFormat(body, time.RFC3339Nano)
		body = append(body, `","source":"web","properties":{"path":"/pricing","referrer":"https://www.example.com/blog/launch","plan":"team","seats":12,"trial":false}}`...)
	}
	return append(body, "]}"...)
}

// BenchmarkCheckJSON compares checkJSON with json.Valid, which it replaces, on a batch of 1,000 events as the
// ingest benchmark sends them (about 270 KB).
//
//	go test -run '^$' -bench CheckJSON -count 5 ./internal/httpapi/contract
func BenchmarkCheckJSON(b *testing.B) {
	body := benchBatch()
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
