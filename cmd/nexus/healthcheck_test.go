package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// healthcheckCmd runs `nexus healthcheck args…` as main does and returns its exit status and output.
func healthcheckCmd(vars map[string]string, args ...string) (status int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"healthcheck"}, args...), envFunc(vars), nil, &out, &errOut)
	status = report(&errOut, err)
	return status, out.String(), errOut.String()
}

// TestHealthcheck runs `nexus healthcheck` against a real server: ready and alive (also when NEXUS_HTTP_ADDR
// names every interface), not ready while draining but still alive, and failing in one line once stopped.
func TestHealthcheck(t *testing.T) {
	dir := t.TempDir()
	s := start(t, map[string]string{"NEXUS_DATA_DIR": dir, "NEXUS_HTTP_ADDR": "127.0.0.1:0", "NEXUS_LOG_LEVEL": "warn",
		"NEXUS_SHUTDOWN_DELAY": "3s"}, "serve", "--dev")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.url, "http://"))
	for _, addr := range []string{"127.0.0.1:" + port, "0.0.0.0:" + port, ":" + port} {
		vars := map[string]string{"NEXUS_HTTP_ADDR": addr}
		if st, out, errOut := healthcheckCmd(vars); st != 0 || !strings.Contains(out, "/readyz: 200 OK (ready)") {
			t.Errorf("%s: healthcheck = %d, %q %q; want 0 and ready", addr, st, out, errOut)
		}
		if st, out, errOut := healthcheckCmd(vars, "--live"); st != 0 || !strings.Contains(out, "/healthz: 200 OK (ok)") {
			t.Errorf("%s: healthcheck --live = %d, %q %q; want 0 and ok", addr, st, out, errOut)
		}
	}
	// --addr overrides NEXUS_HTTP_ADDR, as for serve.
	if st, _, errOut := healthcheckCmd(map[string]string{"NEXUS_HTTP_ADDR": "127.0.0.1:1"}, "--addr", "127.0.0.1:"+port); st != 0 {
		t.Errorf("--addr: %d %s", st, errOut)
	}

	// Draining (SIGTERM, for NEXUS_SHUTDOWN_DELAY): not ready, but alive.
	vars := map[string]string{"NEXUS_HTTP_ADDR": "127.0.0.1:" + port}
	s.cancel()
	s.cancel = nil
	var drainingErr string
	eventually(t, "healthcheck fails while draining", func() bool {
		var st int
		st, _, drainingErr = healthcheckCmd(vars)
		return st == 1
	})
	if !strings.Contains(drainingErr, "503 Service Unavailable (draining)") {
		t.Errorf("while draining: %q", drainingErr)
	}
	if st, _, errOut := healthcheckCmd(vars, "--live"); st != 0 {
		t.Errorf("healthcheck --live while draining = %d %s, want 0", st, errOut)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("server exited with %v", err)
	}

	// Stopped: exit status 1 and one line that says why.
	st, out, errOut := healthcheckCmd(vars)
	if st != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "connection refused") {
		t.Errorf("stopped server: %d, stdout %q, stderr %q; want 1 and one line", st, out, errOut)
	}
	// A mistake on the command line is a usage error, not a verdict on the server.
	if st, _, _ := healthcheckCmd(vars, "--frob"); st != 2 {
		t.Errorf("unknown flag: status %d, want 2", st)
	}
}

// TestHealthcheckTLS: with TLS configured the check speaks HTTPS to the loopback listener, whose certificate
// need not name 127.0.0.1; on another address only the configured certificate is accepted.
func TestHealthcheckTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	vars := map[string]string{"NEXUS_DATA_DIR": dir, "NEXUS_HTTP_ADDR": "127.0.0.1:0", "NEXUS_LOG_LEVEL": "warn",
		"NEXUS_SECRET_KEY": base64.StdEncoding.EncodeToString(secret), "NEXUS_TLS_CERT_FILE": certFile, "NEXUS_TLS_KEY_FILE": keyFile}
	s := start(t, vars, "serve")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.url, "https://"))
	vars["NEXUS_HTTP_ADDR"] = "0.0.0.0:" + port
	if st, out, errOut := healthcheckCmd(vars); st != 0 || !strings.Contains(out, "https://127.0.0.1:"+port+"/readyz: 200") {
		t.Errorf("healthcheck over TLS = %d, %q %q", st, out, errOut)
	}
	delete(vars, "NEXUS_TLS_CERT_FILE")
	delete(vars, "NEXUS_TLS_KEY_FILE")
	if st, _, errOut := healthcheckCmd(vars); st != 1 {
		t.Errorf("plain HTTP to the TLS listener = %d %q, want 1", st, errOut)
	}

	// Not loopback: the server must present the configured certificate (checked here on a test server, as a
	// non-loopback address cannot be had in a test).
	pinned, err := healthTLS(certFile, false)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{{"configured certificate", []tls.Certificate{cert}, true}, {"another certificate", nil, false}} {
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		if tc.certs != nil {
			ts.TLS = &tls.Config{Certificates: tc.certs}
		}
		ts.StartTLS()
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: pinned}}
		resp, err := c.Get(ts.URL)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
		ts.Close()
	}
}
