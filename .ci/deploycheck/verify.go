package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"debug/elf"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// verifyImage reads the image back from the OCI layout and checks, for every architecture: the configuration
// (user, entrypoint, command, environment, ports, volume, labels, health check) against spec.go and against the
// Dockerfile's final stage; the single layer's files (a static, stripped linux ELF of the right machine, root's
// and 0755; the CA bundle; /data owned by the image's user); and for the machine's own architecture, runs the
// binary taken out of the layer the way a container engine would (entrypoint and command, the image's
// environment and nothing else, no shell): `version --json`, `serve`, the health check, SIGTERM.
func verifyImage(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	repo := fs.String("repo", "../..", "the repository (for the Dockerfile and go.mod)")
	out := fs.String("out", "", "the directory buildImage wrote")
	revision := fs.String("revision", "", "the commit the image must carry")
	version := fs.String("version", "", "the version the image must carry")
	if err := fs.Parse(args); err != nil {
		return err
	}
	df, err := parseDockerfile(filepath.Join(*repo, "Dockerfile"))
	if err != nil {
		return err
	}
	if err := checkDockerfile(df, *repo); err != nil {
		return err
	}
	p, err := layout.FromPath(filepath.Join(*out, "oci"))
	if err != nil {
		return err
	}
	top, err := p.ImageIndex()
	if err != nil {
		return err
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		return err
	}
	if len(topManifest.Manifests) != 1 || topManifest.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != *version {
		return fmt.Errorf("index.json: want one index named %q, got %+v", *version, topManifest.Manifests)
	}
	idx, err := top.ImageIndex(topManifest.Manifests[0].Digest)
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	ran := false
	for _, desc := range im.Manifests {
		if desc.Platform == nil || desc.Platform.OS != "linux" || desc.MediaType != types.OCIManifestSchema1 {
			return fmt.Errorf("index: want OCI linux images, got %+v", desc)
		}
		arch := desc.Platform.Architecture
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return err
		}
		exe, err := checkImage(img, arch, df, *revision, *version)
		if err != nil {
			return fmt.Errorf("linux/%s: %w", arch, err)
		}
		fmt.Printf("verify linux/%s: configuration, Dockerfile and layer agree\n", arch)
		if arch == runtime.GOARCH {
			cf, _ := img.ConfigFile()
			if err := runImage(exe, cf.Config, *revision); err != nil {
				return fmt.Errorf("linux/%s: running the image's binary: %w", arch, err)
			}
			ran = true
		}
	}
	if !ran {
		return fmt.Errorf("no image for this machine's architecture (%s): its binary was not run", runtime.GOARCH)
	}
	return nil
}

// checkDockerfile checks the Dockerfile's own rules: the builder's Go is go.mod's toolchain, the binary is built
// static and with its VCS information, and the final stage is the empty base.
func checkDockerfile(df *dockerfile, repo string) error {
	mod, err := os.ReadFile(filepath.Join(repo, "go.mod")) // #nosec G304 -- the repository's go.mod
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindSubmatch(mod)
	if m == nil || df.Args["GO_VERSION"] != string(m[1]) {
		return fmt.Errorf("the Dockerfile says ARG GO_VERSION=%s, want go.mod's toolchain (%s)", df.Args["GO_VERSION"], m)
	}
	raw, _ := os.ReadFile(filepath.Join(repo, "Dockerfile")) // #nosec G304 -- read once already
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs=true", "-ldflags='-s -w'", "./cmd/nexus"} {
		if !bytes.Contains(raw, []byte(want)) {
			return fmt.Errorf("the Dockerfile's build lacks %s", want)
		}
	}
	if df.From != "scratch" {
		return fmt.Errorf("the Dockerfile's final stage is FROM %s, want scratch (as the image CI builds)", df.From)
	}
	return nil
}

