package nexus_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// TestImportDirection keeps the layers importing one way: cmd → httpapi → domain ← store, the domain packages
// free of the generated code, Echo and GORM, ratelimit and config leaves that know nothing of the rest, this
// package free of everything but the standard library, and the test helpers out of every binary but the load
// test. Every package of the module is governed by a rule (a rule covers the packages under its path too, so
// internal/httpapi/contract obeys httpapi's); a new package needs one here.
func TestImportDirection(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps,Standard", "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/nexus-cloud/nexus-core/"
	deps := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p struct {
			ImportPath string
			Deps       []string
			Standard   bool
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(p.ImportPath, mod) {
			deps[strings.TrimPrefix(p.ImportPath, mod)] = p.Deps
		}
	}

	// What each package may not depend on, directly or through another package (prefixes), ...
	storage := []string{"gorm.io/", "github.com/jackc/", "github.com/glebarez/"}
	http := []string{"github.com/labstack/", "github.com/getkin/", "github.com/oapi-codegen/"}
	// the OpenTelemetry SDK and exporter: only internal/telemetry builds them (the others use the API alone)
	otelSDK := []string{"go.opentelemetry.io/otel/sdk", "go.opentelemetry.io/otel/exporters/"}
	forbidden := map[string][]string{
		// the vocabulary every layer shares: the standard library only
		"internal/nexus": {mod, "github.com/", "gorm.io/", "golang.org/x/"},
		// reads the environment: nothing of this module, no third-party code but its parsing library
		"internal/config": {mod, "github.com/", "gorm.io/"},
		// a limiter over throttled and Redis: nothing of this module, no HTTP, no database, no tokens
		"internal/ratelimit": cat([]string{mod, "github.com/lestrrat-go/"}, storage, http),
		// the domain: the vocabulary, never the transport, the storage or the configuration
		"internal/auth":      {mod + "gen", mod + "internal/store", mod + "internal/httpapi", mod + "internal/config", mod + "internal/ratelimit", "github.com/labstack/echo", "gorm.io/"},
		"internal/clients":   {mod + "gen", mod + "internal/store", mod + "internal/httpapi", mod + "internal/config", mod + "internal/ratelimit", mod + "internal/auth", mod + "internal/users", mod + "internal/analytics", "github.com/labstack/echo", "gorm.io/", "github.com/getkin/"},
		"internal/users":     {mod + "gen", mod + "internal/store", mod + "internal/httpapi", mod + "internal/config", mod + "internal/ratelimit", mod + "internal/auth", "github.com/", "gorm.io/"},
		"internal/analytics": cat([]string{mod + "gen", mod + "internal/store", mod + "internal/httpapi", mod + "internal/config", mod + "internal/ratelimit", mod + "internal/auth", mod + "internal/users", "github.com/labstack/echo", "gorm.io/", "github.com/getkin/"}, otelSDK),
		// storage implements the domain's interfaces and knows no HTTP
		"internal/store": cat([]string{mod + "gen", mod + "internal/httpapi", mod + "internal/config", mod + "internal/ratelimit"}, http, otelSDK),
		// HTTP reaches the database only through the domain
		"internal/httpapi": cat([]string{mod + "internal/store", mod + "internal/config"}, storage, otelSDK),
		// tracing from the OTEL_* variables: the SDK and the OTLP exporter, nothing of this module
		"internal/telemetry": {mod},
		// generated from openapi.yaml; the test helpers stand alone
		"gen":                {mod},
		"internal/testdb":    {mod},
		"internal/testredis": {mod},
		// the binaries, and the one constructor that wires the services, the store and the HTTP layer together
		// for them and for the HTTP tests (the test-helper rule below still applies)
		"cmd": nil,
		// the generator of the upgrade test's fixtures: runs a released binary (never this module's code) on a
		// throwaway PostgreSQL
		"test/upgrade/makefixtures": {mod + "internal/"},
		"internal/app":              nil,
		// the tests' shared statement of the contract's permission table: the vocabulary only
		"internal/nexus/nexustest": {mod, "github.com/", "gorm.io/", "golang.org/x/"},
		// the cluster test: the server binary over HTTP behind HAProxy (nothing of this module but the test helpers)
		"test/cluster": {mod + "internal/"},
	}
	// ... and the exceptions to those prefixes (exact packages).
	allowed := map[string][]string{
		"internal/config":           {"github.com/caarlos0/env/v11"},
		"internal/auth":             {mod + "internal/nexus"},
		"internal/users":            {mod + "internal/nexus"},
		"internal/clients":          {mod + "internal/nexus"},
		"test/upgrade/makefixtures": {mod + "internal/testdb"},
		"test/cluster":              {mod + "internal/testdb", mod + "internal/testredis", mod + "internal/httpapi/apitest"},
		"internal/nexus/nexustest":  {mod + "internal/nexus"},
		"internal/analytics":        {mod + "internal/nexus"},
		"internal/store":            {mod + "internal/nexus", mod + "internal/auth", mod + "internal/users", mod + "internal/analytics", mod + "internal/clients"},
	}
	// The test helpers are for tests (apitest checks responses against openapi.yaml): no binary carries them but the
	// load test, which starts its own PostgreSQL.
	testHelpers := []string{mod + "internal/testdb", mod + "internal/testredis", mod + "internal/store/storetest", mod + "internal/httpapi/apitest"}
	mayUseHelpers := map[string]bool{"cmd/loadtest": true, "internal/store/storetest": true, "test/upgrade/makefixtures": true, "test/cluster": true}

	var pkgs []string
	for pkg := range deps {
		pkgs = append(pkgs, pkg)
	}
	sort.Strings(pkgs)
	for _, rule := range []string{"internal/nexus", "internal/config", "internal/ratelimit", "internal/httpapi", "internal/store", "cmd/nexus"} {
		if _, ok := deps[rule]; !ok {
			t.Errorf("package %s not found", rule)
		}
	}
	for _, pkg := range pkgs {
		rule, ok := ruleFor(pkg, forbidden)
		if !ok {
			t.Errorf("package %s has no rule in TestImportDirection", pkg)
			continue
		}
		isHelper := false
		for _, h := range testHelpers {
			isHelper = isHelper || mod+pkg == h
		}
	next:
		for _, d := range deps[pkg] {
			if !isHelper && !mayUseHelpers[pkg] {
				for _, h := range testHelpers {
					if d == h {
						t.Errorf("%s imports the test helper %s", pkg, d)
					}
				}
			}
			for _, a := range allowed[rule] {
				if d == a {
					continue next
				}
			}
			for _, b := range forbidden[rule] {
				if strings.HasPrefix(d, b) {
					t.Errorf("%s imports %s", pkg, d)
				}
			}
		}
	}
}

// ruleFor returns the longest rule path that is pkg or a parent of it.
func ruleFor(pkg string, rules map[string][]string) (string, bool) {
	best, found := "", false
	for r := range rules {
		if (pkg == r || strings.HasPrefix(pkg, r+"/")) && len(r) >= len(best) {
			best, found = r, true
		}
	}
	return best, found
}

func cat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
