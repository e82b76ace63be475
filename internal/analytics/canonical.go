package analytics

import (
	"bytes"
	"slices"
	"sync"
	"unicode/utf8"
)

// The canonical form of an event's properties (compact JSON, members sorted, numbers as sent, strings as
// encoding/json writes them without HTML escaping) is made in one pass over the text as sent: no tree of maps,
// no second encoding. The pass is hand-written because no library makes exactly the form that events have
// always been fingerprinted and stored in (encoding/json's, from a decoded tree); the tree-based
// canonicalProperties stays the definition, checked against this one by FuzzCanonicalProperties, and it
// answers whatever the pass is not sure of: any syntax it does not expect, a duplicate member, text that is not
// UTF-8 or a lone surrogate escape, a NUL, too deep a level, too many members, too long a result. So the pass
// only ever produces valid output; every problem is described by the tree-based check.

// canonicalFast returns the canonical form of a properties object, or false when canonicalProperties must
// decide (an error, or anything the pass does not handle).
func canonicalFast(raw []byte) ([]byte, bool) {
	c := canonPool.Get().(*canonicalizer)
	defer canonPool.Put(c)
	c.in, c.out, c.members = raw, c.out[:0], c.members[:0]
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, false
	}
	end, ok := c.value(i, 1)
	if !ok || skipSpace(raw, end) != len(raw) || len(c.out) > MaxPropertiesBytes {
		return nil, false
	}
	return bytes.Clone(c.out), true
}

var canonPool = sync.Pool{New: func() any { return new(canonicalizer) }}

// canonicalizer is canonicalFast's state: the input, the output so far, and the members of the open objects.
type canonicalizer struct {
	in, out, scratch []byte
	members          []member
}

