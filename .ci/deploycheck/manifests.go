package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/big"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// checkManifests validates deploy/: compose.yaml against the Compose specification, the Kubernetes manifests
// against the Kubernetes API types, haproxy.cfg with haproxy itself (when installed), and the rules that tie them
// to the server: every NEXUS_* variable exists, the health checks and probes ask /readyz and /healthz, the
// shutdown delay outlasts the load balancers' checks, the grace periods outlast the delay and the timeout.
func checkManifests(args []string) error {
	fs := flag.NewFlagSet("manifests", flag.ContinueOnError)
	repo := fs.String("repo", "../..", "the repository")
	if err := fs.Parse(args); err != nil {
		return err
	}
	known, err := configVariables(*repo)
	if err != nil {
		return err
	}
	deploy := filepath.Join(*repo, "deploy")
	errs := []error{}
	if err := checkCompose(deploy, known); err != nil {
		errs = append(errs, fmt.Errorf("deploy/compose.yaml:\n%w", err))
	} else {
		fmt.Println("deploy/compose.yaml: valid (Compose specification schema), and consistent with the server and haproxy.cfg")
	}
	if err := checkHAProxy(filepath.Join(deploy, "haproxy", "haproxy.cfg")); err != nil {
		errs = append(errs, fmt.Errorf("deploy/haproxy/haproxy.cfg:\n%w", err))
	}
	n, err := checkKubernetes(filepath.Join(deploy, "k8s"), known)
	if err != nil {
		errs = append(errs, fmt.Errorf("deploy/k8s:\n%w", err))
	} else {
		fmt.Printf("deploy/k8s: %d objects valid (Kubernetes API types, unknown fields refused), and consistent with the server and the image\n", n)
	}
	return errors.Join(errs...)
}

// configVariables lists the NEXUS_* variables that internal/config reads (their env tags).
func configVariables(repo string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(repo, "internal", "config", "*.go"))
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f) // #nosec G304 -- the repository's own sources
		if err != nil {
			return nil, err
		}
		for _, m := range regexp.MustCompile(`env:"(NEXUS_[A-Z0-9_]+)"`).FindAllSubmatch(b, -1) {
			known[string(m[1])] = true
		}
	}
	if len(known) < 10 {
		return nil, fmt.Errorf("internal/config: found only %d NEXUS_* variables", len(known))
	}
	return known, nil
}

// unknownVariables returns the NEXUS_* names the server does not read: a misspelt variable is silently ignored.
func unknownVariables(names []string, known map[string]bool) error {
	var errs []error
	for _, n := range names {
		if strings.HasPrefix(n, "NEXUS_") && !known[n] {
			errs = append(errs, fmt.Errorf("%s: the server reads no such variable (internal/config)", n))
		}
	}
	return errors.Join(errs...)
}

