package contract

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// readBody reads the body of an operation that takes JSON (readJSON) or a form (readForm).
func (k *Contract) readBody(x *exchange) error {
	var err error
	switch {
	case x.op.JSONBody:
		x.body, err = readJSON(x.c.Request(), x.op.MaxBody)
	case x.op.FormBody:
		x.body, err = readForm(x.c.Request(), x.op.MaxBody, x.op.FormParams)
	}
	return err
}

// readJSON reads the whole body (readLimited), checks its media type and its JSON (checkJSON), then puts it
// back, as identity, for validation and binding.
func readJSON(req *http.Request, limit int64) ([]byte, error) {
	body, gz, err := readLimited(req, limit)
	if err != nil {
		return nil, err
	}
	if err := checkContentType(req.Header, len(body) > 0); err != nil {
		return nil, err
	}
	// One JSON value and nothing after it (kin-openapi's decoder would ignore trailing data), not too deep, no
	// member twice (every decoder behind this one keeps the last, others may keep the first), and nothing a
	// decoder would change silently: text that is not UTF-8 or has a lone surrogate (U+FFFD to encoding/json, so
	// two different events would look the same), a number beyond a double (Infinity to JavaScript). The whole
	// document, a batch's too: one fault refuses the request.
	if len(body) > 0 {
		if fault, pointer := checkJSON(body); fault != jsonOK {
			return nil, nexus.Invalid(nexus.BodyField(pointer, jsonFaultDetail(fault)))
		}
	}
	putBack(req, body, gz)
	return body, nil
}

// putBack makes body the request's body again, as identity, for validation and binding.
func putBack(req *http.Request, body []byte, gz bool) {
	if gz {
		req.Header.Del(echo.HeaderContentEncoding)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
}

// readLimited reads the whole body, decompressing a gzip body on the way, up to limit bytes (checked while
// reading, not only from Content-Length, and after decompression, so that neither a chunked body nor a gzip
// bomb can make it read more than limit+1 bytes), and reports whether it was gzip.
func readLimited(req *http.Request, limit int64) ([]byte, bool, error) {
	tooLarge := &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodePayloadTooLarge,
		Message: fmt.Sprintf("The request body must not exceed %d bytes.", limit)}
	gz, err := gzipped(req.Header)
	if err != nil {
		return nil, false, err
	}
	wire := limit // bytes that may be read from the connection
	if gz {
		wire = gzipWireLimit(limit)
	}
	if req.ContentLength > wire {
		return nil, false, tooLarge
	}
	src := &readCounter{r: io.LimitReader(req.Body, wire+1)}
	var body []byte
	if gz {
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(src); err == nil {
			body, err = io.ReadAll(io.LimitReader(zr, limit+1))
		}
	} else {
		body, err = io.ReadAll(src)
	}
	switch {
	case int64(len(body)) > limit || src.n > wire:
		return nil, false, tooLarge
	case src.err != nil:
		return nil, false, &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeValidationFailed,
			Message: "The request body could not be read.", Fields: []nexus.FieldError{nexus.BodyField("", "could not be read")}}
	case err != nil: // the body was read, so gzip refused it
		return nil, false, &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeValidationFailed,
			Message: "The request body is not valid gzip data.", Fields: []nexus.FieldError{nexus.BodyField("", "must be valid gzip data")}}
	}
	return body, gz, nil
}

// checkContentType checks the Content-Type of a request with a JSON body (or any Content-Type at all).
func checkContentType(h http.Header, body bool) error {
	if len(h.Values(echo.HeaderContentType)) == 0 && !body {
		return nil
	}
	return checkMediaType(h, echo.MIMEApplicationJSON)
}

// checkMediaType checks that the request's Content-Type is want, given once (two values leave the media type to
// whichever the reader takes: 400), in UTF-8 (RFC 8259 section 8.1 for JSON, and the forms of RFC 6749: no
// charset parameter, or charset=utf-8; anything else is 415).
func checkMediaType(h http.Header, want string) error {
	if len(h.Values(echo.HeaderContentType)) > 1 {
		return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeValidationFailed,
			Message: "The request has more than one Content-Type.",
			Fields:  []nexus.FieldError{{In: nexus.InHeader, Name: "Content-Type", Detail: "must be given once"}}}
	}
	mt, params, err := mime.ParseMediaType(h.Get(echo.HeaderContentType))
	if err != nil || mt != want {
		return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeUnsupportedMediaType,
			Message: "The request body must be " + want + ".",
			Fields:  []nexus.FieldError{{In: nexus.InHeader, Name: "Content-Type", Detail: "must be " + want}}}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeUnsupportedMediaType,
			Message: "The request body must be " + want + " in UTF-8.",
			Fields:  []nexus.FieldError{{In: nexus.InHeader, Name: "Content-Type", Detail: "must have no charset other than utf-8"}}}
	}
	return nil
}

// jsonFaultDetail says what is wrong with the value at a checkJSON fault's pointer, without repeating it.
func jsonFaultDetail(f jsonFault) string {
	switch f {
	case jsonTooDeep:
		return fmt.Sprintf("is nested more than %d levels deep", MaxJSONDepth)
	case jsonDuplicate:
		return "must be given at most once"
	case jsonBadUTF8:
		return "must be valid UTF-8"
	case jsonSurrogate:
		return "must not contain an unpaired UTF-16 surrogate escape"
	case jsonNameBadUTF8:
		return "has a member name that is not valid UTF-8"
	case jsonNameSurrogate:
		return "has a member name with an unpaired UTF-16 surrogate escape"
	case jsonNumberRange:
		return "must be a number within the range of a double (about ±1.8e308)"
	}
	return "must be a valid JSON document"
}

// gzipWireLimit is how many bytes of gzip data may carry limit bytes: deflate's stored blocks, for data that does
// not compress, add 5 bytes in 65,535, and the gzip header and trailer some more. Beyond it, a body is refused
// (413) even if it would decompress to less, so that no body makes the server read without bound.
func gzipWireLimit(limit int64) int64 { return limit + limit/256 + 4096 }

// gzipped reports whether the body is gzip-encoded: Content-Encoding gzip or x-gzip (case-insensitive, RFC 9110
// section 8.4.1.3); identity or no header is no encoding. Any other coding, or more than one, is refused with 415
// and Accept-Encoding: gzip (RFC 7694).
func gzipped(h http.Header) (bool, error) {
	values := h.Values(echo.HeaderContentEncoding)
	if len(values) == 0 {
		return false, nil
	}
	var codings []string
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				codings = append(codings, strings.ToLower(t))
			}
		}
	}
	switch {
	case len(codings) == 0:
		return false, nil
	case len(codings) == 1 && (codings[0] == "gzip" || codings[0] == "x-gzip"):
		return true, nil
	case len(codings) == 1 && codings[0] == "identity":
		return false, nil
	}
	return false, &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeUnsupportedMediaType,
		Message: "The request body must be sent as is or with the gzip content coding.",
		Fields:  []nexus.FieldError{{In: nexus.InHeader, Name: echo.HeaderContentEncoding, Detail: "must be gzip or identity"}},
		Header:  http.Header{echo.HeaderAcceptEncoding: {"gzip"}},
	}
}

// readCounter counts the bytes read through it and keeps the first error other than io.EOF.
type readCounter struct {
	r   io.Reader
	n   int64
	err error
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && c.err == nil {
		c.err = err
	}
	return n, err
}
