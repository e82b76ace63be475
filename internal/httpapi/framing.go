package httpapi

// Hand-written because net/http hides what it needs: a request with both Transfer-Encoding: chunked and
// Content-Length is read as chunked with the Content-Length removed from the header, and the connection is kept
// open (golang/go#80942, fixed after go1.27). RFC 9112 section 6.1 makes a server that receives such a request
// close the connection after responding, since a proxy in front may have framed it by the Content-Length: the
// request-smuggling defence. No library follows HTTP/1.1 framing on the side of net/http's own parser, so this
// file does, as little of it as that takes. Remove it when the toolchain closes such connections by itself.

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// GuardFraming wraps ln so that the handler learns which requests of a connection carried both
// Transfer-Encoding and Content-Length, and sets srv up to pass that on (ConnContext). Such a request is answered
// 400 and its connection closed. It also turns off net/http's own answer to "OPTIONS *", so that every request
// net/http reads reaches the handler, as the bookkeeping needs. A server without it still works; it only keeps
// those connections open, as net/http does.
func GuardFraming(srv *http.Server, ln net.Listener) net.Listener {
	srv.DisableGeneralOptionsHandler = true
	next := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if next != nil {
			ctx = next(ctx, c)
		}
		if fc, ok := c.(*framingConn); ok {
			ctx = context.WithValue(ctx, framingKey{}, fc.state)
		}
		return ctx
	}
	return framingListener{ln}
}

type framingKey struct{}

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c, state: &framingState{}}, nil
}

// framingConn follows the framing of what the server reads from the connection.
type framingConn struct {
	net.Conn
	state *framingState
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.state.feed(p[:n])
	}
	return n, err
}

// CloseWrite half-closes the connection as the one it wraps can (*net.TCPConn, *tls.Conn): net/http does so before
// closing a connection after an error answer, so that the client reads the answer instead of a reset.
func (c *framingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Where the parser of framingState is in the byte stream.
const (
	inHead      = iota // the request line and header fields
	inBody             // a body of known length
	inChunkSize        // a chunk-size line
	inChunk            // chunk data
	inChunkEnd         // the CRLF after chunk data
	inTrailer          // trailer fields, up to an empty line
	lost               // something net/http refuses, after which it closes the connection: stop following
)

// maxFramingLine bounds a line the parser keeps: net/http refuses longer request heads (431) and chunk lines.
const maxFramingLine = 1 << 20

// framingState is the framing parser of one connection and what it found: how many request heads it has seen,
// and which of them had both Transfer-Encoding and Content-Length. net/http reads a connection in one goroutine
// at a time, but the handler asks from another, hence the lock.
type framingState struct {
	mu       sync.Mutex
	heads    int   // complete request heads seen
	smuggled []int // indexes of the heads with both fields
	served   atomic.Int64

	phase   int
	line    []byte
	left    int64 // bytes of body or chunk data still to pass
	started bool  // the request line of the current head was seen
	http10  bool
	te, cl  int    // Transfer-Encoding and Content-Length fields in the current head
	teValue []byte // the first Transfer-Encoding value
	length  int64  // the first Content-Length value; -1 when invalid
}

func (s *framingState) feed(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(p) > 0 && s.phase != lost {
		switch s.phase {
		case inBody, inChunk:
			n := min(int64(len(p)), s.left)
			p, s.left = p[n:], s.left-n
			if s.left == 0 {
				if s.phase == inBody {
					s.phase = inHead
				} else {
					s.phase = inChunkEnd
				}
			}
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.keep(p)
			return
		}
		s.keep(p[:i])
		p = p[i+1:]
		line := bytes.TrimSuffix(s.line, []byte{'\r'})
		s.line = s.line[:0]
		if s.phase != lost {
			s.endLine(line)
		}
	}
}

// keep adds b to the current line, and gives up past maxFramingLine.
func (s *framingState) keep(b []byte) {
	if len(s.line)+len(b) > maxFramingLine {
		s.phase, s.line = lost, nil
		return
	}
	s.line = append(s.line, b...)
}

func (s *framingState) endLine(line []byte) {
	switch s.phase {
	case inHead:
		s.headLine(line)
	case inChunkSize:
		size, _, _ := bytes.Cut(line, []byte{';'})
		n, err := strconv.ParseInt(string(bytes.Trim(size, " \t")), 16, 64)
		switch {
		case err != nil || n < 0:
			s.phase = lost
		case n == 0:
			s.phase = inTrailer
		default:
			s.phase, s.left = inChunk, n
		}
	case inChunkEnd:
		if len(line) != 0 {
			s.phase = lost
			return
		}
		s.phase = inChunkSize
	case inTrailer:
		if len(line) == 0 {
			s.phase = inHead
		}
	}
}

func (s *framingState) headLine(line []byte) {
	switch {
	case !s.started:
		if len(line) == 0 {
			return // empty lines before a request line are skipped
		}
		s.started = true
		s.http10 = bytes.HasSuffix(line, []byte(" HTTP/1.0"))
		return
	case len(line) == 0:
		s.endHead()
		return
	case line[0] == ' ' || line[0] == '\t':
		s.phase = lost // obsolete line folding, which net/http refuses
		return
	}
	name, value, ok := bytes.Cut(line, []byte{':'})
	if !ok {
		s.phase = lost
		return
	}
	value = bytes.Trim(value, " \t")
	switch {
	case asciiEqualFold(name, "Transfer-Encoding"):
		if s.te == 0 {
			s.teValue = append(s.teValue[:0], value...)
		}
		s.te++
	case asciiEqualFold(name, "Content-Length"):
		n, err := strconv.ParseInt(string(value), 10, 64)
		switch {
		case err != nil || n < 0:
			s.length = -1
		case s.cl == 0:
			s.length = n
		case n != s.length:
			s.length = -1 // two different lengths, which net/http refuses
		}
		s.cl++
	}
}

// endHead records the head that ends here and follows its body as net/http frames it: chunked when
// Transfer-Encoding is given (once, as "chunked") on HTTP/1.1, by Content-Length otherwise, none without either.
func (s *framingState) endHead() {
	if s.te > 0 && s.cl > 0 {
		s.smuggled = append(s.smuggled, s.heads)
	}
	s.heads++
	switch {
	case s.te > 0 && !s.http10:
		if s.te != 1 || !asciiEqualFold(s.teValue, "chunked") {
			s.phase = lost
			break
		}
		s.phase = inChunkSize
	case s.cl > 0 && s.length < 0:
		s.phase = lost
	case s.cl > 0 && s.length > 0:
		s.phase, s.left = inBody, s.length
	}
	s.started, s.http10, s.te, s.cl, s.length = false, false, 0, 0, 0
}

// next returns whether the next request the handler serves on the connection had both fields.
func (s *framingState) next() bool {
	i := int(s.served.Add(1) - 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.smuggled {
		if j == i {
			return true
		}
	}
	return false
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// framing answers 400 to a request that carried both Transfer-Encoding and Content-Length (see GuardFraming),
// and closes its connection after the answer.
func (s *Server) framing(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		st, ok := c.Request().Context().Value(framingKey{}).(*framingState)
		if ok && st.next() {
			c.Response().Header().Set(echo.HeaderConnection, "close")
			return &nexus.Error{Kind: nexus.KindInvalid, Code: nexus.CodeValidationFailed,
				Message: "The request has both Transfer-Encoding and Content-Length; its connection is closed (RFC 9112 section 6.1).",
				Fields:  []nexus.FieldError{{In: nexus.InHeader, Name: "Content-Length", Detail: "must not be sent with Transfer-Encoding"}}}
		}
		return next(c)
	}
}
