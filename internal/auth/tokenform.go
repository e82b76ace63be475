package auth

// The canonical form of an access token, checked before jwx sees the token. jwx decodes base64 leniently (padded
// or not, either alphabet, trailing bits ignored), reads NumericDate claims given as JSON strings, keeps the last of
// duplicate members and ignores the crit header parameter; no maintained library offers a strict mode for these,
// so the structural checks are written here with the standard library: every access token has exactly one
// accepted spelling per header and payload, and jwx then verifies the signature and the claims as before.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"strings"
	"unicode/utf8"
)

// strictB64 decodes base64url without padding and refuses non-zero trailing bits, the one encoding of each byte
// string. It skips '\r' and '\n' like every encoding/base64 decoder: isB64URL refuses them first.
var strictB64 = base64.RawURLEncoding.Strict()

// jwsHeader is the protected header of an access token: exactly the members signAccessToken sets.
type jwsHeader struct {
	alg, typ, kid string
}

// parseAccessToken checks that raw is an access token in canonical form and returns its protected header:
//   - three non-empty segments of the base64url alphabet, without padding and with zero trailing bits, so that
//     decoding and encoding again gives back raw;
//   - a header that is a JSON object with exactly the members alg, typ and kid, each a string;
//   - a payload that is a JSON object in which the numeric dates (exp, iat, nbf) are numbers, the string claims
//     are strings, and aud is a string or an array of strings;
//   - in both, valid UTF-8 and no object (outer or nested) with a member name twice.
//
// It checks form only: the header's values, the signature and the claims' values are the caller's.
func parseAccessToken(raw string) (jwsHeader, bool) {
	h64, rest, _ := strings.Cut(raw, ".")
	p64, s64, _ := strings.Cut(rest, ".")
	// One buffer for the three decoded segments; the signature is decoded only to check its form.
	buf := make([]byte, strictB64.DecodedLen(len(raw)))
	h, ok1 := decodeSegment(buf, h64)
	p, ok2 := decodeSegment(buf[len(h):], p64)
	_, ok3 := decodeSegment(buf[len(h)+len(p):], s64)
	if !ok1 || !ok2 || !ok3 {
		return jwsHeader{}, false
	}
	hdr, ok := parseHeader(h)
	if !ok || !checkPayload(p) {
		return jwsHeader{}, false
	}
	return hdr, true
}

// decodeSegment decodes the segment s into dst, which must have room for it, and reports whether s is the one
// encoding of what it decodes to: not empty, base64url, no padding, no non-zero trailing bits.
func decodeSegment(dst []byte, s string) ([]byte, bool) {
	if s == "" || !isB64URL(s) {
		return nil, false
	}
	n, err := strictB64.Decode(dst, []byte(s))
	return dst[:n], err == nil
}

// isB64URL reports whether s holds only characters of the base64url alphabet (RFC 4648 §5): no padding, no
// '+' or '/', no '.' (a fourth segment), no line breaks.
func isB64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func parseHeader(data []byte) (jwsHeader, bool) {
	var h jwsHeader
	var seen int
	ok := eachMember(data, func(name string, v jsonValue) bool {
		var dst *string
		switch name {
		case "alg":
			dst = &h.alg
		case "typ":
			dst = &h.typ
		case "kid":
			dst = &h.kid
		default:
			return false // crit, jku, jwk, x5u, x5c, b64 and anything else this server never sets
		}
		seen++
		return v.kind == kindString && json.Unmarshal(v.raw, dst) == nil
	})
	return h, ok && seen == 3
}

func checkPayload(data []byte) bool {
	return eachMember(data, func(name string, v jsonValue) bool {
		switch name {
		case "exp", "iat", "nbf":
			return v.kind == kindNumber
		case "iss", "sub", "jti", "client_id", "sid", "org_id", "role", "scope":
			return v.kind == kindString
		case "aud":
			return v.kind == kindString || v.kind == kindArray && v.strings
		}
		return true // RFC 7519 §4: claims this server does not know are ignored
	})
}

type jsonKind uint8

