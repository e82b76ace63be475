package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// buildInfo is what `nexus version` prints: where the binary came from. The Go tool records the module version
// and, when built from a checkout, the VCS revision, its time and whether the tree had changes.
type buildInfo struct {
	Version   string `json:"version"`            // the module version, "(devel)" for a build without one, "unknown" without build information
	Revision  string `json:"revision,omitempty"` // the VCS revision, empty when unknown
	Time      string `json:"time,omitempty"`     // the revision's commit time (RFC 3339), empty when unknown
	Modified  bool   `json:"modified"`           // the working tree had uncommitted changes
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// readBuildInfo turns the build information read returns (debug.ReadBuildInfo in the binary) into a buildInfo.
func readBuildInfo(read func() (*debug.BuildInfo, bool)) buildInfo {
	b := buildInfo{Version: "unknown", GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := read()
	if !ok || bi == nil {
		return b
	}
	if bi.Main.Version != "" {
		b.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "GOOS":
			b.OS = s.Value
		case "GOARCH":
			b.Arch = s.Value
		}
	}
	return b
}

// version prints the build information: in words, or with --json as one JSON object.
func version(args []string, read func() (*debug.BuildInfo, bool), stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("version: unexpected argument %q", fs.Arg(0))}
	}
	b := readBuildInfo(read)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(b)
	}
	revision, built := b.Revision, b.Time
	if revision == "" {
		revision = "unknown (not built from a version control checkout)"
	} else if b.Modified {
		revision += " (modified: uncommitted changes)"
	}
	if built == "" {
		built = "unknown"
	}
	_, err := fmt.Fprintf(stdout, "nexus %s\n  revision: %s\n  time:     %s\n  go:       %s %s/%s\n",
		b.Version, revision, built, b.GoVersion, b.OS, b.Arch)
	return err
}
