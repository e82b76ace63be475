package contract

import (
	"bytes"
	"hash/maphash"
	"reflect"
	"sync/atomic"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
)

// A flat schema is an object schema of the contract whose members are strings or free-form objects (an event
// is one): the validator checks such a body in one pass over its text, which checkJSON has accepted, instead of
// decoding it into a tree for kin-openapi and decoding it again for the handler. The one pass is exact, not an
// approximation: the object's own rules (its members, required members, no others) are all it checks itself,
// every string member is checked by kin-openapi against the member's own schema, and a free-form object member
// only has a number of members to respect. A body the pass is not sure of (a member of another type, an unknown
// or missing member, a string the member's schema refuses) goes to kin-openapi's validation as every other
// body does, which describes what is wrong. compileFlat accepts only the schemas it can check so, so a change of
// the contract that it does not understand turns the one pass off rather than making it wrong.

// flatSchema is a compiled flat object schema.
type flatSchema struct {
	members  []flatMember
	byName   map[string]int
	required []int
	opts     []openapi3.SchemaValidationOption
}

// flatMember is a member of a flat schema: a string, checked against its schema, or a free-form object with
// a number of members from minProps to maxProps (-1: any).
type flatMember struct {
	name     string
	schema   *openapi3.Schema // a string member's
	accepted *acceptedTexts   // a string member's without a format: texts its schema accepted lately
	object   bool
	minProps int
	maxProps int
}

// acceptedTexts remembers texts that a string member's schema accepted, so that the names, categories and
// sources that most events repeat are checked by kin-openapi once, not once an event (its pattern alone costs
// more than the rest of an event's decoding). A text goes in the slot its hash picks, replacing what was there:
// no lock, no growth, and nothing in it but texts the schema accepted, so a miss only costs the check. Not a
// cache library: a lookup here must cost a small part of the check it saves, and needs no eviction policy.
type acceptedTexts struct {
	seed  maphash.Seed
	slots [256]atomic.Pointer[string]
}

func (a *acceptedTexts) slot(s string) *atomic.Pointer[string] {
	return &a.slots[maphash.String(a.seed, s)%uint64(len(a.slots))]
}

func (a *acceptedTexts) has(s string) bool {
	p := a.slot(s).Load()
	return p != nil && *p == s
}

func (a *acceptedTexts) add(s string) { a.slot(s).Store(&s) }

// newMembers returns a buffer for decode: one Member per member of the schema, named.
func (f *flatSchema) newMembers() []Member {
	vals := make([]Member, len(f.members))
	for k := range vals {
		vals[k].Name = f.members[k].name
	}
	return vals
}

// compileFlat compiles s, or returns nil if s is not a flat schema: an object of OpenAPI 3.0 with
// additionalProperties false and no rule but its members and required ones, each member a string (of any
// rules but a default, readOnly or writeOnly, which the object's validation would act on) or an object with no
// rule but a number of members.
func compileFlat(spec *openapi3.T, s *openapi3.Schema) *flatSchema {
	if spec.IsOpenAPI31OrLater() || s == nil || !s.Type.Is("object") || s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has {
		return nil
	}
	rest := *s
	rest.Type, rest.Properties, rest.Required, rest.AdditionalProperties = nil, nil, nil, openapi3.AdditionalProperties{}
	if !onlyAnnotations(rest) {
		return nil
	}
	f := &flatSchema{byName: map[string]int{}, opts: []openapi3.SchemaValidationOption{
		openapi3.VisitAsRequest(), openapi3.WithStringFormatValidators(StringFormats())}}
	for name, ref := range s.Properties {
		if ref == nil || ref.Value == nil {
			return nil
		}
		m, ok := compileMember(name, ref.Value)
		if !ok {
			return nil
		}
		f.byName[name] = len(f.members)
		f.members = append(f.members, m)
	}
	for _, name := range s.Required {
		i, ok := f.byName[name]
		if !ok {
			return nil
		}
		f.required = append(f.required, i)
	}
	return f
}

func compileMember(name string, p *openapi3.Schema) (flatMember, bool) {
	switch {
	case p.Type.Is("string"):
		if p.Default != nil || p.ReadOnly || p.WriteOnly || p.Nullable {
			return flatMember{}, false
		}
		m := flatMember{name: name, schema: p}
		if p.Format == "" { // identifiers and times (formats) are seldom repeated
			m.accepted = &acceptedTexts{seed: maphash.MakeSeed()}
		}
		return m, true
	case p.Type.Is("object"):
		rest := *p
		rest.Type, rest.MinProps, rest.MaxProps = nil, 0, nil
		if has := rest.AdditionalProperties.Has; rest.AdditionalProperties.Schema == nil && (has == nil || *has) {
			rest.AdditionalProperties = openapi3.AdditionalProperties{}
		}
		if !onlyAnnotations(rest) {
			return flatMember{}, false
		}
		m := flatMember{name: name, object: true, minProps: int(p.MinProps), maxProps: -1} // #nosec G115 -- a limit of the embedded openapi.yaml
		if p.MaxProps != nil {
			m.maxProps = int(*p.MaxProps) // #nosec G115 -- a limit of the embedded openapi.yaml
		}
		return m, true
	}
	return flatMember{}, false
}

