package contract

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// scanString scans a string whose opening quote is before i; it returns the index after the closing quote,
// whether the string has escapes, and its first fault (ok is false for a syntax error, which a fault does not
// hide: the scan goes on to the closing quote).
func scanString(data []byte, i int) (end int, escaped bool, fault strFault, ok bool) {
	for i < len(data) {
		switch strClass[data[i]] {
		case clsPlain:
			i++
			continue
		case clsHigh:
			// An encoded surrogate, an overlong form or a sequence cut short decodes as (RuneError, 1); U+FFFD
			// itself, sent as UTF-8, has size 3. A sequence never takes in a quote or a backslash.
			if r, size := utf8.DecodeRune(data[i:]); r == utf8.RuneError && size == 1 {
				if fault == strOK {
					fault = strBadUTF8
				}
				i++
			} else {
				i += size
			}
			continue
		}
		switch data[i] {
		case '"':
			return i + 1, escaped, fault, true
		case '\\':
			escaped = true
			if i+1 >= len(data) {
				return 0, false, strOK, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				r, ok := hex4(data, i+2)
				if !ok {
					return 0, false, strOK, false
				}
				i += 6
				switch {
				case r < 0xD800 || r >= 0xE000:
				case r < 0xDC00: // a high surrogate: a low one must follow at once
					if lo, ok := hex4(data, i+2); ok && data[i] == '\\' && data[i+1] == 'u' && 0xDC00 <= lo && lo < 0xE000 {
						i += 6
					} else if fault == strOK {
						fault = strSurrogate // what follows, if it is not a valid escape, is the syntax's business
					}
				default: // a low surrogate on its own
					if fault == strOK {
						fault = strSurrogate
					}
				}
			default:
				return 0, false, strOK, false
			}
		default: // a control character
			return 0, false, strOK, false
		}
	}
	return 0, false, strOK, false
}

// valueFault is the fault of a string value with this fault.
func (f strFault) valueFault() jsonFault {
	if f == strBadUTF8 {
		return jsonBadUTF8
	}
	return jsonSurrogate
}

// nameFault is the fault of a member name with this fault.
func (f strFault) nameFault() jsonFault {
	if f == strBadUTF8 {
		return jsonNameBadUTF8
	}
	return jsonNameSurrogate
}

// hex4 decodes the four hex digits at i, if there are four.
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
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

// scanNumber scans a number starting at i; it returns the index after it, and whether a double cannot hold it
// (it rounds to ±Inf). Only a number of 309 or more integer digits, or with an exponent, can be that large; its
// decimal exponent decides, and strconv only when it is 308 (from 1e308 to just under 1e309).
func scanNumber(data []byte, i int) (end int, inf, ok bool) {
	n, start := len(data), i
	if data[i] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < n && '0' <= data[i] && data[i] <= '9' {
			i++
		}
		return i - start
	}
	intStart := i
	switch {
	case i < n && data[i] == '0':
		i++
	case digits() == 0:
		return 0, false, false
	}
	intDigits, fracStart, fracDigits := i-intStart, 0, 0
	if i < n && data[i] == '.' {
		i++
		fracStart = i
		if fracDigits = digits(); fracDigits == 0 {
			return 0, false, false
		}
	}
	exp, hasExp := 0, false
	if i < n && (data[i] == 'e' || data[i] == 'E') {
		hasExp = true
		i++
		neg := false
		if i < n && (data[i] == '+' || data[i] == '-') {
			neg = data[i] == '-'
			i++
		}
		expStart := i
		for ; i < n && '0' <= data[i] && data[i] <= '9'; i++ {
			if exp < 100_000_000 { // saturate: beyond any body's number of digits, and no overflow even on 32 bits
				exp = exp*10 + int(data[i]-'0')
			}
		}
		if i == expStart {
			return 0, false, false
		}
		if neg {
			exp = -exp
		}
	}
	if !hasExp && intDigits <= 308 {
		return i, false, true
	}
	// The decimal exponent of the first significant digit: the integer part has no leading zero, unless it is 0.
	var e int
	if data[intStart] != '0' {
		e = intDigits - 1 + exp
	} else {
		k := 0
		for k < fracDigits && data[fracStart+k] == '0' {
			k++
		}
		if k == fracDigits {
			return i, false, true // zero
		}
		e = -(k + 1) + exp
	}
	switch {
	case e < 308:
		return i, false, true
	case e > 308:
		return i, true, true
	}
	f, _ := strconv.ParseFloat(string(data[start:i]), 64)
	return i, math.IsInf(f, 0), true
}
