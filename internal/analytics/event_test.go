package analytics

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// testNow is the receive time of the tests: a fixed instant with microsecond precision.
var testNow = time.Date(2026, 3, 10, 12, 0, 0, 123456000, time.UTC)

const (
	testOrg   = "0190f000-0000-7000-8000-00000000000a"
	testUser  = "0190f000-0000-7000-8000-000000000001"
	otherUser = "0190f000-0000-7000-8000-000000000002"
	testEvent = "0190f000-0000-7000-8000-0000000000e1"
)

func principal(role nexus.Role) nexus.Principal {
	return nexus.Principal{UserID: testUser, OrganizationID: testOrg, Role: role, SessionID: "s", ClientID: "web"}
}

func tsPtr(t time.Time) *time.Time { return &t }

// invalidPointers returns the body pointers of a validation_failed error, and fails the test if err is not one.
func invalidPointers(t *testing.T, err error) []string {
	t.Helper()
	var e *nexus.Error
	if !errors.As(err, &e) || e.Kind != nexus.KindInvalid || e.Code != "validation_failed" {
		t.Fatalf("error = %v, want validation_failed", err)
	}
	var ptrs []string
	for _, f := range e.Fields {
		if f.In != nexus.InBody {
			t.Errorf("field %+v is not in the body", f)
		}
		ptrs = append(ptrs, f.Name)
	}
	return ptrs
}

func TestPrepareTimestamp(t *testing.T) {
	utcPlus2 := time.FixedZone("UTC+2", 2*60*60)
	tests := []struct {
		name    string
		ts      *time.Time
		want    time.Time // the stored timestamp, when valid
		invalid bool
	}{
		{"omitted: the receive time", nil, testNow, false},
		{"the earliest", tsPtr(Earliest), Earliest, false},
		{"a nanosecond before the earliest", tsPtr(Earliest.Add(-time.Nanosecond)), time.Time{}, true},
		{"the last second of 1999 in another zone", tsPtr(time.Date(2000, 1, 1, 1, 59, 59, 0, utcPlus2)), time.Time{}, true},
		{"the earliest in another zone", tsPtr(time.Date(2000, 1, 1, 2, 0, 0, 0, utcPlus2)), Earliest, false},
		{"long ago", tsPtr(time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)), time.Time{}, true},
		{"exactly one hour ahead", tsPtr(testNow.Add(time.Hour)), testNow.Add(time.Hour), false},
		{"a nanosecond more than one hour ahead", tsPtr(testNow.Add(time.Hour + time.Nanosecond)), time.Time{}, true},
		{"a day ahead", tsPtr(testNow.Add(24 * time.Hour)), time.Time{}, true},
		{"in the past, truncated to microseconds", tsPtr(time.Date(2025, 7, 1, 8, 0, 0, 999999999, utcPlus2)),
			time.Date(2025, 7, 1, 6, 0, 0, 999999000, time.UTC), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := prepare(principal(nexus.RoleMember), Input{Name: "click", Category: "ui", Timestamp: tt.ts}, testNow)
			if tt.invalid {
				if diff := cmp.Diff([]string{"/timestamp"}, invalidPointers(t, err)); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			if !got.Timestamp.Equal(tt.want) || got.Timestamp.Location() != time.UTC {
				t.Errorf("Timestamp = %v, want %v in UTC", got.Timestamp, tt.want)
			}
			if !got.ReceivedAt.Equal(testNow) {
				t.Errorf("ReceivedAt = %v, want %v", got.ReceivedAt, testNow)
			}
		})
	}
}

// TestCheckRawTimestamp: CheckRaw judges the range of a timestamp only when it is an RFC 3339 date-time by the
// same strict parser as the validator's (nexus.ParseTime); one the schema refuses is not reported twice.
func TestCheckRawTimestamp(t *testing.T) {
	s, _ := newTestService(t, newFakeStore(), testNow)
	for ts, want := range map[string][]string{
		"1999-12-31T00:00:00.5Z":    {"/timestamp"},
		"1999-12-31T00:00:00,5Z":    nil, // a comma: not RFC 3339, the schema's format check names it
		"1999-12-31T00:00:00+24:00": nil,
		"1999-12-31T1:00:00Z":       nil,
		"2026-03-10T12:00:00Z":      nil,
	} {
		var got []string
		for _, f := range s.CheckRaw([]byte(`{"timestamp":"` + ts + `"}`)) {
			got = append(got, f.Name)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("CheckRaw with timestamp %s: fields (-want +got):\n%s", ts, diff)
		}
	}
}