// onlyAnnotations reports whether s, with the rules its caller handles cleared, has nothing that validates:
// only texts, examples and extensions.
func onlyAnnotations(s openapi3.Schema) bool {
	s.Extensions, s.Origin, s.Title, s.Description, s.Example, s.Examples, s.ExternalDocs, s.Deprecated, s.XML =
		nil, nil, "", "", nil, nil, nil, false, nil
	return reflect.ValueOf(s).IsZero()
}

// decode checks raw, an object that checkJSON accepted, against the schema, and fills vals (from newMembers,
// reused from one object to the next). False: the schema's validation must decide.
func (f *flatSchema) decode(raw []byte, vals []Member) bool {
	for k := range vals {
		vals[k] = Member{Name: vals[k].Name}
	}
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	i = skipSpace(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		i++
	} else {
		for {
			name, end, ok := jsonText(raw, i)
			if !ok {
				return false
			}
			k, known := f.byName[name]
			if !known {
				return false
			}
			m := &f.members[k]
			if i = skipSpace(raw, end); i >= len(raw) || raw[i] != ':' {
				return false
			}
			i = skipSpace(raw, i+1)
			if m.object {
				end, members, ok := skipObject(raw, i)
				if !ok || members < m.minProps || m.maxProps >= 0 && members > m.maxProps {
					return false
				}
				vals[k].Set, vals[k].Raw = true, raw[i:end]
				i = end
			} else {
				text, end, ok := jsonText(raw, i)
				if !ok || !f.accepts(m, text) {
					return false
				}
				vals[k].Set, vals[k].Text = true, text
				i = end
			}
			if i = skipSpace(raw, i); i < len(raw) && raw[i] == ',' {
				i = skipSpace(raw, i+1)
				continue
			}
			if i < len(raw) && raw[i] == '}' {
				i++
				break
			}
			return false
		}
	}
	if skipSpace(raw, i) != len(raw) {
		return false
	}
	for _, k := range f.required {
		if !vals[k].Set {
			return false
		}
	}
	return true
}

// accepts reports whether the member's schema accepts text.
func (f *flatSchema) accepts(m *flatMember, text string) bool {
	if m.accepted != nil && m.accepted.has(text) {
		return true
	}
	if m.schema.VisitJSON(text, f.opts...) != nil {
		return false
	}
	if m.accepted != nil {
		m.accepted.add(text)
	}
	return true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// jsonText decodes the string at i. A string with a NUL, or that is not UTF-8 or has a lone surrogate escape
// (checkJSON refuses both), is not decoded.
func jsonText(data []byte, i int) (string, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return "", 0, false
	}
	i++
	start := i
	for i < len(data) && data[i] != '"' && data[i] != '\\' && data[i] >= 0x20 && data[i] < utf8.RuneSelf {
		i++
	}
	if i < len(data) && data[i] == '"' {
		return string(data[start:i]), i + 1, true // plain ASCII, the usual case
	}
	var out []byte
	out = append(out, data[start:i]...)
	for i < len(data) {
		b := data[i]
		switch {
		case b == '"':
			if !utf8.Valid(out) || bytes.IndexByte(out, 0) >= 0 {
				return "", 0, false
			}
			return string(out), i + 1, true
		case b < 0x20:
			return "", 0, false
		case b != '\\':
			out = append(out, b)
			i++
			continue
		}
		if i+1 >= len(data) {
			return "", 0, false
		}
		switch c := data[i+1]; c {
		case '"', '\\', '/':
			out = append(out, c)
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
			r, ok := hex4(data, i+2)
			if !ok {
				return "", 0, false
			}
			i += 6
			if 0xD800 <= r && r < 0xDC00 {
				lo, ok := hex4(data, i+2)
				if !ok || data[i] != '\\' || data[i+1] != 'u' || lo < 0xDC00 || lo >= 0xE000 {
					return "", 0, false
				}
				r = (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000
				i += 6
			} else if 0xDC00 <= r && r < 0xE000 {
				return "", 0, false
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return "", 0, false
		}
		i += 2
	}
	return "", 0, false
}

// skipObject returns where the object at i ends and how many members it has.
func skipObject(data []byte, i int) (end, members int, ok bool) {
	if i >= len(data) || data[i] != '{' {
		return 0, 0, false
	}
	end, members, ok = skipValue(data, i)
	return end, members, ok
}

// skipValue returns where the value at i (in a document checkJSON accepted) ends and, for an object, how many
// members it has.
func skipValue(data []byte, i int) (end, members int, ok bool) {
	if i >= len(data) {
		return 0, 0, false
	}
	switch data[i] {
	case '{', '[':
	case '"':
		for i++; i < len(data); i++ {
			switch data[i] {
			case '\\':
				i++
			case '"':
				return i + 1, 0, true
			}
		}
		return 0, 0, false
	default: // a number or a literal: up to the next delimiter
		start := i
		for i < len(data) && !isSpace(data[i]) && data[i] != ',' && data[i] != '}' && data[i] != ']' {
			i++
		}
		return i, 0, i > start
	}
	depth := 0
	for i < len(data) {
		switch data[i] {
		case '"':
			i++
			for i < len(data) && data[i] != '"' {
				if data[i] == '\\' {
					i++
				}
				i++
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, members, true
			}
		case ':':
			if depth == 1 {
				members++
			}
		}
		i++
	}
	return 0, 0, false
}
