package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/config"
)

// healthcheck asks the server of this configuration whether it is ready (GET /readyz) or, with --live, alive
// (GET /healthz), and returns nil only for 200. It is the image's HEALTHCHECK, run in exec form beside the server
// with the same environment, so it needs no shell, curl or wget. The address is NEXUS_HTTP_ADDR (or --addr, as
// for serve), with an unspecified host (":8080", "0.0.0.0", "::") asked on loopback. With TLS configured the
// request is HTTPS: on loopback the certificate is not verified (it is issued for the public name, and nothing
// secret is sent: a wrong answer can only make the check pass or fail); on any other address the server must
// present the certificate of NEXUS_TLS_CERT_FILE.
func healthcheck(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	live := fs.Bool("live", false, "ask /healthz (the process answers) instead of /readyz (ready to serve)")
	addr := fs.String("addr", "", "the server's listen address (overrides NEXUS_HTTP_ADDR)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if *addr == "" {
		*addr = cfg.HTTPAddr
	}
	path := "/readyz"
	if *live {
		path = "/healthz"
	}
	target, loopback, err := healthTarget(*addr)
	if err != nil {
		return err
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	scheme := "http"
	if cfg.TLS() {
		scheme = "https"
		if tr.TLSClientConfig, err = healthTLS(cfg.TLSCertFile, loopback); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	url := scheme + "://" + target + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var state struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(body, &state)
	if state.Status == "" {
		state.Status = "no status"
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: GET %s: %s (%s)", url, resp.Status, state.Status)
	}
	_, err = fmt.Fprintf(stdout, "healthcheck: GET %s: %s (%s)\n", url, resp.Status, state.Status)
	return err
}

// healthTarget turns a listen address into the host:port to ask, and says whether that is a loopback address.
func healthTarget(addr string) (target string, loopback bool, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", false, fmt.Errorf("healthcheck: NEXUS_HTTP_ADDR: want host:port, got %q", addr)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	ip, err := netip.ParseAddr(host)
	loopback = host == "localhost" || (err == nil && ip.IsLoopback())
	return net.JoinHostPort(host, port), loopback, nil
}

// healthTLS is the client side of the health check over TLS: see healthcheck.
func healthTLS(certFile string, loopback bool) (*tls.Config, error) {
	if loopback {
		// #nosec G402 -- the check asks this container's own loopback listener, whose certificate names the public
		// host, not 127.0.0.1; it sends nothing secret and reads only a status code.
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}, nil
	}
	raw, err := os.ReadFile(certFile) // #nosec G304 -- the certificate file the operator configured for the server
	if err != nil {
		return nil, fmt.Errorf("healthcheck: NEXUS_TLS_CERT_FILE: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("healthcheck: NEXUS_TLS_CERT_FILE: no PEM certificate")
	}
	want := block.Bytes
	// #nosec G402 -- not skipped: VerifyConnection accepts only the very certificate the server is configured with.
	return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return errors.New("the server does not present the certificate of NEXUS_TLS_CERT_FILE")
			}
			return nil
		}}, nil
}
