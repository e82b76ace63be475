package contract

import "testing"

// TestEmailFormat: the email format accepts RFC 5322 dot-atoms (every atext character, "`" included) at a domain
// with a dot, and nothing else.
func TestEmailFormat(t *testing.T) {
	v := StringFormats()["email"]
	for _, ok := range []string{"a`b@example.com", "ada@example.com", "o'brien+tag@mail.example.co.uk", "{x}|~@a-b.io"} {
		if err := v.Validate(ok); err != nil {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"a@b", "a..b@example.com", ".a@example.com", "a b@example.com", "a@-x.com", "@example.com", "a@example..com", "a\"b@example.com"} {
		if v.Validate(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
