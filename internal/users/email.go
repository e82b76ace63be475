package users

import (
	"regexp"
	"strings"
)

// emailPattern accepts what a mail system would: a dot-atom local part of RFC 5322 atext (which includes "`") and
// a domain of LDH labels with at least one dot.
var emailPattern = regexp.MustCompile("^" + atext + `+(\.` + atext + `+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$`)

const atext = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"

// ValidEmail reports whether s is an email address a user may have: at most 254 bytes, a local part of 1 to 64
// bytes of dot-separated RFC 5322 atext, and a domain of at least two LDH labels. The contract's "email" format
// accepts exactly these.
func ValidEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return len(s) <= 254 && at >= 1 && at <= 64 && emailPattern.MatchString(s)
}
