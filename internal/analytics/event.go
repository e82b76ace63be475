package analytics

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// prepare checks what the schema cannot (the timestamp's range, the properties' size, depth, members and
// characters, and who may write events about whom) and turns the input into an event ready to be stored.
// Field pointers are relative to the event ("/timestamp"). Errors: validation_failed, insufficient_permission.
func prepare(p nexus.Principal, in Input, received time.Time) (Pending, error) {
	ts, tsKey, props, fields := checkFields(in, received)
	if len(fields) > 0 {
		return Pending{}, nexus.Invalid(fields...)
	}

	userID := strings.ToLower(in.UserID)
	check := false
	if p.Service && userID == "" {
		// A service client is no user: its events say whom they are about.
		return Pending{}, nexus.Invalid(nexus.BodyField("/user_id", "is required in events sent with a service client's token"))
	}
	if userID == "" || userID == strings.ToLower(p.UserID) {
		userID = strings.ToLower(p.UserID)
	} else {
		if err := nexus.Authorize(p, nexus.PermEventsWriteAnyUser, ""); err != nil {
			return Pending{}, err
		}
		check = true
	}
	eventID := strings.ToLower(in.EventID)
	if eventID == "" {
		eventID = newID()
	}
	ev := Event{
		ID: receiptID(received), EventID: eventID, OrganizationID: p.OrganizationID, UserID: userID,
		Name: in.Name, Category: in.Category, Source: in.Source, Properties: props,
		Timestamp: ts, ReceivedAt: received,
	}
	return Pending{Event: ev, Fingerprint: fingerprint(ev, tsKey), CheckUser: check}, nil
}

// checkFields checks the timestamp's range and the properties, and returns the timestamp to store (the receive
// time when none was sent), its key for the fingerprint, and the canonical properties.
func checkFields(in Input, received time.Time) (ts time.Time, tsKey string, props []byte, fields []nexus.FieldError) {
	ts, tsKey, props = received, "-", []byte("{}")
	if in.Timestamp != nil {
		t := in.Timestamp.UTC()
		switch {
		case t.Before(Earliest):
			fields = append(fields, nexus.BodyField("/timestamp", "must not be before 2000-01-01T00:00:00Z"))
		case t.After(received.Add(MaxFuture)):
			fields = append(fields, nexus.BodyField("/timestamp", "must not be more than 1 hour ahead of the server's clock"))
		}
		ts = t.Truncate(time.Microsecond)
		tsKey = ts.Format(time.RFC3339Nano)
	}
	if len(in.Properties) > 0 {
		canon, ok := canonicalFast(in.Properties)
		if !ok {
			var errs []nexus.FieldError
			canon, errs = canonicalProperties(in.Properties)
			fields = append(fields, errs...)
		}
		props = canon
	}
	return ts, tsKey, props, fields
}

// CheckRaw applies the rules JSON Schema cannot express (the timestamp's range; the properties' size, depth,
// members and characters) to the members of a raw event that have the right type, whatever else is wrong
// with it, so that a request that fails its schema is told about these fields too. Pointers are relative to
// the event.
func (s *Service) CheckRaw(raw []byte) []nexus.FieldError {
	var m map[string]json.RawMessage // not a struct: its members would match keys in any case
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	var in Input
	var ts string
	if json.Unmarshal(m["timestamp"], &ts) == nil {
		if t, err := nexus.ParseTime(ts); err == nil {
			in.Timestamp = &t
		}
	}
	if p := bytes.TrimSpace(m["properties"]); len(p) > 0 && p[0] == '{' {
		in.Properties = p
	}
	_, _, _, fields := checkFields(in, s.received())
	return fields
}

// fingerprint identifies an event's content as the client sent it: a retry of an event without a timestamp has
// the same fingerprint although its receive time, and so its stored timestamp, differ.
func fingerprint(ev Event, tsKey string) string {
	var buf [512]byte // the usual event's whole text: hashed in one call, without an allocation
	b := buf[:0]
	for _, part := range [...]string{ev.Name, ev.Category, tsKey, ev.UserID, ev.Source} {
		b = append(append(b, part...), 0)
	}
	sum := sha256.Sum256(append(b, ev.Properties...))
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// receiptID returns the id of an event received at received: a UUIDv7 whose time is the receive time's
// millisecond (on the service's clock, which is also received_at's), so that ids sort by receive time, which
// the processor's order and the retention's deletion on SQLite (store.Events.MaintainEvents) rely on.
func receiptID(received time.Time) string {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
		id[6] = id[6]&0x0f | 0x70 // version 7
	}
	ms := received.UnixMilli()
	for i := 5; i >= 0; i-- {
		id[i] = byte(ms) // #nosec G115 -- the low byte, on purpose
		ms >>= 8
	}
	return id.String()
}

// newID returns a UUIDv7, so that ids sort by creation time.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// canonicalProperties checks a properties object and returns it as compact JSON with sorted members, numbers
// as sent and no HTML escaping: the form that is stored and fingerprinted. It defines that form; canonicalFast
// makes the same in one pass, and leaves to it every object with a problem. Its text is valid UTF-8 without lone
// surrogates, which the HTTP layer refuses before: were any left, encoding/json would turn them into U+FFFD, so
// that what is stored is still valid text on every database.
func canonicalProperties(raw []byte) ([]byte, []nexus.FieldError) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, []nexus.FieldError{nexus.BodyField("/properties", "must be a JSON object")}
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, []nexus.FieldError{nexus.BodyField("/properties", "must be a JSON object")}
	}
	var fields []nexus.FieldError
	walkProperties(v, "/properties", 1, &fields)
	if len(fields) > 0 {
		return nil, fields
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, []nexus.FieldError{nexus.BodyField("/properties", "must be a JSON object")}
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(out) > MaxPropertiesBytes {
		return nil, []nexus.FieldError{nexus.BodyField("/properties",
			fmt.Sprintf("must be at most %d bytes as compact JSON", MaxPropertiesBytes))}
	}
	return out, nil
}

// walkProperties reports members nested too deep, objects with too many members and NUL characters. It stops
// descending where a value is already too deep, and reports each problem once.
func walkProperties(v any, pointer string, depth int, fields *[]nexus.FieldError) {
	if len(*fields) >= 20 {
		return // enough to act on; a hostile document could otherwise produce thousands
	}
	switch x := v.(type) {
	case map[string]any:
		if depth > MaxPropertiesDepth {
			*fields = append(*fields, nexus.BodyField(pointer, fmt.Sprintf("is nested more than %d levels deep", MaxPropertiesDepth)))
			return
		}
		if len(x) > MaxPropertiesKeys {
			*fields = append(*fields, nexus.BodyField(pointer, fmt.Sprintf("must have at most %d members", MaxPropertiesKeys)))
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m := x[k]
			p := pointer + "/" + escapePointer(k)
			if strings.ContainsRune(k, 0) {
				*fields = append(*fields, nexus.BodyField(pointer, "has a member name with a NUL character"))
				continue
			}
			walkProperties(m, p, depth+1, fields)
		}
	case []any:
		if depth > MaxPropertiesDepth {
			*fields = append(*fields, nexus.BodyField(pointer, fmt.Sprintf("is nested more than %d levels deep", MaxPropertiesDepth)))
			return
		}
		for i, m := range x {
			walkProperties(m, pointer+"/"+strconv.Itoa(i), depth+1, fields)
		}
	case string:
		if strings.ContainsRune(x, 0) {
			*fields = append(*fields, nexus.BodyField(pointer, "must not contain a NUL character"))
		}
	}
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return pointerEscaper.Replace(s)
}
