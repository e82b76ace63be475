package httpapi

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

func TestServedContract(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	file, err := os.ReadFile("../../openapi.yaml")
	must(t, err)

	r := e.do("GET", "/v2/openapi.yaml", nil)
	if r.status != 200 || !bytes.Equal(r.body, file) {
		t.Fatalf("GET /v2/openapi.yaml: %d, body equal to openapi.yaml: %v (run make generate?)", r.status, bytes.Equal(r.body, file))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type = %q", ct)
	}

	// The JSON is the same document: compare with openapi.yaml as an independent YAML parser reads it.
	var fromYAML any
	must(t, yaml.Unmarshal(file, &fromYAML))
	raw, err := json.Marshal(fromYAML)
	must(t, err)
	var want, got any
	must(t, json.Unmarshal(raw, &want))
	r = e.do("GET", "/v2/openapi.json", nil)
	must(t, json.Unmarshal(r.body, &got))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GET /v2/openapi.json differs from openapi.yaml (-yaml +json):\n%s", diff)
	}
}

func TestDocsPage(t *testing.T) {
	e := newEnv(t, storetest.Open(t, store.SQLite))
	r := e.do("GET", "/docs", nil)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /docs: %d %s", r.status, r.header.Get("Content-Type"))
	}
	page := string(r.body)
	for key, op := range strictOps {
		method, _, _ := strings.Cut(key, " ")
		id := op.Route.Operation.OperationID
		if !strings.Contains(page, `data-operation-id="`+id+`"`) || !strings.Contains(page, op.Route.Path) {
			t.Errorf("the page lacks %s %s (%s)", method, op.Route.Path, id)
		}
	}
	// Nothing is loaded from elsewhere: no scripts, no images, and only same-origin stylesheets.
	if strings.Contains(page, "<script") || strings.Contains(page, " src=") {
		t.Error("the page loads scripts or images")
	}
	for _, link := range regexp.MustCompile(`<link [^>]*href="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if !strings.HasPrefix(link[1], "/") || strings.HasPrefix(link[1], "//") {
			t.Errorf("the page links %q", link[1])
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'self'") {
		t.Errorf("CSP = %q", csp)
	}
	css := e.do("GET", "/docs/style.css", nil)
	if css.status != 200 || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") || len(css.body) < 100 {
		t.Errorf("GET /docs/style.css: %d %q", css.status, css.header.Get("Content-Type"))
	}
}
