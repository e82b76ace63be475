package contract

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// MaxJSONDepth is how deeply the arrays and objects of a request body may nest, the body's own top-level object
// being level 1. Every decoder behind the validator (kin-openapi's, the binder's, the event properties' walk)
// recurses once per level; no body of the contract needs more than 8 levels (an event's properties stop at 5
// levels inside a batch item at level 2), so 32 leaves room without letting a 1 MiB body of brackets in.
const MaxJSONDepth = 32

// jsonFault is what checkJSON finds wrong with a document.
type jsonFault uint8

// The faults of a document. All but jsonSyntax are in documents json.Valid accepts.
const (
	jsonOK            jsonFault = iota
	jsonSyntax                  // not one valid JSON value, alone but for white space: what json.Valid refuses
	jsonTooDeep                 // nested deeper than MaxJSONDepth
	jsonDuplicate               // an object has the same member twice
	jsonBadUTF8                 // a string has bytes that are not UTF-8 (RFC 8259 section 8.1)
	jsonSurrogate               // a string has an escaped UTF-16 surrogate without its other half (RFC 7493 section 2.1)
	jsonNameBadUTF8             // the same in a member name, reported at the member's object
	jsonNameSurrogate           // the same in a member name, reported at the member's object
	jsonNumberRange             // a number beyond the finite range of a double (RFC 7493 section 2.2), ±Inf to a parser
)

// strFault is what scanString finds wrong with a string that is valid JSON.
type strFault uint8

const (
	strOK        strFault = iota
	strBadUTF8            // bytes that are not UTF-8: invalid, overlong, an encoded surrogate, cut short
	strSurrogate          // \uD800–\uDBFF not followed by \uDC00–\uDFFF, or \uDC00–\uDFFF not after one
)

// scanMaxDepth is encoding/json's own nesting limit: json.Valid refuses deeper documents, so checkJSON does too.
const scanMaxDepth = 10000

// dupMapAt is the number of members from which an object's keys go into a map; below it they are compared one
// by one, which costs nothing to set up.
const dupMapAt = 16

// checkJSON checks a request body in one pass: it is one valid JSON value exactly as json.Valid decides (white
// space around it, nothing else after it), nested at most MaxJSONDepth levels, no object has a member twice, and
// it is I-JSON (RFC 7493) as far as a decoder would otherwise change it silently: every string and member name is
// UTF-8 with no escaped lone surrogate (encoding/json would turn either into U+FFFD), and every number is within
// the finite range of a double (JavaScript and Jackson would read ±Infinity; underflow to 0 is allowed). Keys are
// compared as encoding/json decodes them (escapes resolved), so that two keys the binder would merge are
// duplicates. A syntax error anywhere takes precedence; otherwise the first fault in document order is reported
// with the JSON Pointer of the duplicate member, of the array or object that opens the level too deep, of the
// string or number at fault, or, for a member name at fault, of its object (so that the pointer is always UTF-8
// and never repeats the name).
func checkJSON(data []byte) (jsonFault, string) {
	var c checker
	return c.run(data)
}

// checker is checkJSON's state. Containers are tracked twice: every level in a bit stack (object or array), for
// the syntax, and the first MaxJSONDepth levels in frames, for duplicates and pointers.
type checker struct {
	depth   int
	objects [scanMaxDepth/64 + 1]uint64 // bit d set: level d+1 is an object
	frames  [MaxJSONDepth]frame
	// The keys of the open objects without a map, in order (each frame knows where its own start): the first
	// len(keyArr) in keyArr, the others in more. An array, not a slice of one, so that the checker stays on the
	// stack.
	keyArr  [64][]byte
	more    [][]byte
	nkeys   int
	fault   jsonFault
	pointer string
}

// frame is an open array or object among the first MaxJSONDepth levels.
type frame struct {
	index    int                 // array: the current element's index
	key      []byte              // object: the current member's key, decoded
	keyStart int                 // object: where its keys start among the checker's
	seen     map[string]struct{} // object: its keys, once it has dupMapAt of them
}

// Byte classes of the scanner.
const (
	clsOther = iota
	clsPlain // may appear in a string as is, ASCII
	clsHigh  // may appear in a string as is, not ASCII
)

var strClass = func() (t [256]uint8) {
	for b := 0x20; b < 0x80; b++ {
		t[b] = clsPlain
	}
	for b := 0x80; b < 0x100; b++ {
		t[b] = clsHigh
	}
	t['"'], t['\\'] = clsOther, clsOther
	return t
}()

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

