package testredis

import (
	"net"
	"strings"
	"testing"
)

func TestStopStartPause(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL(), "redis://127.0.0.1:") {
		t.Fatalf("URL() = %q", s.URL())
	}
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("PING after Start: %v", err)
	}

	s.Stop()
	if conn, err := net.Dial("tcp", s.Addr()); err == nil {
		conn.Close()
		t.Fatalf("a connection to a stopped server succeeded")
	}

	s.Start()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("PING after restart: %v", err)
	}

	s.Pause()
	if err := ping(s.Addr()); err == nil {
		t.Fatalf("a paused server answered PING")
	}
	s.Resume()
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("PING after Resume: %v", err)
	}
}
