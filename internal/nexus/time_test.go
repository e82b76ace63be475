package nexus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

func TestParseTime(t *testing.T) {
	ok := map[string]time.Time{
		"2026-11-25T09:14:03Z":                time.Date(2026, 11, 25, 9, 14, 3, 0, time.UTC),
		"2026-11-25T09:14:03.12Z":             time.Date(2026, 11, 25, 9, 14, 3, 120e6, time.UTC),
		"2026-11-25T09:14:03.123456789Z":      time.Date(2026, 11, 25, 9, 14, 3, 123456789, time.UTC),
		"2026-11-25T09:14:03.1234567891Z":     time.Date(2026, 11, 25, 9, 14, 3, 123456789, time.UTC), // any number of digits
		"2026-11-25T10:14:03+01:00":           time.Date(2026, 11, 25, 9, 14, 3, 0, time.UTC),
		"2026-11-25T09:14:03-00:00":           time.Date(2026, 11, 25, 9, 14, 3, 0, time.UTC), // unknown local offset
		"2026-11-25T23:59:59+23:59":           time.Date(2026, 11, 25, 0, 0, 59, 0, time.UTC),
		"2026-11-25T00:00:00-23:59":           time.Date(2026, 11, 25, 23, 59, 0, 0, time.UTC),
		"2024-02-29T00:00:00Z":                time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
		"0000-01-01T00:00:00Z":                time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		"9999-12-31T23:59:59.999999999+00:00": time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	for s, want := range ok {
		got, err := nexus.ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{
		"2026-11-25T00:00:00,5Z",    // comma before the fraction
		"2026-11-25T00:00:00.Z",     // no fraction digits
		"2026-11-25T00:00:00+24:00", // offset hours
		"2026-11-25T00:00:00+23:60", // offset minutes
		"2026-11-25T00:00:00+99:00",
		"2026-11-25t00:00:00Z", // lower-case T
		"2026-11-25T00:00:00z", // lower-case Z
		"2026-11-25 00:00:00Z", // a space
		"2026-11-25T00:00Z",    // no seconds
		"2026-11-25T00:00:00",  // no offset
		"2026-11-25T00:00:00+01",
		"2026-11-25T00:00:00+0100",
		"2026-11-25T00:00:00+1:00",
		"2026-11-25T00:00:00 Z",
		"2026-11-25T00:00:00ZZ",
		"2026-11-25T1:00:00Z",  // a one-digit hour (time.Parse takes it)
		"2026-11-25T24:00:00Z", // hour 24
		"2026-11-25T00:60:00Z",
		"2016-12-31T23:59:60Z", // a leap second
		"2026-02-30T00:00:00Z",
		"2025-02-29T00:00:00Z",
		"2026-13-01T00:00:00Z",
		"2026-00-01T00:00:00Z",
		"2026-11-00T00:00:00Z",
		"+2026-11-25T00:00:00Z",
		"-026-11-25T00:00:00Z",
		"20261-11-25T00:00:00Z",
		"2026-11-25",
		"2026-11-25T",
		"",
		"2026-11-25T00:00:00Z\n",
		" 2026-11-25T00:00:00Z",
		"２０２６-11-25T00:00:00Z", // full-width digits
	} {
		if got, err := nexus.ParseTime(s); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", s, got)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("ParseTime(%q): the error %q repeats the input", s, err)
		}
	}
}

func TestParseDate(t *testing.T) {
	for s, want := range map[string]time.Time{
		"2026-11-25": time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC),
		"2024-02-29": time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := nexus.ParseDate(s); err != nil || !got.Equal(want) {
			t.Errorf("ParseDate(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"2026-02-30", "2025-02-29", "2026-13-01", "2026-1-01", "2026-01-1", "+026-01-01", "-026-01-01",
		"20260101", "2026-01-01T00:00:00Z", "2026-01-01 ", "", "2026/01/01"} {
		if got, err := nexus.ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) = %v, want an error", s, got)
		}
	}
}
