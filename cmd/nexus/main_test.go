package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/httpapi/apitest"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// server is a `nexus serve` started by run() in this process.
type server struct {
	url    string
	stdout *lockedBuffer
	cancel context.CancelFunc
	done   chan error
	client *http.Client
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func envFunc(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

var listening = regexp.MustCompile(`listening on (https?://[^\s]+)`)

// start runs `nexus <args>` with the environment vars and waits until /healthz answers.
func start(t *testing.T, vars map[string]string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{stdout: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1), client: &http.Client{Timeout: 10 * time.Second, Transport: apitest.Transport{T: t, Base: tlsTransport}}}
	go func() { s.done <- run(ctx, args, envFunc(vars), strings.NewReader(""), s.stdout, io.Discard) }()
	t.Cleanup(func() { s.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			t.Fatalf("server exited: %v\n%s", err, s.stdout)
		default:
		}
		if m := listening.FindStringSubmatch(s.stdout.String()); m != nil && s.url == "" {
			s.url = m[1]
		}
		if s.url != "" {
			if r, err := s.client.Get(s.url + "/healthz"); err == nil {
				r.Body.Close()
				if r.StatusCode == 200 {
					return s
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server did not become healthy:\n%s", s.stdout)
	return nil
}

// stop sends the equivalent of SIGTERM and expects a clean exit.
func (s *server) stop(t *testing.T) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("server exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("server did not stop")
	}
}

func (s *server) post(t *testing.T, path, token string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", s.url+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header
}

// walkthrough is the README's curl walk-through: log in, refresh, log out.
func walkthrough(t *testing.T, s *server, email, password, client string) {
	t.Helper()
	status, tokens, hdr := s.post(t, "/v2/auth/login", "", map[string]any{"email": email, "password": password, "client_id": client})
	if status != 200 {
		t.Fatalf("login: %d %v", status, tokens)
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("login Cache-Control = %q", hdr.Get("Cache-Control"))
	}
	status, refreshed, _ := s.post(t, "/v2/auth/refresh", "", map[string]any{"refresh_token": tokens["refresh_token"], "client_id": client})
	if status != 200 || refreshed["refresh_token"] == tokens["refresh_token"] {
		t.Fatalf("refresh: %d %v", status, refreshed)
	}
	if status, body, _ := s.post(t, "/v2/auth/logout", refreshed["access_token"].(string), nil); status != 204 {
		t.Fatalf("logout: %d %v", status, body)
	}
	if status, _, _ := s.post(t, "/v2/auth/logout", refreshed["access_token"].(string), nil); status != 401 {
		t.Fatalf("logout with a revoked token: %d", status)
	}
}

var seeded = regexp.MustCompile(`email:\s+(\S+)\s+password:\s+(\S+)\s+client_id:\s+(\S+)`)

func TestServeDev(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			vars := map[string]string{"NEXUS_DATA_DIR": t.TempDir(), "NEXUS_HTTP_ADDR": "127.0.0.1:0", "NEXUS_LOG_LEVEL": "warn"}
			if db == "postgres" {
				vars["NEXUS_DATABASE_URL"] = testdb.PostgresURL(t)
			}
			s := start(t, vars, "serve", "--dev")
			m := seeded.FindStringSubmatch(s.stdout.String())
			if m == nil {
				t.Fatalf("no demo credentials printed:\n%s", s.stdout)
			}
			walkthrough(t, s, m[1], m[2], m[3])
			s.stop(t)

			// A second start reuses the data: no new seed, the same credentials still work, and tokens issued
			// before the restart stay valid (the signing keys live in the database).
			s = start(t, vars, "serve", "--dev")
			if strings.Contains(s.stdout.String(), "password:") {
				t.Errorf("demo credentials printed again:\n%s", s.stdout)
			}
			walkthrough(t, s, m[1], m[2], m[3])
		})
	}
}

func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{"NEXUS_DATA_DIR": dir, "NEXUS_LOG_LEVEL": "warn"}
	cmd := func(stdin string, args ...string) (map[string]any, error) {
		var out bytes.Buffer
		err := run(context.Background(), args, envFunc(vars), strings.NewReader(stdin), &out, io.Discard)
		var m map[string]any
		if err == nil {
			if jerr := json.Unmarshal(out.Bytes(), &m); jerr != nil {
				t.Fatalf("%v: output is not one JSON object: %q", args, out.String())
			}
		}
		return m, err
	}
	if err := run(context.Background(), []string{"migrate"}, envFunc(vars), nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	org, err := cmd("", "org", "create", "--name", "Acme", "--json")
	if err != nil || org["id"] == "" {
		t.Fatalf("org create: %v %v", org, err)
	}
	orgID := org["id"].(string)
	if _, err := cmd("", "client", "create", "--client-id", "acme-web", "--name", "Acme web", "--org", orgID, "--json"); err != nil {
		t.Fatal(err)
	}
	if _, err := cmd("", "client", "create", "--client-id", "acme-web", "--name", "again", "--json"); err == nil {
		t.Error("duplicate client_id accepted")
	}
	user, err := cmd("a long enough password\n", "user", "create", "--org", orgID, "--email", "Grace@Acme.test",
		"--role", "manager", "--password-stdin", "--json")
	if err != nil || user["id"] == "" || user["role"] != "manager" {
		t.Fatalf("user create: %v %v", user, err)
	}
	for name, args := range map[string][]string{
		"duplicate email, other case":  {"user", "create", "--org", orgID, "--email", "grace@acme.TEST", "--role", "member", "--password-stdin"},
		"unknown role":                 {"user", "create", "--org", orgID, "--email", "x@acme.test", "--role", "root", "--password-stdin"},
		"unknown org":                  {"user", "create", "--org", "00000000-0000-4000-8000-000000000000", "--email", "y@acme.test", "--role", "member", "--password-stdin"},
		"password on the command line": {"user", "create", "--org", orgID, "--email", "z@acme.test", "--role", "member", "--password", "x"},
	} {
		if _, err := cmd("a long enough password\n", args...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := cmd("short\n", "user", "create", "--org", orgID, "--email", "s@acme.test", "--role", "member", "--password-stdin"); err == nil {
		t.Error("short password accepted")
	}
	if _, err := cmd("", "keys", "rotate", "--json"); err == nil {
		t.Error("keys rotate without any secret key accepted")
	}

	// The server started on the same data directory does not seed, and the created user logs in.
	vars["NEXUS_HTTP_ADDR"] = "127.0.0.1:0"
	s := start(t, vars, "serve", "--dev")
	if strings.Contains(s.stdout.String(), "password:") {
		t.Error("seeded a database that already has data")
	}
	walkthrough(t, s, "grace@acme.test", "a long enough password", "acme-web")
	k, err := cmd("", "keys", "rotate", "--json")
	if err != nil || k["id"] == "" {
		t.Fatalf("keys rotate: %v %v", k, err)
	}
}

func TestServeRefusesPlainHTTP(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for name, tc := range map[string]struct {
		vars map[string]string
		args []string
		want string
	}{
		"no TLS outside dev":      {map[string]string{"NEXUS_SECRET_KEY": secret}, []string{"serve"}, "NEXUS_TLS_CERT_FILE"},
		"no secret outside dev":   {map[string]string{"NEXUS_BEHIND_TLS_PROXY": "true"}, []string{"serve"}, "NEXUS_SECRET_KEY"},
		"dev on a public address": {map[string]string{"NEXUS_HTTP_ADDR": "0.0.0.0:8080"}, []string{"serve", "--dev"}, "NEXUS_HTTP_ADDR"},
		"bad duration":            {map[string]string{"NEXUS_ACCESS_TOKEN_TTL": "soon"}, []string{"serve", "--dev"}, "NEXUS_ACCESS_TOKEN_TTL"},
	} {
		t.Run(name, func(t *testing.T) {
			tc.vars["NEXUS_DATA_DIR"] = t.TempDir()
			err := run(context.Background(), tc.args, envFunc(tc.vars), nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
			if entries, _ := os.ReadDir(tc.vars["NEXUS_DATA_DIR"]); len(entries) != 0 {
				t.Errorf("a refused start wrote %d files", len(entries))
			}
		})
	}
	if err := run(context.Background(), []string{"frobnicate"}, envFunc(nil), nil, io.Discard, io.Discard); err == nil {
		t.Error("unknown command accepted")
	}
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	vars := map[string]string{"NEXUS_DATA_DIR": dir, "NEXUS_HTTP_ADDR": "127.0.0.1:0", "NEXUS_LOG_LEVEL": "warn",
		"NEXUS_SECRET_KEY": base64.StdEncoding.EncodeToString(secret), "NEXUS_TLS_CERT_FILE": certFile, "NEXUS_TLS_KEY_FILE": keyFile}
	var out bytes.Buffer
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
	}
	must(run(context.Background(), []string{"org", "create", "--name", "TLS Org", "--json"}, envFunc(vars), nil, &out, io.Discard))
	var org map[string]string
	must(json.Unmarshal(out.Bytes(), &org))
	must(run(context.Background(), []string{"client", "create", "--client-id", "tls-app", "--name", "TLS"}, envFunc(vars), nil, io.Discard, io.Discard))
	must(run(context.Background(), []string{"user", "create", "--org", org["id"], "--email", "tls@example.com", "--role", "admin", "--password-stdin"},
		envFunc(vars), strings.NewReader("tls password for test\n"), io.Discard, io.Discard))

	s := start(t, vars, "serve")
	if !strings.HasPrefix(s.url, "https://") {
		t.Fatalf("not serving HTTPS: %s", s.url)
	}
	// Plain HTTP on the TLS port is never served.
	if r, err := http.Get(strings.Replace(s.url, "https://", "http://", 1) + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS port")
		}
	}
	_, _, hdr := s.post(t, "/v2/auth/login", "", map[string]any{"email": "tls@example.com", "password": "x", "client_id": "tls-app"})
	if !strings.HasPrefix(hdr.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("no HSTS over HTTPS: %v", hdr)
	}
	walkthrough(t, s, "tls@example.com", "tls password for test", "tls-app")
}

// tlsTransport trusts the certificate of selfSigned; nil (Go's default transport) until a test makes one.
var tlsTransport http.RoundTripper

// selfSigned writes a certificate for 127.0.0.1 and makes tlsTransport trust it.
func selfSigned(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tlsTransport = tr
	return certFile, keyFile
}