// checkImage checks one architecture's image and returns its binary.
func checkImage(img v1.Image, arch string, df *dockerfile, revision, version string) ([]byte, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	c := cf.Config
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if cf.OS != "linux" || cf.Architecture != arch {
		fail("config: %s/%s, want linux/%s", cf.OS, cf.Architecture, arch)
	}
	// The image against spec.go.
	uid, gid, _ := strings.Cut(c.User, ":")
	if c.User != imageUser || uid == "0" || gid == "0" {
		fail("User %q, want %q (numeric, not root)", c.User, imageUser)
	}
	if !slices.Equal(c.Entrypoint, imageEntrypoint) || !slices.Equal(c.Cmd, imageCmd) {
		fail("Entrypoint %q Cmd %q, want %q %q", c.Entrypoint, c.Cmd, imageEntrypoint, imageCmd)
	}
	if !sameSet(slices.Collect(maps.Keys(c.ExposedPorts)), []string{apiPort, metricsPort}) {
		fail("ExposedPorts %v, want %s and %s", c.ExposedPorts, apiPort, metricsPort)
	}
	if !sameSet(c.Env, imageEnv) || c.WorkingDir != imageDataDir {
		fail("Env %q WorkingDir %q, want %q %q", c.Env, c.WorkingDir, imageEnv, imageDataDir)
	}
	want := map[string]string{"org.opencontainers.image.title": imageTitle, "org.opencontainers.image.source": imageSource,
		"org.opencontainers.image.licenses": imageLicense, "org.opencontainers.image.revision": revision,
		"org.opencontainers.image.version": version, "org.opencontainers.image.created": cf.Created.UTC().Format(time.RFC3339)}
	if !maps.Equal(c.Labels, want) {
		fail("Labels %v, want %v", c.Labels, want)
	}
	if h := c.Healthcheck; h == nil || !slices.Equal(h.Test, imageHealth) || h.Interval != healthInterval ||
		h.Timeout != healthTimeout || h.StartPeriod != healthStart || h.Retries != healthRetries {
		fail("Healthcheck %+v, want %q every %s", h, imageHealth, healthInterval)
	}
	// The image against the Dockerfile.
	if df.User != c.User {
		fail("Dockerfile USER %q, image %q", df.User, c.User)
	}
	if !slices.Equal(df.Entrypoint, c.Entrypoint) || !slices.Equal(df.Cmd, c.Cmd) {
		fail("Dockerfile ENTRYPOINT %q CMD %q, image %q %q", df.Entrypoint, df.Cmd, c.Entrypoint, c.Cmd)
	}
	if !sameSet(df.Exposed, slices.Collect(maps.Keys(c.ExposedPorts))) {
		fail("Dockerfile EXPOSE %q, image %v", df.Exposed, c.ExposedPorts)
	}
	if !sameSet(df.Env, c.Env) || df.WorkingDir != c.WorkingDir || df.StopSignal != c.StopSignal {
		fail("Dockerfile ENV %q WORKDIR %q STOPSIGNAL %q, image %q %q %q", df.Env, df.WorkingDir, df.StopSignal, c.Env, c.WorkingDir, c.StopSignal)
	}
	if !sameSet(df.Volumes, slices.Collect(maps.Keys(c.Volumes))) {
		fail("Dockerfile VOLUME %q, image %v", df.Volumes, c.Volumes)
	}
	if !sameSet(slices.Collect(maps.Keys(df.Labels)), slices.Collect(maps.Keys(c.Labels))) {
		fail("Dockerfile LABEL keys %v, image %v", slices.Sorted(maps.Keys(df.Labels)), slices.Sorted(maps.Keys(c.Labels)))
	}
	for k, v := range df.Labels {
		if argRef(v) == "" && c.Labels[k] != v {
			fail("LABEL %s: Dockerfile %q, image %q", k, v, c.Labels[k])
		}
	}
	if h := c.Healthcheck; h != nil {
		interval, err1 := healthDuration(df, "interval")
		timeout, err2 := healthDuration(df, "timeout")
		start, err3 := healthDuration(df, "start-period")
		if err := errors.Join(err1, err2, err3); err != nil || !slices.Equal(df.Health, h.Test) || interval != h.Interval ||
			timeout != h.Timeout || start != h.StartPeriod || df.HealthFlags["retries"] != strconv.Itoa(h.Retries) {
			fail("Dockerfile HEALTHCHECK %v %q, image %+v (%v)", df.HealthFlags, df.Health, h, err)
		}
	}

	// The layer.
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		return nil, errors.Join(append(errs, fmt.Errorf("want one layer, got %d (%v)", len(layers), err))...)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	var exe, bundle []byte
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.ModTime.Unix() != cf.Created.Unix() {
			fail("layer: %s dated %s, want the image's time %s (reproducible)", h.Name, h.ModTime, cf.Created)
		}
		files["/"+strings.TrimSuffix(h.Name, "/")] = h
		switch "/" + h.Name {
		case imageBinary:
			exe, err = io.ReadAll(tr)
		case imageCerts:
			bundle, err = io.ReadAll(tr)
		}
		if err != nil {
			return nil, err
		}
	}
	if h := files[imageBinary]; h == nil || h.Typeflag != tar.TypeReg || h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 {
		fail("layer: %s must be a regular file, 0755, root's: %+v", imageBinary, h)
	} else if err := staticELF(exe, arch); err != nil {
		fail("layer: %s: %v", imageBinary, err)
	}
	if h := files[imageDataDir]; h == nil || h.Typeflag != tar.TypeDir || h.Uid != imageUID || h.Gid != imageUID || h.Mode&0o700 != 0o700 {
		fail("layer: %s must be a directory owned by %d and writable by it: %+v", imageDataDir, imageUID, h)
	}
	if h := files["/tmp"]; h == nil || h.Mode != 0o1777 {
		fail("layer: /tmp must be a sticky directory writable by all: %+v", h)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) || strings.Count(string(bundle), "BEGIN CERTIFICATE") < 50 {
		fail("layer: %s holds no CA bundle", imageCerts)
	}
	return exe, errors.Join(errs...)
}