// composeSecrets stand in for deploy/.env when the file is loaded here.
var composeSecrets = map[string]string{"NEXUS_SECRET_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "POSTGRES_PASSWORD": "check"}

func checkCompose(deploy string, known map[string]bool) error {
	path := filepath.Join(deploy, "compose.yaml")
	raw, err := os.ReadFile(path) // #nosec G304 -- the repository's compose file
	if err != nil {
		return err
	}
	// Interpolation must name every secret it needs with ${VAR:?…}: without them, loading fails.
	for name := range composeSecrets {
		without := maps.Clone(composeSecrets)
		delete(without, name)
		if _, err := loadCompose(deploy, raw, without); err == nil || !strings.Contains(err.Error(), name) {
			return fmt.Errorf("loads without %s (%v): require it with ${%s:?message}", name, err, name)
		}
	}
	p, err := loadCompose(deploy, raw, composeSecrets)
	if err != nil {
		return err
	}
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	svc := func(name string) types.ServiceConfig {
		s, ok := p.Services[name]
		if !ok {
			fail("no service %s", name)
		}
		return s
	}
	nexus, migrate, haproxy := svc("nexus"), svc("migrate"), svc("haproxy")
	postgres, redis := svc("postgres"), svc("redis")
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if nexus.GetScale() != 3 {
		fail("nexus: %d replicas, want 3", nexus.GetScale())
	}
	if !slices.Equal(nexus.Command, []string{"serve"}) || !slices.Equal(migrate.Command, []string{"migrate"}) {
		fail("nexus runs %q and migrate %q, want serve and migrate", nexus.Command, migrate.Command)
	}
	if nexus.Image == "" || migrate.Image != nexus.Image {
		fail("migrate runs image %q, nexus %q: want the same", migrate.Image, nexus.Image)
	}
	if d := nexus.DependsOn["migrate"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
		fail("nexus must depend on migrate with condition %s, got %q", types.ServiceConditionCompletedSuccessfully, d.Condition)
	}
	if d := migrate.DependsOn["postgres"]; d.Condition != types.ServiceConditionHealthy {
		fail("migrate must wait for a healthy postgres, got %q", d.Condition)
	}
	if d := haproxy.DependsOn["nexus"]; d.Condition != types.ServiceConditionHealthy {
		fail("haproxy must wait for a healthy nexus, got %q", d.Condition)
	}
	for _, s := range []types.ServiceConfig{nexus, postgres, redis} {
		if s.HealthCheck == nil || len(s.HealthCheck.Test) == 0 || s.HealthCheck.Test[0] != "CMD" {
			fail("%s: want a health check in exec form (CMD …)", s.Name)
		}
	}
	if h := nexus.HealthCheck; h != nil && !slices.Equal(h.Test, imageHealth) {
		fail("nexus: health check %q, want the image's %q", h.Test, imageHealth)
	}
	for _, s := range []types.ServiceConfig{nexus, migrate} {
		var names []string
		for k := range s.Environment {
			names = append(names, k)
		}
		if err := unknownVariables(names, known); err != nil {
			fail("%s: %w", s.Name, err)
		}
		for _, k := range []string{"NEXUS_DATABASE_URL", "NEXUS_SECRET_KEY", "NEXUS_REDIS_URL"} {
			if v := s.Environment[k]; v == nil || *v == "" {
				fail("%s: %s is not set", s.Name, k)
			}
		}
	}
	env := func(k string) string {
		if v := nexus.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	delay, err1 := time.ParseDuration(env("NEXUS_SHUTDOWN_DELAY"))
	timeout, err2 := time.ParseDuration(env("NEXUS_SHUTDOWN_TIMEOUT"))
	if err := errors.Join(err1, err2); err != nil || delay <= 0 {
		fail("nexus: NEXUS_SHUTDOWN_DELAY and NEXUS_SHUTDOWN_TIMEOUT must be set (%v)", err)
	}
	if g := nexus.StopGracePeriod; g == nil || time.Duration(*g) < delay+timeout {
		fail("nexus: stop_grace_period %v, want at least NEXUS_SHUTDOWN_DELAY + NEXUS_SHUTDOWN_TIMEOUT (%s)", g, delay+timeout)
	}
	if env("NEXUS_BEHIND_TLS_PROXY") != "true" {
		fail("nexus: NEXUS_BEHIND_TLS_PROXY must be true: HAProxy terminates TLS")
	}
	// HAProxy's address must be a trusted proxy, and nothing else on the network.
	var proxyAddr netip.Addr
	for _, n := range haproxy.Networks {
		if n != nil && n.Ipv4Address != "" {
			proxyAddr, _ = netip.ParseAddr(n.Ipv4Address)
		}
	}
	trusted := env("NEXUS_TRUSTED_PROXIES")
	prefix, err := netip.ParsePrefix(trusted)
	if err != nil || !proxyAddr.IsValid() || !prefix.Contains(proxyAddr) || prefix.Bits() != 32 {
		fail("nexus: NEXUS_TRUSTED_PROXIES %q must be HAProxy's fixed address alone (%v)", trusted, proxyAddr)
	}
	// haproxy.cfg: round robin over as many servers as replicas, /readyz checks that take an instance out
	// within the shutdown delay.
	cfg, err := os.ReadFile(filepath.Join(deploy, "haproxy", "haproxy.cfg")) // #nosec G304 -- the repository's own deploy/haproxy/haproxy.cfg
	if err != nil {
		return err
	}
	hc := string(cfg)
	for _, want := range []string{"balance roundrobin", "option httpchk GET /readyz", "option forwardfor"} {
		if !strings.Contains(hc, want) {
			fail("haproxy.cfg lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`server-template \S+ (\d+) nexus:8080 check`).FindStringSubmatch(hc); m == nil || m[1] != strconv.Itoa(nexus.GetScale()) {
		fail("haproxy.cfg: want `server-template nexus %d nexus:8080 check`", nexus.GetScale())
	}
	m := regexp.MustCompile(`inter (\d+)s fall (\d+)`).FindStringSubmatch(hc)
	if m == nil {
		fail("haproxy.cfg: want `default-server inter Ns fall N`")
	} else {
		inter, _ := strconv.Atoi(m[1])
		fallN, _ := strconv.Atoi(m[2])
		if d := time.Duration(inter*fallN) * time.Second; d >= delay {
			fail("haproxy.cfg: an instance is taken out after %s (inter × fall), not within NEXUS_SHUTDOWN_DELAY (%s)", d, delay)
		}
	}
	return errors.Join(errs...)
}

func loadCompose(dir string, raw []byte, env map[string]string) (*types.Project, error) {
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "compose.yaml"), Content: raw}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName("nexus", true)
		o.SkipValidation = false
		o.ResolvePaths = true
	})
}

// checkHAProxy runs `haproxy -c` on the configuration with a throwaway certificate, when haproxy is installed.
func checkHAProxy(cfg string) error {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") == "true" {
			return errors.New("haproxy is not installed (CI installs it: apt-get install haproxy)")
		}
		fmt.Println("deploy/haproxy/haproxy.cfg: haproxy is not installed; its syntax was NOT checked (apt-get install haproxy)")
		return nil
	}
	dir, err := os.MkdirTemp("", "haproxy-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pemFile := filepath.Join(dir, "nexus.pem")
	if err := writeSelfSigned(pemFile); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-c", "-f", cfg) // #nosec G204 -- haproxy, on the repository's configuration
	cmd.Env = append(os.Environ(), "TLS_PEM="+pemFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("haproxy -c: %v\n%s", err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "[WARNING]") || strings.Contains(sc.Text(), "[ALERT]") {
			return fmt.Errorf("haproxy -c warns: %s", out)
		}
	}
	fmt.Println("deploy/haproxy/haproxy.cfg: haproxy -c: valid")
	return nil
}

// writeSelfSigned writes a certificate and its key, one PEM file as HAProxy wants it.
func writeSelfSigned(path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	b := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
	return os.WriteFile(path, b, 0o600)
}
