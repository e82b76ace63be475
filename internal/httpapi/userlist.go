package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/gen"
)

// userListResponse is gen.ListUsers200JSONResponse with a faster encoder of its body: the listing's answer is
// encoded on every request, and encoding/json's reflection, its Email.MarshalJSON (a mail.ParseAddress per
// user) and its allocations were about a third of the listing's CPU. The bytes and headers are exactly those
// of the generated VisitListUsersResponse (TestUserListEncoding and FuzzUserListEncoding compare them); any
// value the fast path does not cover byte for byte (a user with activity or permissions, a string needing
// escapes, an email that is not a plain dot-atom address, a year outside 0–9999) is handed to the generated
// code.
type userListResponse gen.ListUsers200JSONResponse

// VisitListUsersResponse implements gen.ListUsersResponseObject.
func (r userListResponse) VisitListUsersResponse(w http.ResponseWriter) error {
	bp := listBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledListBuf {
			listBufs.Put(bp)
		}
	}()
	b, ok := appendUserList((*bp)[:0], &r.Body)
	*bp = b
	if !ok {
		return gen.ListUsers200JSONResponse(r).VisitListUsersResponse(w)
	}
	// The generated code's headers, in its order.
	w.Header().Set("Content-Type", "application/json")
	h := r.Headers
	for _, kv := range []struct {
		name  string
		value *string
	}{{"Cache-Control", h.CacheControl}, {"RateLimit", h.RateLimit}, {"RateLimit-Policy", h.RateLimitPolicy}, {"X-Request-Id", h.XRequestId}} {
		if kv.value != nil {
			w.Header().Set(kv.name, *kv.value)
		}
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(b)
	return err
}

// listBufs recycles the listing's encoding buffers; one of maxPooledListBuf bytes or less is kept.
var listBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxPooledListBuf = 256 << 10

// appendUserList appends what json.NewEncoder(w).Encode(l) writes (newline included) and reports whether it
// could; when it could not, what it appended is to be dropped.
func appendUserList(b []byte, l *gen.UserList) ([]byte, bool) {
	b = append(b, `{"data":`...)
	if l.Data == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range l.Data {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendUser(b, &l.Data[i]); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	p := &l.Pagination
	b = append(b, `,"pagination":{"has_more":`...)
	b = strconv.AppendBool(b, p.HasMore)
	b = append(b, `,"limit":`...)
	b = strconv.AppendInt(b, int64(p.Limit), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, int64(p.Offset), 10)
	b = append(b, `,"total":`...)
	b = strconv.AppendInt(b, int64(p.Total), 10)
	return append(b, "}}\n"...), true
}

// appendUser appends u as encoding/json encodes a gen.User, if the fast path covers it.
func appendUser(b []byte, u *gen.User) ([]byte, bool) {
	if u.Activity != nil || u.Permissions != nil {
		return b, false
	}
	var ok bool
	b = append(b, `{"created_at":"`...)
	if b, ok = appendTime(b, u.CreatedAt); !ok {
		return b, false
	}
	b = append(b, `","email":"`...)
	if !plainEmail(string(u.Email)) {
		return b, false
	}
	b = append(b, u.Email...)
	b = append(b, `","id":"`...)
	b = appendUUID(b, u.Id)
	b = append(b, `","name":"`...)
	if b, ok = appendPlain(b, u.Name); !ok {
		return b, false
	}
	b = append(b, `","organization_id":"`...)
	b = appendUUID(b, u.OrganizationId)
	b = append(b, `","role":"`...)
	if b, ok = appendPlain(b, string(u.Role)); !ok {
		return b, false
	}
	b = append(b, `","status":"`...)
	if b, ok = appendPlain(b, string(u.Status)); !ok {
		return b, false
	}
	b = append(b, `","updated_at":"`...)
	if b, ok = appendTime(b, u.UpdatedAt); !ok {
		return b, false
	}
	return append(b, `"}`...), true
}

// appendTime appends t as time.Time.MarshalJSON does, without its quotes.
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b, err := t.AppendText(b) // MarshalJSON's strict RFC 3339, between its quotes
	return b, err == nil
}

// appendPlain appends s, which must need no escaping in JSON: printable ASCII other than `"`, `\` and the
// characters encoding/json escapes for HTML (<, >, &).
func appendPlain(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return b, false
		}
	}
	return append(b, s...), true
}

// plainEmail reports whether Email.MarshalJSON (mail.ParseAddress, then json.Marshal of the address) encodes
// s as s itself between quotes: a dot-atom local part and domain of letters, digits and "+-_", one "@".
func plainEmail(s string) bool {
	at := -1
	prev := byte('.') // no leading dot
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '+', c == '-', c == '_':
		case c == '.' || c == '@':
			if prev == '.' || prev == '@' {
				return false
			}
			if c == '@' {
				if at >= 0 {
					return false
				}
				at = i
			}
		default:
			return false
		}
		prev = c
	}
	return at > 0 && prev != '.' && prev != '@'
}

// appendUUID appends u's canonical text form, as its MarshalText gives it.
func appendUUID(b []byte, u uuid.UUID) []byte {
	const hex = "0123456789abcdef"
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[x>>4], hex[x&0xf])
	}
	return b
}
