package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// sendRaw sends a request with the given body (contentLength -1: chunked) and header lines through the handler,
// and checks the response against openapi.yaml.
func sendRaw(t testing.TB, e *env, path string, body io.Reader, contentLength int64, header http.Header) resp {
	t.Helper()
	req := httptest.NewRequest("POST", path, body)
	req.ContentLength = contentLength
	if contentLength < 0 {
		req.TransferEncoding = []string{"chunked"}
	}
	req.Header = header
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	r := resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	checkResponse(t, req, r)
	return r
}

// problemFieldDetail returns the detail of the failing field at pointer of a problem.
func problemFieldDetail(t testing.TB, r resp, pointer string) string {
	t.Helper()
	errs, _ := r.obj(t)["errors"].([]any)
	for _, x := range errs {
		if fe := x.(map[string]any); fe["pointer"] == pointer {
			return fe["detail"].(string)
		}
	}
	t.Fatalf("no failing field %q in %s", pointer, r.body)
	return ""
}

// parameterDetail returns the detail of the failing parameter name of a problem.
func parameterDetail(t testing.TB, r resp, name string) string {
	t.Helper()
	errs, _ := r.obj(t)["errors"].([]any)
	for _, x := range errs {
		if fe := x.(map[string]any); fe["parameter"] == name {
			return fe["detail"].(string)
		}
	}
	t.Fatalf("no failing parameter %q in %s", name, r.body)
	return ""
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return b
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	// The best compression: the default level's ratio varies between Go releases (go1.27's packs 4 MiB of
	// spaces into 8,232 bytes, go1.26's into 4,103).
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	must(t, err)
	_, err = zw.Write(b)
	must(t, err)
	must(t, zw.Close())
	return buf.Bytes()
}

// TestJSONBodyFaults: duplicate members (at any level, after unescaping), nesting past MaxJSONDepth and data
// after the document are 400 validation_failed naming the place, before anything is validated or stored; a
// duplicate inside one item of a batch refuses the whole batch, since the whole document is checked first.
func TestJSONBodyFaults(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		login := fmt.Sprintf(`{"email":%q,"password":%q,"client_id":%q`, adminEmail, adminPassword, webClient)
		event := func(extra string) string {
			return fmt.Sprintf(`{"event_id":%q,"event_name":"faulty","event_category":"limits"%s}`, uuid.NewString(), extra)
		}
		objects := func(levels int) string { // {"a":{"a":{}}} is 3 levels
			return strings.Repeat(`{"a":`, levels-1) + "{}" + strings.Repeat("}", levels-1)
		}
		arrays := func(levels int) string { return strings.Repeat("[", levels) + strings.Repeat("]", levels) }
		const dup, deep, syntax = "must be given at most once", "is nested more than 32 levels deep", "must be a valid JSON document"

		cases := []struct {
			name, path, body string
			pointer, detail  string
		}{
			{"duplicate at the top", "/v2/auth/login", login + `,"email":"x@example.com"}`, "/email", dup},
			{"duplicate after unescaping", "/v2/auth/login", login + `,"\u0065mail":"x@example.com"}`, "/email", dup},
			{"duplicate nested", eventsPath, event(`,"properties":{"a":1,"b":{"c":1,"c":2}}`), "/properties/b/c", dup},
			{"duplicate inside a batch item", batchPath, `{"events":[` + event("") + `,` + event(`,"source":"a","source":"b"`) + `]}`,
				"/events/1/source", dup},
			{"duplicate envelope member", batchPath, `{"events":[` + event("") + `],"events":[]}`, "/events", dup},
			{"33 levels of objects", eventsPath, event(`,"properties":` + objects(32)), "/properties" + strings.Repeat("/a", 31), deep},
			{"33 levels of arrays", "/v2/auth/login", login + `,"x":` + arrays(32) + `}`, "/x" + strings.Repeat("/0", 31), deep},
			{"33 levels in a batch item", batchPath, `{"events":[` + event(`,"properties":`+objects(31)) + `]}`,
				"/events/0/properties" + strings.Repeat("/a", 29), deep},
			{"a second document", "/v2/auth/login", login + `}{}`, "", syntax},
			{"trailing data", "/v2/auth/login", login + `} x`, "", syntax},
			{"trailing bracket", batchPath, `{"events":[` + event("") + `]}]`, "", syntax},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := e.do("POST", c.path, c.body, bearer(admin)...)
				expectInvalid(t, r, c.pointer)
				if d := problemFieldDetail(t, r, c.pointer); d != c.detail {
					t.Errorf("detail %q, want %q", d, c.detail)
				}
			})
		}
		t.Run("32 levels pass the body check", func(t *testing.T) {
			// Refused by the rules of the operation (properties nest at most 5 levels; login has no member x),
			// not by the depth limit.
			for _, r := range []resp{
				e.do("POST", eventsPath, event(`,"properties":`+objects(31)), bearer(admin)...),
				e.do("POST", "/v2/auth/login", login+`,"x":`+arrays(31)+`}`),
			} {
				expectProblem(t, r, http.StatusBadRequest, "validation_failed")
				if bytes.Contains(r.body, []byte(deep)) {
					t.Errorf("32 levels refused as too deep: %s", r.body)
				}
			}
		})
		t.Run("the same keys in sibling objects", func(t *testing.T) {
			mustAccept(t, postEvent(e, admin, event(`,"properties":{"a":{"k":1},"b":{"k":1},"k":[{"k":1},{"k":1}]}`)), false)
		})
		if n := countEvents(t, e, admin); n != 1 {
			t.Errorf("%d events stored, want only the one with sibling keys", n)
		}
	})
}

