package analytics

import (
	"bytes"
	"slices"
	"sync"
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
