package nexus_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection keeps the layers importing one way: httpapi → domain ← store, the domain packages free of
// the generated code, Echo and GORM, and this package free of everything but the standard library.
func TestImportDirection(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps,Standard", "../...").Output()
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
	forbidden := map[string][]string{
		"internal/nexus":     {mod, "github.com/", "gorm.io/", "golang.org/x/"},
		"internal/config":    {mod, "github.com/", "gorm.io/"},
		"internal/auth":      {mod + "gen", mod + "internal/store", mod + "internal/httpapi", mod + "internal/config", "github.com/labstack/echo", "gorm.io/"},
		"internal/users":     {mod + "gen", mod + "internal/store", mod + "internal/httpapi", mod + "internal/config", mod + "internal/auth", "github.com/", "gorm.io/"},
		"internal/analytics": {mod + "gen", mod + "internal/store", mod + "internal/httpapi", mod + "internal/config", mod + "internal/auth", mod + "internal/users", "github.com/labstack/echo", "gorm.io/", "github.com/getkin/"},
		"internal/store":     {mod + "gen", mod + "internal/httpapi", "github.com/labstack/echo", "github.com/getkin/"},
		"internal/httpapi":   {mod + "internal/store", "gorm.io/"},
	}
	allowed := map[string][]string{"internal/config": {"github.com/caarlos0/env/v11"}, "internal/auth": {mod + "internal/nexus"}, "internal/users": {mod + "internal/nexus"},
		"internal/analytics": {mod + "internal/nexus"},
		"internal/store":     {mod + "internal/nexus", mod + "internal/auth", mod + "internal/users", mod + "internal/analytics"},
		"internal/httpapi":   {mod + "internal/nexus", mod + "internal/auth", mod + "internal/users", mod + "internal/analytics", mod + "gen"}}
	for pkg, bad := range forbidden {
		list, ok := deps[pkg]
		if !ok {
			t.Errorf("package %s not found", pkg)
			continue
		}
	next:
		for _, d := range list {
			for _, a := range allowed[pkg] {
				if d == a {
					continue next
				}
			}
			for _, b := range bad {
				if strings.HasPrefix(d, b) {
					t.Errorf("%s imports %s", pkg, d)
				}
			}
		}
	}
}
