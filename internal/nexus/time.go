package nexus

import (
	"errors"
	"time"
)

// The time formats of the contract (JSON Schema's date-time and date, which name RFC 3339), parsed strictly and
// in one place, for the request validator and the services alike. time.Parse alone is not strict enough: it takes
// a comma before the fraction, a one-digit hour, and offsets of 24 hours or 60 minutes.

var (
	errDateTime = errors.New("not an RFC 3339 date-time")
	errDate     = errors.New("not an RFC 3339 full-date")
)

// ParseTime parses an RFC 3339 date-time (section 5.6) strictly: YYYY-MM-DDTHH:MM:SS, then optionally "." and one
// or more digits of fraction (nanoseconds are kept, further digits dropped), then "Z" or an offset ±HH:MM with
// hours 00–23 and minutes 00–59 ("-00:00", an unknown local offset, is UTC). "T" and "Z" must be upper case, which
// section 5.6 lets a specification require and which is what Go, JavaScript and Java write. The date and time must
// exist: no February 30th, no hour 24, and no leap second (second 60), which time.Time cannot hold. The error
// never repeats s.
func ParseTime(s string) (time.Time, error) {
	const base = len("2006-01-02T15:04:05")
	if len(s) < base+1 || !fullDate(s[:10]) || s[10] != 'T' || !twoDigits(s[11:13]) || s[13] != ':' ||
		!twoDigits(s[14:16]) || s[16] != ':' || !twoDigits(s[17:19]) {
		return time.Time{}, errDateTime
	}
	rest := s[base:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 {
			return time.Time{}, errDateTime
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
	case len(rest) == len("+07:00") && (rest[0] == '+' || rest[0] == '-') && twoDigits(rest[1:3]) && rest[3] == ':' &&
		twoDigits(rest[4:6]) && rest[1:3] <= "23" && rest[4:6] <= "59":
	default:
		return time.Time{}, errDateTime
	}
	// The shape is RFC 3339's; Go's parser checks the ranges (month, day of the month, hour, minute, second).
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errDateTime
	}
	return t, nil
}

// ParseDate parses an RFC 3339 full-date strictly: YYYY-MM-DD, a day that exists. It returns midnight UTC of that
// day. The error never repeats s.
func ParseDate(s string) (time.Time, error) {
	if len(s) != len("2006-01-02") || !fullDate(s) {
		return time.Time{}, errDate
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, errDate
	}
	return t, nil
}

// fullDate reports whether s has the shape YYYY-MM-DD.
func fullDate(s string) bool {
	return len(s) == 10 && twoDigits(s[0:2]) && twoDigits(s[2:4]) && s[4] == '-' && twoDigits(s[5:7]) && s[7] == '-' &&
		twoDigits(s[8:10])
}

func twoDigits(s string) bool { return isDigit(s[0]) && isDigit(s[1]) }

func isDigit(b byte) bool { return '0' <= b && b <= '9' }