// bombReader is a gzip stream of members of 1 MiB of spaces each, total bytes of it decompressed, made as it
// is read; it counts the compressed bytes read from it.
type bombReader struct {
	member []byte
	left   int64 // members still to send
	off    int
	read   int64
}

func newBombReader(t testing.TB, total int64) *bombReader {
	return &bombReader{member: gzipBytes(t, bytes.Repeat([]byte(" "), 1<<20)), left: total >> 20}
}

func (b *bombReader) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.member[b.off:])
	b.off += n
	if b.off == len(b.member) {
		b.off, b.left = 0, b.left-1
	}
	b.read += int64(n)
	return n, nil
}

// TestGzipBodies: a gzip body is decompressed while it is read, with the operation's limit on the decompressed
// size; a bomb is refused after limit+1 decompressed bytes; gzip that is not valid is 400; any other coding,
// or more than one, is 415 with Accept-Encoding: gzip.
func TestGzipBodies(t *testing.T) {
	forEachDB(t, func(t *testing.T, e *env) {
		admin, _ := e.tokens(webClient)
		hdr := func(pairs ...string) http.Header {
			h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + admin}}
			for i := 0; i+1 < len(pairs); i += 2 {
				h.Add(pairs[i], pairs[i+1])
			}
			return h
		}
		post := func(path string, body []byte, chunked bool, h http.Header) resp {
			t.Helper()
			if chunked {
				return sendRaw(t, e, path, bytes.NewReader(body), -1, h)
			}
			return sendRaw(t, e, path, bytes.NewReader(body), int64(len(body)), h)
		}
		stored := 0

		t.Run("accepted", func(t *testing.T) {
			for _, ce := range []string{"gzip", "x-gzip", "GZIP", " gzip ", "X-Gzip"} {
				for _, chunked := range []bool{false, true} {
					ev := mustJSON(t, newEvent("zipped"))
					mustAccept(t, post(eventsPath, gzipBytes(t, ev), chunked, hdr("Content-Encoding", ce)), false)
					stored++
				}
			}
			ev := mustJSON(t, newEvent("identity"))
			mustAccept(t, post(eventsPath, ev, false, hdr("Content-Encoding", "identity")), false)
			stored++
			batch := mustJSON(t, map[string]any{"events": []any{newEvent("z1"), newEvent("z2"), newEvent("z3")}})
			r := post(batchPath, gzipBytes(t, batch), false, hdr("Content-Encoding", "gzip"))
			if r.status != http.StatusAccepted || r.obj(t)["accepted"] != float64(3) {
				t.Fatalf("gzip batch: %d %s", r.status, r.body)
			}
			stored += 3
			login := mustJSON(t, map[string]any{"email": adminEmail, "password": adminPassword, "client_id": webClient})
			h := hdr("Content-Encoding", "gzip")
			h.Del("Authorization")
			if r := post("/v2/auth/login", gzipBytes(t, login), false, h); r.status != http.StatusOK {
				t.Fatalf("gzip login: %d %s", r.status, r.body)
			}
		})
		t.Run("limit on the decompressed size", func(t *testing.T) {
			const limit = 64 << 10
			for _, chunked := range []bool{false, true} {
				mustAccept(t, post(eventsPath, gzipBytes(t, paddedEvent(t, limit)), chunked, hdr("Content-Encoding", "gzip")), false)
				stored++
				r := post(eventsPath, gzipBytes(t, paddedEvent(t, limit+1)), chunked, hdr("Content-Encoding", "gzip"))
				expectProblem(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
			}
		})
		t.Run("bomb", func(t *testing.T) {
			// 4 MiB of white space in 4 KiB: deflate's best ratio is about 1,000 to 1.
			small := gzipBytes(t, bytes.Repeat([]byte(" "), 4<<20))
			if len(small) > 8<<10 {
				t.Fatalf("the small bomb is %d bytes", len(small))
			}
			for _, path := range []string{eventsPath, batchPath} {
				for _, chunked := range []bool{false, true} {
					expectProblem(t, post(path, small, chunked, hdr("Content-Encoding", "gzip")), http.StatusRequestEntityTooLarge, "payload_too_large")
				}
			}
			// 10 GiB, sent without Content-Length: refused after the batch limit of 1 MiB decompressed, which is
			// a few KiB of the stream.
			// Memory: what the whole process allocates meanwhile (the pipeline's workers included) stays far below
			// what decompressing even 1% of the bomb would take.
			bomb := newBombReader(t, 10<<30)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r := sendRaw(t, e, batchPath, bomb, -1, hdr("Content-Encoding", "gzip"))
			runtime.ReadMemStats(&after)
			expectProblem(t, r, http.StatusRequestEntityTooLarge, "payload_too_large")
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d bytes of the 10 GiB bomb read, %d bytes allocated", bomb.read, alloc)
			if bomb.read > 64<<10 {
				t.Errorf("%d bytes of the bomb read", bomb.read)
			}
			if alloc > 64<<20 {
				t.Errorf("%d bytes allocated while refusing the bomb", alloc)
			}
			// Padding that decompresses to nothing (empty gzip members) still counts against the limit.
			var pad []byte
			empty := gzipBytes(t, nil)
			for len(pad) < 2<<20 {
				pad = append(pad, empty...)
			}
			expectProblem(t, post(batchPath, pad, true, hdr("Content-Encoding", "gzip")), http.StatusRequestEntityTooLarge, "payload_too_large")
			expectProblem(t, post(batchPath, pad, false, hdr("Content-Encoding", "gzip")), http.StatusRequestEntityTooLarge, "payload_too_large")
		})
		t.Run("invalid gzip", func(t *testing.T) {
			ev := mustJSON(t, newEvent("broken"))
			z := gzipBytes(t, ev)
			badCRC := slices.Clone(z)
			badCRC[len(badCRC)-8] ^= 0xff
			for name, body := range map[string][]byte{
				"not gzip":         ev,
				"truncated":        z[:len(z)-10],
				"bad checksum":     badCRC,
				"trailing garbage": append(slices.Clone(z), "garbage"...),
				"empty":            {},
			} {
				for _, chunked := range []bool{false, true} {
					r := post(eventsPath, body, chunked, hdr("Content-Encoding", "gzip"))
					expectInvalid(t, r, "")
					if d := problemFieldDetail(t, r, ""); d != "must be valid gzip data" {
						t.Errorf("%s: detail %q", name, d)
					}
				}
			}
			// Valid gzip of JSON that is not valid: the JSON is described.
			r := post(eventsPath, gzipBytes(t, []byte(`{"a":1,"a":2}`)), false, hdr("Content-Encoding", "gzip"))
			expectInvalid(t, r, "/a")
		})
		t.Run("other codings", func(t *testing.T) {
			ev := mustJSON(t, newEvent("coded"))
			for _, h := range []http.Header{
				hdr("Content-Encoding", "br"), hdr("Content-Encoding", "deflate"), hdr("Content-Encoding", "compress"),
				hdr("Content-Encoding", "zstd"), hdr("Content-Encoding", "unknown"), hdr("Content-Encoding", "gzip, gzip"),
				hdr("Content-Encoding", "identity, gzip"), hdr("Content-Encoding", "gzip, identity"),
				hdr("Content-Encoding", "gzip", "Content-Encoding", "gzip"), hdr("Content-Encoding", "gzip;q=1"),
			} {
				for _, path := range []string{eventsPath, batchPath} {
					r := post(path, gzipBytes(t, ev), false, h)
					expectProblem(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
					if got := failingFields(t, r); !slices.Equal(got, []string{"header:Content-Encoding"}) {
						t.Errorf("%q: fields %q", h.Values("Content-Encoding"), got)
					}
					if ae := r.header.Get("Accept-Encoding"); ae != "gzip" {
						t.Errorf("%q: Accept-Encoding %q", h.Values("Content-Encoding"), ae)
					}
				}
			}
			// Authentication comes first.
			h := hdr("Content-Encoding", "br")
			h.Del("Authorization")
			expectProblem(t, post(eventsPath, ev, false, h), http.StatusUnauthorized, "unauthenticated")
		})
		if n := countEvents(t, e, admin); n != stored {
			t.Errorf("%d events stored, want %d", n, stored)
		}
	})
}
