//go:build ignore

// vulngate reads govulncheck's JSON output on standard input, prints every vulnerability that the code calls,
// and fails unless each of them is accepted in the file named by its argument. An acceptance holds only while
// no fixed version exists for the module version in use: once a fix is published, the check fails until the
// dependency is upgraded.
//
//	go run golang.org/x/vuln/cmd/govulncheck -format json ./... | go run .ci/vulngate.go .ci/govulncheck-accepted
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type message struct {
	Config *struct {
		ScannerVersion string `json:"scanner_version"`
		DB             string `json:"db"`
		DBLastModified string `json:"db_last_modified"`
		GoVersion      string `json:"go_version"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
			Receiver string `json:"receiver"`
		} `json:"trace"`
	} `json:"finding"`
}

type called struct {
	id, module, version, fixed, symbol string
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run .ci/vulngate.go ACCEPTED-FILE < govulncheck.json")
		os.Exit(2)
	}
	accepted, err := readAccepted(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulngate:", err)
		os.Exit(2)
	}
	summaries := map[string]string{}
	found := map[string]*called{}
	var imported, required int
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "vulngate: reading govulncheck's output:", err)
			os.Exit(2)
		}
		switch {
		case m.Config != nil:
			fmt.Printf("govulncheck %s, %s, database %s (last modified %s)\n", m.Config.ScannerVersion, m.Config.GoVersion, m.Config.DB, m.Config.DBLastModified)
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			f, t := m.Finding, m.Finding.Trace[0]
			switch {
			case t.Function != "":
				if found[f.OSV] == nil {
					sym := t.Function
					if t.Receiver != "" {
						sym = t.Receiver + "." + sym
					}
					found[f.OSV] = &called{id: f.OSV, module: t.Module, version: t.Version, fixed: f.FixedVersion, symbol: t.Package + "." + sym}
				}
			case t.Package != "":
				imported++
			default:
				required++
			}
		}
	}
	ids := make([]string, 0, len(found))
	for id := range found {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	failed := 0
	for _, id := range ids {
		c := found[id]
		fixed := c.fixed
		if fixed == "" {
			fixed = "no fix"
		}
		verdict := "FAIL"
		if reason, ok := accepted[id]; ok && c.fixed == "" {
			verdict = "accepted: " + reason
		} else {
			failed++
			if ok {
				verdict = "FAIL (accepted only while there is no fix: upgrade " + c.module + ")"
			}
		}
		fmt.Printf("%s %s\n  %s@%s, fixed in: %s; calls %s\n  %s\n", id, summaries[id], c.module, c.version, fixed, c.symbol, verdict)
	}
	for id := range accepted {
		if found[id] == nil {
			fmt.Printf("note: %s is accepted in %s but no longer found: remove it\n", id, os.Args[1])
		}
	}
	fmt.Printf("govulncheck: %d called vulnerabilities (%d accepted); findings in imported packages or required modules only, not called: %d/%d\n",
		len(ids), len(ids)-failed, imported, required)
	if failed > 0 {
		fmt.Printf("govulncheck: %d passed, %d failed\n", len(ids)-failed, failed)
		os.Exit(1)
	}
}

// readAccepted reads "ID reason" lines; blank lines and lines starting with # are skipped. Every ID needs a reason.
func readAccepted(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		if reason = strings.TrimSpace(reason); reason == "" {
			return nil, fmt.Errorf("%s:%d: %s has no reason", path, i+1, id)
		}
		out[id] = reason
	}
	return out, nil
}