func (c *checker) run(data []byte) (jsonFault, string) {
	n := len(data)
	i := 0
	const (
		stValue = iota // a value is expected at i (after white space)
		stAfter        // a value ended before i
		stKey          // a member's key is expected at i (after white space)
	)
	state := stValue
	for {
		for i < n && isSpace(data[i]) {
			i++
		}
		switch state {
		case stValue:
			if i >= n {
				return jsonSyntax, ""
			}
			switch b := data[i]; {
			case b == '{' || b == '[':
				if !c.push(b == '{') {
					return jsonSyntax, ""
				}
				i++
				for i < n && isSpace(data[i]) {
					i++
				}
				if i < n && data[i] == b+2 { // '}' is '{'+2, ']' is '['+2
					i++
					c.pop()
					state = stAfter
				} else if b == '{' {
					state = stKey
				}
				continue
			case b == '"':
				end, _, sf, ok := scanString(data, i+1)
				if !ok {
					return jsonSyntax, ""
				}
				if sf != strOK {
					c.valueFault(sf.valueFault())
				}
				i = end
			case b == '-' || '0' <= b && b <= '9':
				end, inf, ok := scanNumber(data, i)
				if !ok {
					return jsonSyntax, ""
				}
				if inf {
					c.valueFault(jsonNumberRange)
				}
				i = end
			case b == 't':
				if !bytes.HasPrefix(data[i:], []byte("true")) {
					return jsonSyntax, ""
				}
				i += 4
			case b == 'f':
				if !bytes.HasPrefix(data[i:], []byte("false")) {
					return jsonSyntax, ""
				}
				i += 5
			case b == 'n':
				if !bytes.HasPrefix(data[i:], []byte("null")) {
					return jsonSyntax, ""
				}
				i += 4
			default:
				return jsonSyntax, ""
			}
			state = stAfter
		case stKey:
			if i >= n || data[i] != '"' {
				return jsonSyntax, ""
			}
			end, escaped, sf, ok := scanString(data, i+1)
			if !ok {
				return jsonSyntax, ""
			}
			if c.fault == jsonOK && c.depth <= MaxJSONDepth {
				if sf != strOK {
					c.fault, c.pointer = sf.nameFault(), c.path(c.depth-1)
				} else {
					c.member(data[i:end], escaped)
				}
			}
			i = end
			for i < n && isSpace(data[i]) {
				i++
			}
			if i >= n || data[i] != ':' {
				return jsonSyntax, ""
			}
			i++
			state = stValue
		case stAfter:
			if c.depth == 0 {
				if i != n {
					return jsonSyntax, ""
				}
				return c.fault, c.pointer
			}
			if i >= n {
				return jsonSyntax, ""
			}
			object := c.objects[(c.depth-1)/64]&(1<<((c.depth-1)%64)) != 0
			switch b := data[i]; {
			case b == ',':
				i++
				if object {
					state = stKey
				} else {
					if c.depth <= MaxJSONDepth {
						c.frames[c.depth-1].index++
					}
					state = stValue
				}
			case object && b == '}' || !object && b == ']':
				i++
				c.pop()
			default:
				return jsonSyntax, ""
			}
		}
	}
}

// push opens a level; false past encoding/json's limit.
func (c *checker) push(object bool) bool {
	if c.depth == scanMaxDepth {
		return false
	}
	d := c.depth
	c.depth++
	if object {
		c.objects[d/64] |= 1 << (d % 64)
	} else {
		c.objects[d/64] &^= 1 << (d % 64)
	}
	if d >= MaxJSONDepth {
		if c.fault == jsonOK {
			c.fault, c.pointer = jsonTooDeep, c.path(MaxJSONDepth)
		}
		return true
	}
	c.frames[d] = frame{keyStart: c.nkeys}
	return true
}

// pop closes a level.
func (c *checker) pop() {
	c.depth--
	if c.depth < MaxJSONDepth {
		f := &c.frames[c.depth]
		c.nkeys = f.keyStart
		f.seen = nil
	}
}

// valueFault notes a fault of the current value, unless one came before. (With none before, the value is at
// most MaxJSONDepth levels deep: a deeper level is a fault itself.)
func (c *checker) valueFault(f jsonFault) {
	if c.fault == jsonOK {
		c.fault, c.pointer = f, c.path(c.depth)
	}
}

// member records the key of a member of the innermost object (quoted as sent, valid UTF-8 without lone
// surrogates; escaped when it has escapes), and notes the fault if the object has it already.
func (c *checker) member(quoted []byte, escaped bool) {
	f := &c.frames[c.depth-1]
	key := quoted[1 : len(quoted)-1]
	if escaped {
		var s string
		if json.Unmarshal(quoted, &s) != nil {
			return // unreachable: the scanner accepted the string
		}
		key = []byte(s)
	}
	f.key = key
	dup := false
	switch {
	case f.seen != nil:
		_, dup = f.seen[string(key)]
		if !dup {
			f.seen[string(key)] = struct{}{}
		}
	default:
		for i := f.keyStart; i < c.nkeys; i++ {
			if bytes.Equal(c.key(i), key) {
				dup = true
				break
			}
		}
		if dup {
			break
		}
		if c.nkeys-f.keyStart+1 < dupMapAt {
			c.addKey(key)
			break
		}
		f.seen = make(map[string]struct{}, 2*dupMapAt)
		for i := f.keyStart; i < c.nkeys; i++ {
			f.seen[string(c.key(i))] = struct{}{}
		}
		f.seen[string(key)] = struct{}{}
		c.nkeys = f.keyStart
	}
	if dup {
		c.fault, c.pointer = jsonDuplicate, c.path(c.depth)
	}
}

// key returns the key at i among the checker's.
func (c *checker) key(i int) []byte {
	if i < len(c.keyArr) {
		return c.keyArr[i]
	}
	return c.more[i-len(c.keyArr)]
}

// addKey adds a key after the checker's first nkeys.
func (c *checker) addKey(k []byte) {
	if c.nkeys < len(c.keyArr) {
		c.keyArr[c.nkeys] = k
	} else {
		c.more = append(c.more[:c.nkeys-len(c.keyArr)], k)
	}
	c.nkeys++
}

// path returns the JSON Pointer of the current value of level levels.
func (c *checker) path(levels int) string {
	var b strings.Builder
	esc := strings.NewReplacer("~", "~0", "/", "~1")
	for d := range levels {
		b.WriteByte('/')
		if c.objects[d/64]&(1<<(d%64)) != 0 {
			b.WriteString(esc.Replace(string(c.frames[d].key)))
		} else {
			b.WriteString(strconv.Itoa(c.frames[d].index))
		}
	}
	return b.String()
}

// WellFormed reports whether data is one JSON document that the pipeline reads (see readJSON): well-formed,
// within MaxJSONDepth, no member twice, valid UTF-8, no lone surrogate escape, every number within a double.
func WellFormed(data []byte) bool {
	fault, _ := checkJSON(data)
	return fault == jsonOK
}
