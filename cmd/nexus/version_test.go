package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersion runs `nexus version` as main does, with no configuration at all: it prints the build
// information, not the usage text, and with --json one JSON object.
func TestVersion(t *testing.T) {
	none := func(string) string { return "" }
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"version"}, none, nil, &out, &errOut); err != nil {
		t.Fatalf("version: %v\n%s", err, errOut.String())
	}
	text := out.String()
	if strings.Contains(text, "usage:") || !strings.HasPrefix(text, "nexus ") {
		t.Errorf("version printed:\n%s", text)
	}
	for _, s := range []string{"revision:", "time:", runtime.GOOS + "/" + runtime.GOARCH, runtime.Version()} {
		if !strings.Contains(text, s) {
			t.Errorf("version output lacks %q:\n%s", s, text)
		}
	}

	out.Reset()
	if err := run(context.Background(), []string{"version", "--json"}, none, nil, &out, io.Discard); err != nil {
		t.Fatalf("version --json: %v", err)
	}
	var m map[string]any
	dec := json.NewDecoder(&out)
	if err := dec.Decode(&m); err != nil || dec.More() {
		t.Fatalf("version --json is not one JSON object (%v): %q", err, out.String())
	}
	for k, want := range map[string]any{"go_version": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if v, _ := m["version"].(string); v == "" {
		t.Errorf("no version: %v", m)
	}
	if _, ok := m["modified"].(bool); !ok {
		t.Errorf("no modified: %v", m)
	}

	for _, args := range [][]string{{"version", "--yaml"}, {"version", "extra"}} {
		err := run(context.Background(), args, none, nil, io.Discard, io.Discard)
		if !errors.As(err, new(usageError)) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestVersionBuildInfo checks what version makes of the build information: a checkout's revision, time and
// changes, a development build, and a binary without any build information.
func TestVersionBuildInfo(t *testing.T) {
	built := func(bi *debug.BuildInfo) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	}
	release := &debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "v2.4.0"}, Settings: []debug.BuildSetting{
		{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "arm64"},
		{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}}
	devel := &debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Version: "(devel)"}}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want buildInfo
		text []string
	}{
		{"checkout", release,
			buildInfo{Version: "v2.4.0", Revision: "0123456789abcdef", Time: "2026-12-01T10:00:00Z", Modified: true, GoVersion: "go1.27.3", OS: "linux", Arch: "arm64"},
			[]string{"nexus v2.4.0\n", "revision: 0123456789abcdef (modified", "time:     2026-12-01T10:00:00Z", "go:       go1.27.3 linux/arm64"}},
		{"devel", devel,
			buildInfo{Version: "(devel)", GoVersion: "go1.27.3", OS: runtime.GOOS, Arch: runtime.GOARCH},
			[]string{"nexus (devel)\n", "revision: unknown", "time:     unknown"}},
		{"no build information", nil,
			buildInfo{Version: "unknown", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH},
			[]string{"nexus unknown\n", "revision: unknown", "time:     unknown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := readBuildInfo(built(tc.bi)); got != tc.want {
				t.Errorf("readBuildInfo = %+v, want %+v", got, tc.want)
			}
			var out bytes.Buffer
			if err := version(nil, built(tc.bi), &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.text {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
			if tc.bi == release && strings.Contains(out.String(), "unknown") {
				t.Errorf("unknown in a full build's output:\n%s", out.String())
			}
		})
	}
}