// member is a member of an object being written: its key (decoded) and where "key":value is in the output.
type member struct {
	key        []byte
	start, end int
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// value writes the value at i, at the given level (the properties object is level 1), and returns where it ends.
func (c *canonicalizer) value(i, depth int) (int, bool) {
	in := c.in
	if i >= len(in) {
		return 0, false
	}
	switch b := in[i]; {
	case b == '{':
		if depth > MaxPropertiesDepth {
			return 0, false
		}
		return c.object(i+1, depth)
	case b == '[':
		if depth > MaxPropertiesDepth {
			return 0, false
		}
		return c.array(i+1, depth)
	case b == '"':
		return c.string(i + 1)
	case b == '-' || '0' <= b && b <= '9':
		end, ok := scanNumber(in, i)
		if ok {
			c.out = append(c.out, in[i:end]...)
		}
		return end, ok
	case b == 't' && bytes.HasPrefix(in[i:], []byte("true")):
		c.out = append(c.out, "true"...)
		return i + 4, true
	case b == 'f' && bytes.HasPrefix(in[i:], []byte("false")):
		c.out = append(c.out, "false"...)
		return i + 5, true
	case b == 'n' && bytes.HasPrefix(in[i:], []byte("null")):
		c.out = append(c.out, "null"...)
		return i + 4, true
	}
	return 0, false
}

// object writes the object whose '{' is before i, its members sorted by key as encoding/json sorts a map's.
func (c *canonicalizer) object(i, depth int) (int, bool) {
	in := c.in
	open := len(c.out)
	c.out = append(c.out, '{')
	base := len(c.members)
	defer func() { c.members = c.members[:base] }()
	i = skipSpace(in, i)
	if i < len(in) && in[i] == '}' {
		c.out = append(c.out, '}')
		return i + 1, true
	}
	sorted := true
	for {
		if i >= len(in) || in[i] != '"' {
			return 0, false
		}
		if len(c.members)-base > 0 {
			c.out = append(c.out, ',')
		}
		start := len(c.out)
		keyEnd, key, ok := c.key(i + 1)
		if !ok {
			return 0, false
		}
		i = skipSpace(in, keyEnd)
		if i >= len(in) || in[i] != ':' {
			return 0, false
		}
		c.out = append(c.out, ':')
		if i, ok = c.value(skipSpace(in, i+1), depth+1); !ok {
			return 0, false
		}
		if n := len(c.members); n > base && bytes.Compare(c.members[n-1].key, key) >= 0 {
			sorted = false
		}
		c.members = append(c.members, member{key: key, start: start, end: len(c.out)})
		if len(c.members)-base > MaxPropertiesKeys {
			return 0, false
		}
		i = skipSpace(in, i)
		if i < len(in) && in[i] == ',' {
			i = skipSpace(in, i+1)
			continue
		}
		if i < len(in) && in[i] == '}' {
			break
		}
		return 0, false
	}
	if !sorted {
		ms := c.members[base:]
		slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
		for k := 1; k < len(ms); k++ {
			if bytes.Equal(ms[k-1].key, ms[k].key) {
				return 0, false // a member twice: which one counts is canonicalProperties' business
			}
		}
		c.scratch = append(c.scratch[:0], c.out[open+1:]...)
		c.out = c.out[:open+1]
		for k, m := range ms {
			if k > 0 {
				c.out = append(c.out, ',')
			}
			c.out = append(c.out, c.scratch[m.start-open-1:m.end-open-1]...)
		}
	}
	c.out = append(c.out, '}')
	return i + 1, true
}

// array writes the array whose '[' is before i.
func (c *canonicalizer) array(i, depth int) (int, bool) {
	in := c.in
	c.out = append(c.out, '[')
	i = skipSpace(in, i)
	if i < len(in) && in[i] == ']' {
		c.out = append(c.out, ']')
		return i + 1, true
	}
	for first := true; ; first = false {
		if !first {
			c.out = append(c.out, ',')
		}
		var ok bool
		if i, ok = c.value(i, depth+1); !ok {
			return 0, false
		}
		i = skipSpace(in, i)
		if i < len(in) && in[i] == ',' {
			i = skipSpace(in, i+1)
			continue
		}
		if i < len(in) && in[i] == ']' {
			c.out = append(c.out, ']')
			return i + 1, true
		}
		return 0, false
	}
}

// key writes the member name whose opening quote is before i, and returns it decoded.
func (c *canonicalizer) key(i int) (int, []byte, bool) {
	start := len(c.out)
	end, ok := c.string(i)
	if !ok {
		return 0, nil, false
	}
	quoted := c.out[start:len(c.out):len(c.out)]
	if bytes.IndexByte(quoted, '\\') < 0 {
		return end, quoted[1 : len(quoted)-1], true // nothing escaped: the text is the name
	}
	s, ok := unquote(quoted)
	return end, s, ok
}

// string writes the string whose opening quote is before i as encoding/json writes it (with
// SetEscapeHTML(false)): '"', '\\' and control characters escaped (\b, \f, \n, \r, \t, else \u00xx), U+2028 and
// U+2029 as \u2028 and \u2029, everything else as UTF-8. A string with a NUL, text that is not UTF-8 or a lone
// surrogate escape is not handled.
func (c *canonicalizer) string(i int) (int, bool) {
	in := c.in
	c.out = append(c.out, '"')
	from := i // the start of the run of bytes copied as they are
	for i < len(in) {
		b := in[i]
		switch {
		case b == '"':
			c.out = append(c.out, in[from:i]...)
			c.out = append(c.out, '"')
			return i + 1, true
		case b == '\\':
			c.out = append(c.out, in[from:i]...)
			n, ok := c.escape(i + 1)
			if !ok {
				return 0, false
			}
			i += n
			from = i
		case b < 0x20:
			return 0, false // a control character as is: not JSON
		case b < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(in[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				return 0, false
			case r == '\u2028' || r == '\u2029':
				c.out = append(c.out, in[from:i]...)
				c.out = appendEscapedRune(c.out, r)
				from = i + size
			}
			i += size
		}
	}
	return 0, false
}

// escape writes the character of the escape after the backslash before i and returns the escape's length,
// backslash included.
func (c *canonicalizer) escape(i int) (int, bool) {
	in := c.in
	if i >= len(in) {
		return 0, false
	}
	switch in[i] {
	case '"', '\\':
		c.out = append(c.out, '\\', in[i])
		return 2, true
	case '/':
		c.out = append(c.out, '/')
		return 2, true
	case 'b', 'f', 'n', 'r', 't':
		c.out = append(c.out, '\\', in[i])
		return 2, true
	case 'u':
	default:
		return 0, false
	}
	r, ok := hex4(in, i+1)
	if !ok {
		return 0, false
	}
	n := 6
	switch {
	case 0xD800 <= r && r < 0xDC00:
		lo, ok := hex4(in, i+7)
		if !ok || in[i+5] != '\\' || in[i+6] != 'u' || lo < 0xDC00 || lo >= 0xE000 {
			return 0, false
		}
		r, n = (r-0xD800)<<10+(lo-0xDC00)+0x10000, 12
	case 0xDC00 <= r && r < 0xE000:
		return 0, false
	case r == 0:
		return 0, false
	}
	switch r {
	case '"', '\\':
		c.out = append(c.out, '\\', byte(r))
	case '\b':
		c.out = append(c.out, '\\', 'b')
	case '\f':
		c.out = append(c.out, '\\', 'f')
	case '\n':
		c.out = append(c.out, '\\', 'n')
	case '\r':
		c.out = append(c.out, '\\', 'r')
	case '\t':
		c.out = append(c.out, '\\', 't')
	default:
		if r < 0x20 || r == '\u2028' || r == '\u2029' {
			c.out = appendEscapedRune(c.out, r)
		} else {
			c.out = utf8.AppendRune(c.out, r)
		}
	}
	return n, true
}

func appendEscapedRune(dst []byte, r rune) []byte {
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

// unquote decodes a string canonicalFast wrote (valid, with escapes only for '"', '\\', control characters,
// U+2028 and U+2029).
func unquote(quoted []byte) ([]byte, bool) {
	s := quoted[1 : len(quoted)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 >= len(s) {
			return nil, false
		}
		i++
		switch s[i] {
		case '"', '\\':
			out = append(out, s[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(s, i+1)
			if !ok {
				return nil, false
			}
			out = utf8.AppendRune(out, r)
			i += 4
		default:
			return nil, false
		}
	}
	return out, true
}

// hex4 decodes the four hex digits at i.
func hex4(data []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, b := range data[i : i+4] {
		switch {
		case '0' <= b && b <= '9':
			r = r<<4 | rune(b-'0')
		case 'a' <= b && b <= 'f':
			r = r<<4 | rune(b-'a'+10)
		case 'A' <= b && b <= 'F':
			r = r<<4 | rune(b-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// scanNumber returns where the JSON number at i ends.
func scanNumber(data []byte, i int) (int, bool) {
	n := len(data)
	if i < n && data[i] == '-' {
		i++
	}
	switch {
	case i < n && data[i] == '0':
		i++
	case i < n && '1' <= data[i] && data[i] <= '9':
		for i < n && '0' <= data[i] && data[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < n && data[i] == '.' {
		i++
		start := i
		for i < n && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		if i == start {
			return 0, false
		}
	}
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < n && (data[i] == '+' || data[i] == '-') {
			i++
		}
		start := i
		for i < n && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		if i == start {
			return 0, false
		}
	}
	return i, true
}