// object returns a JSON object with n members "k000"… whose values are value.
func object(n int, value string) string {
	members := make([]string, n)
	for i := range members {
		members[i] = fmt.Sprintf(`"k%03d":%s`, i, value)
	}
	return "{" + strings.Join(members, ",") + "}"
}

func TestPrepareProperties(t *testing.T) {
	// A member "a" whose string value makes the compact object n bytes long: `{"a":""}` is 8 bytes.
	sized := func(n int, ch string) string { return `{"a":"` + strings.Repeat(ch, n-8) + `"}` }
	tests := []struct {
		name  string
		props string
		want  string   // the canonical form, when valid
		ptrs  []string // the failing pointers, when invalid
	}{
		// Canonical form.
		{"omitted", "", "{}", nil},
		{"empty", "{}", "{}", nil},
		{"members sorted", `{"b":1,"a":2,"c":3}`, `{"a":2,"b":1,"c":3}`, nil},
		{"nested members sorted", `{"z":{"y":1,"x":[{"d":1,"c":2}]},"a":true}`, `{"a":true,"z":{"x":[{"c":2,"d":1}],"y":1}}`, nil},
		{"whitespace removed", "{ \"a\" :\t[ 1 , 2 ] ,\n\"b\" : null }", `{"a":[1,2],"b":null}`, nil},
		{"big numbers kept exactly", `{"n":12345678901234567890,"f":0.1000000000000000055511151231257827,"e":1E+400,"m":-0,"d":1.50}`,
			`{"d":1.50,"e":1E+400,"f":0.1000000000000000055511151231257827,"m":-0,"n":12345678901234567890}`, nil},
		{"no HTML escaping", `{"h":"<a href=\"x\">&amp;</a>"}`, `{"h":"<a href=\"x\">&amp;</a>"}`, nil},
		{"escapes decoded", `{"\u0061":"caf\u00e9 \ud83d\ude00 \/"}`, `{"a":"café 😀 /"}`, nil},
		{"invalid UTF-8 replaced", "{\"a\":\"x\xffy\"}", `{"a":"x` + "\uFFFD" + `y"}`, nil},
		{"lone surrogate replaced", `{"a":"\ud800"}`, `{"a":"` + "\uFFFD" + `"}`, nil},

		// Not an object.
		{"array", `[1,2]`, "", []string{"/properties"}},
		{"string", `"x"`, "", []string{"/properties"}},
		{"number", `1`, "", []string{"/properties"}},
		{"null", `null`, "", []string{"/properties"}},
		{"not JSON", `{"a":`, "", []string{"/properties"}},

		// Size, as compact JSON.
		{"exactly 32 KiB", sized(MaxPropertiesBytes, "x"), sized(MaxPropertiesBytes, "x"), nil},
		{"one byte more than 32 KiB", sized(MaxPropertiesBytes+1, "x"), "", []string{"/properties"}},
		{"32 KiB of HTML characters", sized(MaxPropertiesBytes, "<"), sized(MaxPropertiesBytes, "<"), nil},
		{"32 KiB of two-byte characters", `{"a":"` + strings.Repeat("é", (MaxPropertiesBytes-8)/2) + `"}`,
			`{"a":"` + strings.Repeat("é", (MaxPropertiesBytes-8)/2) + `"}`, nil},
		{"large only with whitespace", `{"a":` + strings.Repeat(" ", 2*MaxPropertiesBytes) + `1}`, `{"a":1}`, nil},

		// Depth: the object is level 1, and arrays are levels too.
		{"5 levels of objects", `{"a":{"b":{"c":{"d":{"e":"x"}}}}}`, `{"a":{"b":{"c":{"d":{"e":"x"}}}}}`, nil},
		{"6 levels of objects", `{"a":{"b":{"c":{"d":{"e":{}}}}}}`, "", []string{"/properties/a/b/c/d/e"}},
		{"5 levels with arrays", `{"a":[[[[1]]]],"b":[{"c":[{}]}]}`, `{"a":[[[[1]]]],"b":[{"c":[{}]}]}`, nil},
		{"6 levels with arrays", `{"a":[[[[[1]]]]]}`, "", []string{"/properties/a/0/0/0/0"}},
		{"6 levels, mixed", `{"a":[{"b":[{"c":[]}]}]}`, "", []string{"/properties/a/0/b/0/c"}},
		{"too deep under an escaped name", `{"a/b":{"c~d":{"x":{"y":{"z":[]}}}}}`, "", []string{"/properties/a~1b/c~0d/x/y/z"}},
		{"two places too deep", `{"a":{"b":{"c":{"d":{"e":[]}}}},"f":{"g":{"h":{"i":{"j":{}}}}}}`, "",
			[]string{"/properties/a/b/c/d/e", "/properties/f/g/h/i/j"}},

		// Members.
		{"255 members", object(MaxPropertiesKeys, "1"), object(MaxPropertiesKeys, "1"), nil},
		{"256 members", object(MaxPropertiesKeys+1, "1"), "", []string{"/properties"}},
		{"256 members nested", `{"a":` + object(MaxPropertiesKeys+1, "1") + `}`, "", []string{"/properties/a"}},
		{"256 members in an array", `{"a":[{},` + object(MaxPropertiesKeys+1, "1") + `]}`, "", []string{"/properties/a/1"}},
		{"255 members at every level", `{"a":` + object(MaxPropertiesKeys, "{}") + `}`, `{"a":` + object(MaxPropertiesKeys, "{}") + `}`, nil},

		// NUL characters.
		{"NUL in a string", `{"a":"x\u0000y"}`, "", []string{"/properties/a"}},
		{"NUL in a nested string", `{"a":{"b":["ok","\u0000"]}}`, "", []string{"/properties/a/b/1"}},
		{"NUL in a key", `{"a\u0000b":1}`, "", []string{"/properties"}},
		{"NUL in a nested key", `{"a":{"\u0000":1}}`, "", []string{"/properties/a"}},
		{"escaped NUL text is fine", `{"a":"\\u0000"}`, `{"a":"\\u0000"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Name: "click", Category: "ui"}
			if tt.props != "" {
				in.Properties = []byte(tt.props)
			}
			got, err := prepare(principal(nexus.RoleMember), in, testNow)
			if tt.ptrs != nil {
				if diff := cmp.Diff(tt.ptrs, invalidPointers(t, err)); diff != "" {
					t.Errorf("fields (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			if string(got.Properties) != tt.want {
				t.Errorf("Properties = %.200s, want %.200s", got.Properties, tt.want)
			}
		})
	}
}

func TestPrepareReportsEveryField(t *testing.T) {
	in := Input{Name: "click", Category: "ui", Timestamp: tsPtr(Earliest.AddDate(-1, 0, 0)), Properties: []byte(`{"a":"\u0000"}`)}
	_, err := prepare(principal(nexus.RoleAdmin), in, testNow)
	if diff := cmp.Diff([]string{"/timestamp", "/properties/a"}, invalidPointers(t, err)); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestPrepareUser(t *testing.T) {
	tests := []struct {
		name      string
		role      nexus.Role
		userID    string
		wantUser  string
		wantCheck bool
		denied    bool
	}{
		{"omitted: the caller", nexus.RoleMember, "", testUser, false, false},
		{"the caller, named", nexus.RoleMember, testUser, testUser, false, false},
		{"the caller, in upper case", nexus.RoleMember, strings.ToUpper(testUser), testUser, false, false},
		{"another user, admin", nexus.RoleAdmin, otherUser, otherUser, true, false},
		{"another user, analyst", nexus.RoleAnalyst, strings.ToUpper(otherUser), otherUser, true, false},
		{"another user, manager", nexus.RoleManager, otherUser, "", false, true},
		{"another user, member", nexus.RoleMember, otherUser, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := prepare(principal(tt.role), Input{Name: "click", Category: "ui", UserID: tt.userID}, testNow)
			if tt.denied {
				if !errors.Is(err, nexus.ErrInsufficientPermission) {
					t.Fatalf("prepare = %v, want insufficient_permission", err)
				}
				if !strings.Contains(err.Error(), string(nexus.PermEventsWriteAnyUser)) {
					t.Errorf("error %q does not name %s", err, nexus.PermEventsWriteAnyUser)
				}
				return
			}
			if err != nil {
				t.Fatalf("prepare: %v", err)
			}
			if got.UserID != tt.wantUser || got.CheckUser != tt.wantCheck {
				t.Errorf("UserID, CheckUser = %q, %v; want %q, %v", got.UserID, got.CheckUser, tt.wantUser, tt.wantCheck)
			}
			if got.OrganizationID != testOrg {
				t.Errorf("OrganizationID = %q, want the caller's %q", got.OrganizationID, testOrg)
			}
		})
	}
}

func TestPrepareIDs(t *testing.T) {
	p := principal(nexus.RoleMember)
	a, err := prepare(p, Input{Name: "click", Category: "ui"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	b, err := prepare(p, Input{Name: "click", Category: "ui"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.ID, a.EventID, b.ID, b.EventID} {
		u, err := uuid.Parse(id)
		if err != nil || u.String() != id {
			t.Errorf("id %q is not a UUID in canonical form", id)
		}
		if u.Version() != 7 {
			t.Errorf("id %q is UUID version %d, want 7", id, u.Version())
		}
	}
	if a.EventID == b.EventID || a.ID == b.ID || a.ID == a.EventID {
		t.Errorf("generated ids are not all distinct: %q %q %q %q", a.ID, a.EventID, b.ID, b.EventID)
	}
	if a.Fingerprint != b.Fingerprint {
		t.Errorf("two events differing only in their generated event ids have different fingerprints")
	}

	c, err := prepare(p, Input{EventID: strings.ToUpper(testEvent), Name: "click", Category: "ui"}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if c.EventID != testEvent {
		t.Errorf("EventID = %q, want the given one in lower case %q", c.EventID, testEvent)
	}
	if c.ID == c.EventID {
		t.Errorf("ID is the client's event id; want a new one")
	}
}

func TestFingerprint(t *testing.T) {
	admin := principal(nexus.RoleAdmin)
	at := time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC)
	base := Input{EventID: testEvent, Name: "click", Category: "ui", Timestamp: &at,
		Properties: []byte(`{"a":1,"b":{"c":[1,2],"d":"x"}}`), UserID: otherUser, Source: "web"}
	fp := func(t *testing.T, in Input, received time.Time) string {
		t.Helper()
		ev, err := prepare(admin, in, received)
		if err != nil {
			t.Fatalf("prepare: %v", err)
		}
		return ev.Fingerprint
	}
	want := fp(t, base, testNow)
	if len(want) != 64 {
		t.Errorf("fingerprint %q is not a hex SHA-256", want)
	}

	change := func(fn func(*Input)) Input {
		in := base
		fn(&in)
		return in
	}
	same := []struct {
		name     string
		in       Input
		received time.Time
	}{
		{"members reordered", change(func(in *Input) { in.Properties = []byte(`{"b":{"d":"x","c":[1,2]},"a":1}`) }), testNow},
		{"whitespace", change(func(in *Input) { in.Properties = []byte(" {\"a\": 1, \"b\": {\"c\": [1, 2], \"d\": \"x\"}}\n") }), testNow},
		{"escapes", change(func(in *Input) { in.Properties = []byte(`{"\u0061":1,"b":{"c":[1,2],"d":"\u0078"}}`) }), testNow},
		{"received later", base, testNow.Add(time.Minute)},
		{"another event id", change(func(in *Input) { in.EventID = uuid.NewString() }), testNow},
		{"the same instant in another zone", change(func(in *Input) { in.Timestamp = tsPtr(at.In(time.FixedZone("X", -5*3600))) }), testNow},
		{"the user in upper case", change(func(in *Input) { in.UserID = strings.ToUpper(otherUser) }), testNow},
	}
	for _, tt := range same {
		t.Run("same/"+tt.name, func(t *testing.T) {
			if got := fp(t, tt.in, tt.received); got != want {
				t.Errorf("fingerprint changed")
			}
		})
	}

	different := []struct {
		name string
		in   Input
	}{
		{"name", change(func(in *Input) { in.Name = "clack" })},
		{"category", change(func(in *Input) { in.Category = "UI" })},
		{"name and category split elsewhere", change(func(in *Input) { in.Name, in.Category = "clicku", "i" })},
		{"timestamp by a microsecond", change(func(in *Input) { in.Timestamp = tsPtr(at.Add(time.Microsecond)) })},
		{"timestamp omitted", change(func(in *Input) { in.Timestamp = nil })},
		{"user", change(func(in *Input) { in.UserID = "0190f000-0000-7000-8000-000000000003" })},
		{"user omitted: the caller", change(func(in *Input) { in.UserID = "" })},
		{"source", change(func(in *Input) { in.Source = "ios" })},
		{"source omitted", change(func(in *Input) { in.Source = "" })},
		{"a property value", change(func(in *Input) { in.Properties = []byte(`{"a":2,"b":{"c":[1,2],"d":"x"}}`) })},
		{"a number's form", change(func(in *Input) { in.Properties = []byte(`{"a":1.0,"b":{"c":[1,2],"d":"x"}}`) })},
		{"array order", change(func(in *Input) { in.Properties = []byte(`{"a":1,"b":{"c":[2,1],"d":"x"}}`) })},
		{"a property added", change(func(in *Input) { in.Properties = []byte(`{"a":1,"b":{"c":[1,2],"d":"x"},"e":null}`) })},
		{"properties omitted", change(func(in *Input) { in.Properties = nil })},
	}
	seen := map[string]string{want: "base"}
	for _, tt := range different {
		t.Run("different/"+tt.name, func(t *testing.T) {
			got := fp(t, tt.in, testNow)
			if prev, ok := seen[got]; ok {
				t.Errorf("fingerprint equals that of %q", prev)
			}
			seen[got] = tt.name
		})
	}

	// Without a timestamp, a retry received later is the same event.
	noTS := change(func(in *Input) { in.Timestamp = nil })
	if fp(t, noTS, testNow) != fp(t, noTS, testNow.Add(time.Hour)) {
		t.Errorf("an event without a timestamp has another fingerprint when received later")
	}
	// Properties omitted and empty are the same.
	if fp(t, change(func(in *Input) { in.Properties = nil }), testNow) != fp(t, change(func(in *Input) { in.Properties = []byte(`{}`) }), testNow) {
		t.Errorf("omitted and empty properties have different fingerprints")
	}
}

// TestReceiptID: an event's id is a UUIDv7 whose time is its receive time's millisecond (the store's retention
// on SQLite walks ids up to the cutoff's), whatever the wall clock says.
func TestReceiptID(t *testing.T) {
	for _, received := range []time.Time{time.Date(2026, 11, 25, 9, 0, 0, 123456000, time.UTC), time.Date(2040, 2, 29, 23, 59, 59, 999000000, time.UTC)} {
		id := uuid.MustParse(receiptID(received))
		sec, nsec := id.Time().UnixTime()
		if id.Version() != 7 || id.Variant() != uuid.RFC4122 || time.Unix(sec, nsec).UnixMilli() != received.UnixMilli() {
			t.Errorf("receiptID(%s) = %s: version %d, variant %v, time %s", received, id, id.Version(), id.Variant(), time.Unix(sec, nsec).UTC())
		}
		if a, b := receiptID(received), receiptID(received); a == b {
			t.Errorf("two ids of one millisecond are equal: %s", a)
		}
	}
}
