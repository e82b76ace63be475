package testdb

import (
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a PostgreSQL server whose connections a test can cut without closing them,
// as a network partition does: a cut proxy keeps every connection open and accepts new ones, but passes no
// byte either way, so a client learns of it only from its own timeouts.
type Proxy struct {
	tb      testing.TB
	ln      net.Listener
	network string // of the server: tcp, or unix for a socket directory
	target  string

	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

// NewProxy starts a proxy on a free loopback port that forwards to the host and port of the PostgreSQL URL
// pgURL, and stops it when the test ends.
func NewProxy(tb testing.TB, pgURL string) *Proxy {
	tb.Helper()
	u, err := url.Parse(pgURL)
	if err != nil {
		tb.Fatalf("testdb: proxy: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testdb: proxy: %v", err)
	}
	p := &Proxy{tb: tb, ln: ln, network: "tcp", target: u.Host}
	if q := u.Query(); strings.HasPrefix(q.Get("host"), "/") {
		port := q.Get("port")
		if port == "" {
			port = "5432"
		}
		p.network, p.target = "unix", q.Get("host")+"/.s.PGSQL."+port
	}
	go p.accept()
	tb.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
	})
	return p
}

// URL returns pgURL with its host and port replaced by the proxy's.
func (p *Proxy) URL(pgURL string) string {
	u, err := url.Parse(pgURL)
	if err != nil {
		p.tb.Fatalf("testdb: proxy: %v", err)
	}
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Del("host")
	q.Del("port")
	u.RawQuery = q.Encode()
	return u.String()
}

// Cut stops every byte from passing, on open connections and new ones alike.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
}

// Restore closes every connection opened so far (their state is lost with the bytes dropped) and forwards new
// ones again.
func (p *Proxy) Restore() {
	p.closeAll()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

func (p *Proxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial(p.network, p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(s, c)
		go p.pipe(c, s)
	}
}

// pipe copies from src to dst, dropping what it reads while the proxy is cut.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.isCut() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