// staticELF checks that b is a stripped, statically linked linux executable for arch.
func staticELF(b []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	if f.Machine != machine || f.Type != elf.ET_EXEC {
		return fmt.Errorf("ELF %s %s, want an executable for %s", f.Machine, f.Type, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			return errors.New("dynamically linked (it needs a loader the image does not have): build with CGO_ENABLED=0")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("needs shared libraries %v", libs)
	}
	if f.Section(".symtab") != nil {
		return errors.New("not stripped (build with -ldflags='-s -w')")
	}
	return nil
}

// runImage runs the binary as a container engine would run the image: no shell, the image's environment only.
func runImage(exe []byte, c v1.Config, revision string) error {
	dir, err := os.MkdirTemp("", "nexus-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "nexus")
	if err := os.WriteFile(bin, exe, 0o700); err != nil { // #nosec G306 -- an executable, for this user only
		return err
	}
	// The image's paths are those of its root: here the binary is bin and the data directory a temporary one.
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return err
	}
	argv := func(a []string) []string {
		out := slices.Clone(a)
		for i, s := range out {
			if s == imageBinary {
				out[i] = bin
			}
		}
		return out
	}
	env := func(extra ...string) []string {
		var e []string
		for _, kv := range c.Env {
			if !strings.HasPrefix(kv, "NEXUS_DATA_DIR=") {
				e = append(e, kv)
			}
		}
		return append(append(e, "NEXUS_DATA_DIR="+data), extra...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// version --json: the build information of the commit the image claims.
	cmdline := argv(append(slices.Clone(c.Entrypoint), "version", "--json"))
	cmd := exec.CommandContext(ctx, cmdline[0], cmdline[1:]...) // #nosec G204 -- the binary just built
	cmd.Env, cmd.Dir = env(), data
	raw, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("version --json: %w", err)
	}
	var bi struct {
		Revision string `json:"revision"`
		OS       string `json:"os"`
		Arch     string `json:"arch"`
	}
	if err := json.Unmarshal(raw, &bi); err != nil || bi.Revision != revision || bi.OS != "linux" || bi.Arch != runtime.GOARCH {
		return fmt.Errorf("version --json: %s (%v), want revision %s", raw, err, revision)
	}
	fmt.Printf("run: version --json: %s", raw)

	// serve, as the entrypoint and command say, on a free loopback port, in production mode (behind a proxy).
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cmdline = argv(append(slices.Clone(c.Entrypoint), c.Cmd...))
	srv := exec.CommandContext(ctx, cmdline[0], cmdline[1:]...) // #nosec G204 -- the binary just built
	srv.Env = env("NEXUS_HTTP_ADDR=127.0.0.1:0", "NEXUS_BEHIND_TLS_PROXY=true", "NEXUS_LOG_LEVEL=warn",
		"NEXUS_SECRET_KEY="+base64.StdEncoding.EncodeToString(key), "NEXUS_SHUTDOWN_DELAY=1s")
	srv.Dir = data
	var stderr bytes.Buffer
	srv.Stderr = &stderr
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Kill() }()
	addr := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := regexp.MustCompile(`listening on http://(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	if addr == "" {
		_ = srv.Wait()
		return fmt.Errorf("serve did not listen:\n%s", stderr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	// The image's health check, exactly as the engine runs it (exec form, the container's environment).
	health := func() (string, error) {
		line := argv(c.Healthcheck.Test[1:])
		hc := exec.CommandContext(ctx, line[0], line[1:]...) // #nosec G204 -- the binary just built
		hc.Env, hc.Dir = env("NEXUS_HTTP_ADDR="+addr), data
		out, err := hc.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	var out string
	deadline := time.Now().Add(20 * time.Second)
	for err = errors.New("not yet"); err != nil && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		out, err = health()
	}
	if err != nil {
		return fmt.Errorf("health check on a running server: %v: %s\n%s", err, out, stderr.String())
	}
	fmt.Printf("run: serve on %s; %q: %s\n", addr, c.Healthcheck.Test, out)

	// SIGTERM: a clean exit, after which the health check fails.
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := srv.Wait(); err != nil {
		return fmt.Errorf("serve after SIGTERM: %v\n%s", err, stderr.String())
	}
	out, err = health()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		return fmt.Errorf("health check on a stopped server: %v, %s; want exit status 1", err, out)
	}
	fmt.Printf("run: SIGTERM: exit 0; then the health check: exit 1: %s\n", out)
	return nil
}
