package auth

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// A well-formed token, as parseAccessToken sees it: the header and the claims signAccessToken writes, and a
// signature of 64 bytes (0xfb encodes as "-_v7": both characters that differ between the two alphabets).
const (
	formKid     = "20301231-abcdefgh"
	formHeader  = `{"alg":"ES256","kid":"` + formKid + `","typ":"at+jwt"}`
	formPayload = `{"aud":["web"],"client_id":"web","exp":1893553200,"iat":1893552300,"iss":"https://issuer.test",` +
		`"jti":"jt","nbf":1893552300,"org_id":"o","role":"member","sid":"s","sub":"u"}`
)

var formSig = bytes.Repeat([]byte{0xfb}, 64)

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// compact returns the compact serialization of header, payload and sig.
func compact(header, payload string, sig []byte) string {
	return b64(header) + "." + b64(payload) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// withMember returns the JSON object obj with member added as its last member.
func withMember(obj, member string) string { return strings.TrimSuffix(obj, "}") + "," + member + "}" }

// without returns the JSON object obj without its member named name (written "name":"value" or "name":123).
func without(t *testing.T, obj, name string) string {
	t.Helper()
	i := strings.Index(obj, `"`+name+`":`)
	if i < 0 {
		t.Fatalf("%s has no member %s", obj, name)
	}
	end := strings.IndexAny(obj[i+len(name)+3:], ",}") + i + len(name) + 3
	if obj[i+len(name)+3] == '"' {
		end = strings.Index(obj[i+len(name)+4:], `"`) + i + len(name) + 5
	}
	out := obj[:i] + strings.TrimPrefix(obj[end:], ",")
	return strings.Replace(out, ",}", "}", 1)
}

// replaceSegment returns tok with its segment i replaced by seg.
func replaceSegment(tok string, i int, seg string) string {
	parts := strings.Split(tok, ".")
	parts[i] = seg
	return strings.Join(parts, ".")
}

// stdAlphabet returns seg written in the standard alphabet.
func stdAlphabet(t *testing.T, seg string) string {
	t.Helper()
	std := strings.NewReplacer("-", "+", "_", "/").Replace(seg)
	if std == seg {
		t.Fatalf("%s is the same in both alphabets: the case would prove nothing", seg)
	}
	return std
}

// padded returns seg with the '=' padding the padded encoding would add.
func padded(t *testing.T, seg string) string {
	t.Helper()
	if len(seg)%4 == 0 {
		t.Fatalf("%s needs no padding: the case would prove nothing", seg)
	}
	return seg + strings.Repeat("=", 4-len(seg)%4)
}

// trailingBits returns seg with the lowest of the unused bits of its last character set: the same bytes when
// decoded leniently, a second spelling.
func trailingBits(t *testing.T, seg string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(seg)%4 == 0 {
		t.Fatalf("%s has no unused bits: the case would prove nothing", seg)
	}
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	out := seg[:len(seg)-1] + string(alphabet[last|1])
	if lenient, err := base64.RawURLEncoding.DecodeString(out); err != nil || b64(string(lenient)) != seg {
		t.Fatalf("%s does not decode to the same bytes as %s", out, seg)
	}
	return out
}

func TestParseAccessTokenSegments(t *testing.T) {
	good := compact(formHeader, formPayload, formSig)
	parts := strings.Split(good, ".")
	tests := []struct {
		name string
		raw  string
		want bool
	}{
		{"as issued", good, true},
		{"padded header", replaceSegment(good, 0, padded(t, parts[0])), false},
		{"padded payload", replaceSegment(good, 1, padded(t, parts[1])), false},
		{"padded signature", replaceSegment(good, 2, padded(t, parts[2])), false},
		{"padding alone after the signature", good + "=", false},
		{"signature in the standard alphabet", replaceSegment(good, 2, stdAlphabet(t, parts[2])), false},
		{"a header with '-' in base64url", compact(`{"alg":"ES256","kid":"~~~~~~","typ":"at+jwt"}`, formPayload, formSig), true},
		{"header in the standard alphabet", replaceSegment(compact(`{"alg":"ES256","kid":"~~~~~~","typ":"at+jwt"}`, formPayload, formSig), 0,
			stdAlphabet(t, b64(`{"alg":"ES256","kid":"~~~~~~","typ":"at+jwt"}`))), false},
		{"payload in the standard padded alphabet", replaceSegment(good, 1, base64.StdEncoding.EncodeToString([]byte(formPayload))), false},
		{"trailing bits in the signature", replaceSegment(good, 2, trailingBits(t, parts[2])), false},
		{"trailing bits in the header", replaceSegment(good, 0, trailingBits(t, parts[0])), false},
		{"trailing bits in the payload", replaceSegment(good, 1, trailingBits(t, parts[1])), false},
		{"a segment of impossible length", replaceSegment(good, 2, parts[2]+"AAA"), false},
		{"line break in the signature", replaceSegment(good, 2, parts[2][:40]+"\n"+parts[2][40:]), false},
		{"carriage return in the header", replaceSegment(good, 0, parts[0][:8]+"\r"+parts[0][8:]), false},
		{"space in the payload", replaceSegment(good, 1, parts[1][:8]+" "+parts[1][8:]), false},
		{"leading space", " " + good, false},
		{"no signature", parts[0] + "." + parts[1] + ".", false},
		{"empty header", "." + parts[1] + "." + parts[2], false},
		{"empty payload", parts[0] + ".." + parts[2], false},
		{"two segments", parts[0] + "." + parts[1], false},
		{"four segments", good + "." + parts[2], false},
		{"empty", "", false},
		{"dots only", "..", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := parseAccessToken(tt.raw); got != tt.want {
				t.Errorf("parseAccessToken(%q) = %v, want %v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestParseAccessTokenHeader(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   jwsHeader // zero: refused
	}{
		{"as issued", formHeader, jwsHeader{alg: "ES256", typ: "at+jwt", kid: formKid}},
		{"members in another order", `{"typ":"at+jwt","alg":"ES256","kid":"k"}`, jwsHeader{alg: "ES256", typ: "at+jwt", kid: "k"}},
		{"escaped values are read as JSON", `{"alg":"ES\u0032\u00356","kid":"k","typ":"at\/jwt"}`, jwsHeader{alg: "ES256", typ: "at/jwt", kid: "k"}},
		{"values are the caller's to judge", `{"alg":"none","kid":"","typ":"JWT"}`, jwsHeader{alg: "none", typ: "JWT"}},
		{"crit", withMember(formHeader, `"crit":["exp"]`), jwsHeader{}},
		{"crit naming nothing", withMember(formHeader, `"crit":[]`), jwsHeader{}},
		{"jku", withMember(formHeader, `"jku":"https://evil.test/jwks"`), jwsHeader{}},
		{"jwk", withMember(formHeader, `"jwk":{"kty":"EC"}`), jwsHeader{}},
		{"x5u", withMember(formHeader, `"x5u":"https://evil.test/cert"`), jwsHeader{}},
		{"x5c", withMember(formHeader, `"x5c":["MIIB"]`), jwsHeader{}},
		{"b64", withMember(formHeader, `"b64":false`), jwsHeader{}},
		{"cty", withMember(formHeader, `"cty":"JWT"`), jwsHeader{}},
		{"an unknown member", withMember(formHeader, `"nexus":"x"`), jwsHeader{}},
		{"a member in another case", withMember(without(t, formHeader, "typ"), `"Typ":"at+jwt"`), jwsHeader{}},
		{"no alg", without(t, formHeader, "alg"), jwsHeader{}},
		{"no typ", without(t, formHeader, "typ"), jwsHeader{}},
		{"no kid", without(t, formHeader, "kid"), jwsHeader{}},
		{"duplicate alg", `{"alg":"none","alg":"ES256","kid":"k","typ":"at+jwt"}`, jwsHeader{}},
		{"duplicate kid", withMember(formHeader, `"kid":"other"`), jwsHeader{}},
		{"duplicate spelled with an escape", withMember(formHeader, `"t\u0079p":"at+jwt"`), jwsHeader{}},
		{"alg a number", `{"alg":256,"kid":"k","typ":"at+jwt"}`, jwsHeader{}},
		{"kid null", `{"alg":"ES256","kid":null,"typ":"at+jwt"}`, jwsHeader{}},
		{"typ an array", `{"alg":"ES256","kid":"k","typ":["at+jwt"]}`, jwsHeader{}},
		{"an array", `["ES256","at+jwt","k"]`, jwsHeader{}},
		{"a string", `"ES256"`, jwsHeader{}},
		{"null", `null`, jwsHeader{}},
		{"empty object", `{}`, jwsHeader{}},
		{"a second object after it", formHeader + `{}`, jwsHeader{}},
		{"trailing data", formHeader + ` x`, jwsHeader{}},
		{"not JSON", `{"alg":"ES256",`, jwsHeader{}},
		{"invalid UTF-8", `{"alg":"ES256","kid":"k` + "\xff" + `","typ":"at+jwt"}`, jwsHeader{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseAccessToken(compact(tt.header, formPayload, formSig))
			if want := tt.want != (jwsHeader{}); ok != want || got != tt.want {
				t.Errorf("parseAccessToken(header %s) = %+v, %v; want %+v, %v", tt.header, got, ok, tt.want, want)
			}
		})
	}
}

func TestParseAccessTokenPayload(t *testing.T) {
	many := func(n int, last string) string {
		var b strings.Builder
		b.WriteString(strings.TrimSuffix(formPayload, "}"))
		for i := range n {
			fmt.Fprintf(&b, `,"x%d":%d`, i, i)
		}
		return b.String() + last + "}"
	}
	swap := func(old, repl string) string { // formPayload with old replaced by repl
		t.Helper()
		if !strings.Contains(formPayload, old) {
			t.Fatalf("%s does not hold %s", formPayload, old)
		}
		return strings.Replace(formPayload, old, repl, 1)
	}
	tests := []struct {
		name    string
		payload string
		want    bool
	}{
		{"as issued", formPayload, true},
		{"aud a string", swap(`["web"]`, `"web"`), true},
		{"aud of two clients (refused later)", swap(`["web"]`, `["web","cli"]`), true},
		{"aud empty (refused later)", swap(`["web"]`, `[]`), true},
		{"a fractional date (a number)", swap(`"exp":1893553200`, `"exp":1893553200.5`), true},
		{"unknown claims are ignored", withMember(formPayload, `"scope":"x","ext":{"a":[1,{"b":true}]},"n":null`), true},
		{"many unknown claims", many(40, ""), true},
		{"no exp (refused later)", without(t, formPayload, "exp"), true},
		{"exp a string", swap(`"exp":1893553200`, `"exp":"1893553200"`), false},
		{"iat a string", swap(`"iat":1893552300`, `"iat":"1893552300"`), false},
		{"nbf a string", swap(`"nbf":1893552300`, `"nbf":"1893552300"`), false},
		{"exp null", swap(`"exp":1893553200`, `"exp":null`), false},
		{"exp true", swap(`"exp":1893553200`, `"exp":true`), false},
		{"exp an array", swap(`"exp":1893553200`, `"exp":[1893553200]`), false},
		{"sub a number", swap(`"sub":"u"`, `"sub":42`), false},
		{"iss null", swap(`"iss":"https://issuer.test"`, `"iss":null`), false},
		{"jti an object", swap(`"jti":"jt"`, `"jti":{}`), false},
		{"client_id a number", swap(`"client_id":"web"`, `"client_id":1`), false},
		{"sid an array", swap(`"sid":"s"`, `"sid":["s"]`), false},
		{"org_id true", swap(`"org_id":"o"`, `"org_id":true`), false},
		{"role a number", swap(`"role":"member"`, `"role":0`), false},
		{"aud a number", swap(`["web"]`, `7`), false},
		{"aud with a number", swap(`["web"]`, `["web",7]`), false},
		{"aud with null", swap(`["web"]`, `["web",null]`), false},
		{"aud with an array", swap(`["web"]`, `[["web"]]`), false},
		{"aud an object", swap(`["web"]`, `{"web":true}`), false},
		{"duplicate role", withMember(formPayload, `"role":"admin"`), false},
		{"duplicate role, same value", withMember(formPayload, `"role":"member"`), false},
		{"duplicate exp", withMember(formPayload, `"exp":4102444800`), false},
		{"duplicate spelled with an escape", withMember(formPayload, `"r\u006fle":"admin"`), false},
		{"duplicate unknown claim", withMember(formPayload, `"x":1,"x":2`), false},
		{"duplicate past the sixteenth member", many(40, `,"x3":3`), false},
		{"duplicate in a nested object", withMember(formPayload, `"ext":{"a":1,"a":2}`), false},
		{"duplicate deep in an array", withMember(formPayload, `"ext":[{"b":[{"a":1,"a":2}]}]`), false},
		{"nested 8 deep", withMember(formPayload, `"ext":`+strings.Repeat("[", 7)+strings.Repeat("]", 7)), true},
		{"nested too deep", withMember(formPayload, `"ext":`+strings.Repeat("[", 8)+strings.Repeat("]", 8)), false},
		{"a huge number in an unknown claim", withMember(formPayload, `"ext":[1e400]`), true},
		{"invalid UTF-8 in a claim", swap(`"sub":"u"`, "\"sub\":\"u\xff\""), false},
		{"invalid UTF-8 in a name", withMember(formPayload, "\"\xc0\xaf\":1"), false},
		{"an array", `[` + formPayload + `]`, false},
		{"a string", `"x"`, false},
		{"null", `null`, false},
		{"a second object after it", formPayload + `{}`, false},
		{"trailing data", formPayload + `,`, false},
		{"truncated", formPayload[:len(formPayload)-1], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := parseAccessToken(compact(formHeader, tt.payload, formSig)); got != tt.want {
				t.Errorf("parseAccessToken(payload %s) = %v, want %v", tt.payload, got, tt.want)
			}
		})
	}
}

// TestDecodeSegmentCanonical checks, for every string of up to five characters over an alphabet of every kind of
// character (both alphabets' 62nd and 63rd, padding, a line break, characters with and without trailing bits
// set), that decodeSegment accepts exactly those that encoding their bytes gives back.
func TestDecodeSegmentCanonical(t *testing.T) {
	const chars = "AQgw-_+/=\n.B"
	var s []byte
	var check func()
	check = func() {
		if len(s) > 0 {
			seg := string(s)
			lenient, err := base64.RawURLEncoding.DecodeString(seg)
			canonical := err == nil && base64.RawURLEncoding.EncodeToString(lenient) == seg
			got, ok := decodeSegment(make([]byte, len(seg)), seg)
			if ok != canonical || ok && !bytes.Equal(got, lenient) {
				t.Fatalf("decodeSegment(%q) = %x, %v; canonical: %v", seg, got, ok, canonical)
			}
		}
		if len(s) == 5 {
			return
		}
		for i := range len(chars) {
			s = append(s, chars[i])
			check()
			s = s[:len(s)-1]
		}
	}
	check()
}
