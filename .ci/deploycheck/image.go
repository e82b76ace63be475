package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// buildImage appends one layer to an empty base, for each architecture whose binary is in -bin (named
// nexus-linux-ARCH), sets the configuration of spec.go, and writes a multi-architecture OCI layout to -out/oci and,
// for `docker load` or `podman load`, one tarball per architecture (-out/nexus-linux-ARCH.tar). Nothing is pulled
// and no container engine is needed. Every timestamp is -created (the commit time), so the same commit and
// binaries give the same digests.
func buildImage(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	bin := fs.String("bin", "", "directory holding nexus-linux-amd64 (and nexus-linux-arm64, …)")
	out := fs.String("out", "", "output directory (replaced)")
	version := fs.String("version", "dev", "org.opencontainers.image.version, and the tag")
	revision := fs.String("revision", "", "org.opencontainers.image.revision (the commit)")
	created := fs.Int64("created", 0, "timestamps, in seconds since 1970 (SOURCE_DATE_EPOCH: the commit time)")
	certs := fs.String("certs", imageCerts, "the CA bundle to put at "+imageCerts)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *bin == "" || *out == "" || *revision == "" || *created == 0 {
		return fmt.Errorf("image: -bin, -out, -revision and -created are required")
	}
	when := time.Unix(*created, 0).UTC()
	bundle, err := os.ReadFile(*certs)
	if err != nil {
		return fmt.Errorf("CA bundle (install ca-certificates): %w", err)
	}
	binaries, err := filepath.Glob(filepath.Join(*bin, "nexus-linux-*"))
	if err != nil || len(binaries) == 0 {
		return fmt.Errorf("no nexus-linux-ARCH binary in %s", *bin)
	}
	if err := os.RemoveAll(*out); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil { // #nosec G301 -- the image's OCI layout, public build output under build/
		return err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	tag, err := name.NewTag(refName+":"+*version, name.WeakValidation)
	if err != nil {
		return err
	}
	labels := map[string]string{
		"org.opencontainers.image.title":    imageTitle,
		"org.opencontainers.image.source":   imageSource,
		"org.opencontainers.image.version":  *version,
		"org.opencontainers.image.revision": *revision,
		"org.opencontainers.image.licenses": imageLicense,
		"org.opencontainers.image.created":  when.Format(time.RFC3339),
	}
	for _, path := range binaries {
		arch := strings.TrimPrefix(filepath.Base(path), "nexus-linux-")
		exe, err := os.ReadFile(path) // #nosec G304 -- the binary .ci/image built
		if err != nil {
			return err
		}
		img, err := archImage(arch, exe, bundle, when, labels)
		if err != nil {
			return fmt.Errorf("%s: %w", arch, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		if err := tarball.WriteToFile(filepath.Join(*out, "nexus-linux-"+arch+".tar"), tag, img); err != nil {
			return err
		}
		d, _ := img.Digest()
		fmt.Printf("image linux/%s: %s\n", arch, d)
	}
	p, err := layout.Write(filepath.Join(*out, "oci"), empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": *version})); err != nil {
		return err
	}
	d, _ := idx.Digest()
	fmt.Printf("index %s (%s:%s) in %s\n", d, refName, *version, filepath.Join(*out, "oci"))
	return nil
}

// archImage is the image of one architecture: a single layer on an empty base, and its configuration.
func archImage(arch string, exe, bundle []byte, when time.Time, labels map[string]string) (v1.Image, error) {
	layerTar, err := rootfs(exe, bundle, when)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, MediaType: types.OCILayer, History: v1.History{
		Created: v1.Time{Time: when}, CreatedBy: "deploycheck image: /nexus, " + imageCerts + ", " + imageDataDir + ", /tmp",
		Comment: "built without a container engine (.ci/image)"}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = arch, "linux", v1.Time{Time: when}
	cf.Config = v1.Config{
		User:         imageUser,
		Entrypoint:   imageEntrypoint,
		Cmd:          imageCmd,
		Env:          imageEnv,
		WorkingDir:   imageDataDir,
		ExposedPorts: map[string]struct{}{apiPort: {}, metricsPort: {}},
		Volumes:      map[string]struct{}{imageDataDir: {}},
		Labels:       labels,
		StopSignal:   "SIGTERM",
		Healthcheck: &v1.HealthConfig{Test: imageHealth, Interval: healthInterval, Timeout: healthTimeout,
			StartPeriod: healthStart, Retries: healthRetries},
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the layer: the binary (root's, 0755), the CA bundle, an empty data directory owned by the image's
// user and a sticky /tmp, every entry stamped with when.
func rootfs(exe, bundle []byte, when time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entries := []struct {
		name string
		mode int64
		uid  int
		data []byte
		dir  bool
	}{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(imageCerts, "/"), mode: 0o644, data: bundle},
		{name: strings.TrimPrefix(imageBinary, "/"), mode: 0o755, data: exe},
		{name: strings.TrimPrefix(imageDataDir, "/") + "/", mode: 0o700, uid: imageUID, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: when, Format: tar.FormatPAX,
			Typeflag: tar.TypeReg, Size: int64(len(e.data))}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