const (
	kindString jsonKind = iota + 1
	kindNumber
	kindArray
	kindObject
	kindLiteral // true, false or null
)

// jsonValue is a member's value as written, and what the checks need to know of it.
type jsonValue struct {
	raw     json.RawMessage
	kind    jsonKind
	strings bool // an array's items are all strings
}

// maxJSONDepth bounds the nesting of a token's JSON, the outer object counting as 1: this server issues an array
// (aud) and nothing deeper.
const maxJSONDepth = 8

// eachMember calls fn with each member of the JSON object data, in order, and reports whether data is exactly
// one JSON object in valid UTF-8 in which no object (the outer one or one nested in it) has a member name twice,
// and fn returned true for every member. (encoding/json would replace invalid UTF-8 with U+FFFD: a second
// spelling of the same claims.) The values of the outer object are read whole, so a string or a number costs no
// allocation; only arrays and objects are walked token by token.
func eachMember(data []byte, fn func(name string, v jsonValue) bool) bool {
	if !utf8.Valid(data) {
		return false
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	var names nameSet
	v := jsonValue{raw: make(json.RawMessage, 0, len(data))} // Decode reuses it for every value
	for d.More() {
		t, err := d.Token()
		name, ok := t.(string)
		if err != nil || !ok || !names.add(name) || d.Decode(&v.raw) != nil {
			return false
		}
		switch c := v.raw[0]; {
		case c == '"':
			v.kind = kindString
		case c == '-' || '0' <= c && c <= '9':
			v.kind = kindNumber
		case c == '[' || c == '{':
			v.kind, v.strings, ok = walk(v.raw)
			if !ok {
				return false
			}
		default:
			v.kind = kindLiteral
		}
		if !fn(name, v) {
			return false
		}
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return false
	}
	_, err := d.Token()
	return err == io.EOF
}

// walk reads the array or object raw, which the decoder has already found well formed, and reports its kind,
// whether it is an array of strings only, and whether no object in it has a member name twice and it is nested
// at most maxJSONDepth deep.
func walk(raw json.RawMessage) (kind jsonKind, strs, ok bool) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // a number out of float64's range is still a number here
	t, err := d.Token()
	if err != nil {
		return 0, false, false
	}
	kind = kindObject
	if t == json.Delim('[') {
		kind = kindArray
	}
	strs, ok = walkRest(d, t, 2) // the outer object is depth 1
	return kind, strs, ok
}

// walkRest reads the rest of the array or object that open began, up to its closing delimiter, and reports
// whether it is an array of strings only, and whether it is free of duplicate names and at most maxJSONDepth deep.
func walkRest(d *json.Decoder, open json.Token, depth int) (strs, ok bool) {
	if depth > maxJSONDepth {
		return false, false
	}
	var names nameSet
	strs = open == json.Delim('[')
	for d.More() {
		if open == json.Delim('{') {
			t, err := d.Token()
			name, isName := t.(string)
			if err != nil || !isName || !names.add(name) {
				return false, false
			}
		}
		t, err := d.Token()
		if err != nil {
			return false, false
		}
		switch t {
		case json.Delim('['), json.Delim('{'):
			if _, ok := walkRest(d, t, depth+1); !ok {
				return false, false
			}
			strs = false
		default:
			_, isString := t.(string)
			strs = strs && isString
		}
	}
	_, err := d.Token() // the closing delimiter: the decoder checks that it matches
	return strs, err == nil
}

// nameSet holds the member names of one object: the first 16 in an array, which an access token never exceeds,
// then in a map, so that a long object (a forged token can hold hundreds of members) costs linear time.
type nameSet struct {
	n     int
	first [16]string
	more  map[string]struct{}
}

// add adds name and reports whether it was new.
func (s *nameSet) add(name string) bool {
	for _, n := range s.first[:s.n] {
		if n == name {
			return false
		}
	}
	if s.n < len(s.first) {
		s.first[s.n] = name
		s.n++
		return true
	}
	if _, ok := s.more[name]; ok {
		return false
	}
	if s.more == nil {
		s.more = map[string]struct{}{}
	}
	s.more[name] = struct{}{}
	return true
}
