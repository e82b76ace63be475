package httpapi

import (
	"slices"
	"strings"
	"testing"
)

// feedFraming feeds a stream to a new framing parser, cut into reads of the given sizes (the rest in one read), and
// returns the parser.
func feedFraming(stream string, cuts ...int) *framingState {
	s := &framingState{}
	b := []byte(stream)
	for _, n := range cuts {
		n = min(n, len(b))
		s.feed(b[:n])
		b = b[n:]
	}
	s.feed(b)
	return s
}

func TestFramingParser(t *testing.T) {
	crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
	tests := []struct {
		name     string
		stream   string
		heads    int
		smuggled []int
		lost     bool
	}{
		{"no body", "GET / HTTP/1.1\nHost: x\n\nGET / HTTP/1.1\nHost: x\n\n", 2, nil, false},
		{"by length", "POST / HTTP/1.1\nContent-Length: 5\n\nabcdeGET / HTTP/1.1\n\n", 2, nil, false},
		{"chunked with extensions and trailers", "POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n3;x=1\nabc\n0\nT: 1\n\nGET / HTTP/1.1\n\n", 2, nil, false},
		{"both fields", "POST / HTTP/1.1\nContent-Length: 3\nTransfer-Encoding: chunked\n\n0\n\nGET / HTTP/1.1\n\n", 2, []int{0}, false},
		{"both fields, second request", "GET / HTTP/1.1\n\nPOST / HTTP/1.1\ntransfer-encoding: chunked\ncontent-length: 0\n\n0\n\n", 2, []int{1}, false},
		{"a body that looks like a request", "POST / HTTP/1.1\nContent-Length: 100\n\nGET / HTTP/1.1\nTransfer-Encoding: chunked\nContent-Length: 1\n\n", 1, nil, false},
		{"HTTP/1.0 frames by length", "POST / HTTP/1.0\nTransfer-Encoding: chunked\nContent-Length: 2\n\nabGET / HTTP/1.1\n\n", 2, []int{0}, false},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", 1, nil, false},
		{"empty lines before the request line", "\n\nGET / HTTP/1.1\n\n", 1, nil, false},
		{"two encodings", "POST / HTTP/1.1\nTransfer-Encoding: gzip, chunked\n\n", 1, nil, true},
		{"two lengths", "POST / HTTP/1.1\nContent-Length: 1\nContent-Length: 2\n\n", 1, nil, true},
		{"folded line", "GET / HTTP/1.1\nX: a\n b\n\n", 0, nil, true},
		{"bad chunk size", "POST / HTTP/1.1\nTransfer-Encoding: chunked\n\nzz\n", 1, nil, true},
	}
	for _, tt := range tests {
		for _, stream := range []string{tt.stream, crlf(tt.stream)} {
			for _, cuts := range [][]int{nil, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {7, 3, 20}} {
				s := feedFraming(stream, cuts...)
				if s.heads != tt.heads || !slices.Equal(s.smuggled, tt.smuggled) || (s.phase == lost) != tt.lost {
					t.Errorf("%s %q cut %v: %d heads, both fields in %v, lost %v; want %d, %v, %v",
						tt.name, stream, cuts, s.heads, s.smuggled, s.phase == lost, tt.heads, tt.smuggled, tt.lost)
				}
			}
		}
	}
}

// FuzzFramingSplits: the framing parser reaches the same state however the stream is cut into reads.
func FuzzFramingSplits(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), []byte{3, 9, 1})
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"), []byte{1, 1, 1, 1, 40})
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcdeGET / HTTP/1.1\r\n\r\n"), []byte{20})
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		sizes := make([]int, len(cuts))
		for i, c := range cuts {
			sizes[i] = int(c%32) + 1
		}
		whole, parts := feedFraming(string(stream)), feedFraming(string(stream), sizes...)
		if whole.heads != parts.heads || !slices.Equal(whole.smuggled, parts.smuggled) || whole.phase != parts.phase || whole.left != parts.left {
			t.Fatalf("in one read: %d heads, %v, phase %d, %d left; cut %v: %d heads, %v, phase %d, %d left",
				whole.heads, whole.smuggled, whole.phase, whole.left, sizes, parts.heads, parts.smuggled, parts.phase, parts.left)
		}
	})
}
