package analytics

import (
	"bytes"
	"unicode/utf8"
)

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
