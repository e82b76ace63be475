// Package apitest checks HTTP responses against openapi.yaml, for the tests of every package that talks to the
// server: the handler tests of internal/httpapi (through Check) and the tests that run the real `nexus serve`
// (through Transport, an http.RoundTripper that checks every response it carries). No binary imports it.
//
// A response of an operation of the contract must have a documented status, declare on that response every header
// field it carries (apart from the generic ones documented once), and match the response's schemas, with every
// object schema closed (no undocumented field). A response outside the contract under the base path must be a 404
// or 405 problem. Every response carries X-Request-Id.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
)

// BasePath is where the API is served (httpapi.BasePath; this package cannot import httpapi, whose tests use it).
const BasePath = "/v2"

var (
	once sync.Once
	spec *openapi3.T
	ops  map[string]*contract.Operation
	err0 error
)

// specPath finds openapi.yaml at the root of the module, from the test's working directory up.
func specPath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "openapi.yaml"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("apitest: no go.mod above the working directory")
		}
		dir = parent
	}
}

func load() {
	path, err := specPath()
	if err != nil {
		err0 = err
		return
	}
	loader := openapi3.NewLoader()
	spec, err0 = loader.LoadFromFile(path)
	if err0 != nil {
		return
	}
	spec.SetStringFormatValidators(contract.StringFormats())
	if err0 = spec.Validate(loader.Context); err0 != nil {
		return
	}
	closed := map[*openapi3.Schema]bool{}
	var closeSchema func(s *openapi3.SchemaRef)
	closeSchema = func(s *openapi3.SchemaRef) {
		if s == nil || s.Value == nil || closed[s.Value] {
			return
		}
		v := s.Value
		closed[v] = true
		if len(v.Properties) > 0 && v.AdditionalProperties.Has == nil && v.AdditionalProperties.Schema == nil {
			no := false
			v.AdditionalProperties.Has = &no
		}
		for _, p := range v.Properties {
			closeSchema(p)
		}
		closeSchema(v.Items)
	}
	for _, r := range spec.Components.Responses {
		for _, mt := range r.Value.Content {
			closeSchema(mt.Schema)
		}
	}
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			for _, r := range op.Responses.Map() {
				for _, mt := range r.Value.Content {
					closeSchema(mt.Schema)
				}
			}
		}
	}
	ops, err0 = contract.Index(spec, BasePath)
}

var echoParam = regexp.MustCompile(`:[^/]+`)

// genericHeaders are the response header fields that the API description documents once, for every response
// ("Headers on every response"), instead of on each response: HTTP's own, the security headers and CORS. Any other
// field a response carries must be declared on that response in openapi.yaml.
var genericHeaders = map[string]bool{
	"Content-Type": true, "Content-Length": true, "Date": true, "Connection": true, "Vary": true,
	"X-Content-Type-Options": true, "Content-Security-Policy": true, "Referrer-Policy": true,
	"Strict-Transport-Security": true,
}

// Validate checks a response to req against openapi.yaml and returns what is wrong with it, or nil. HEAD is
// checked as its GET without a body, OPTIONS as HTTP's own question (204 with Allow).
func Validate(req *http.Request, status int, header http.Header, body []byte) error {
	once.Do(load)
	if err0 != nil {
		return fmt.Errorf("load openapi.yaml: %w", err0)
	}
	if id := header.Get("X-Request-Id"); id == "" {
		return fmt.Errorf("%s %s: response without X-Request-Id", req.Method, req.URL.Path)
	}
	if !strings.HasPrefix(req.URL.Path, BasePath+"/") || req.URL.Path == BasePath+"/openapi.yaml" {
		return nil // /healthz, /readyz, /docs, /v2/openapi.yaml: outside the contract
	}
	method := req.Method
	switch method {
	case http.MethodHead:
		if len(body) != 0 {
			return fmt.Errorf("HEAD %s: %d bytes of body", req.URL.Path, len(body))
		}
		method = http.MethodGet
	case http.MethodOptions:
		if header.Get("Access-Control-Allow-Origin") != "" {
			return nil // a CORS preflight, answered by the CORS middleware (TestCORS)
		}
		if status != http.StatusNoContent && status != http.StatusNotFound || status == http.StatusNoContent && (header.Get("Allow") == "" || len(body) != 0) {
			return fmt.Errorf("OPTIONS %s: %d, Allow %q, %d bytes", req.URL.Path, status, header.Get("Allow"), len(body))
		}
		if status == http.StatusNoContent {
			return nil
		}
	}
	var op *contract.Operation
	for key, o := range ops {
		m, path, _ := strings.Cut(key, " ")
		re := regexp.MustCompile("^" + echoParam.ReplaceAllString(regexp.QuoteMeta(path), "[^/]+") + "$")
		if m == method && re.MatchString(req.URL.Path) {
			op = o
		}
	}
	if op == nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("%s %s: %d for a request outside the contract", req.Method, req.URL.Path, status)
		}
		if req.Method == http.MethodHead {
			return nil
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			return fmt.Errorf("%s %s: %d with a body that is not JSON: %w", req.Method, req.URL.Path, status, err)
		}
		if err := spec.Components.Schemas["Problem"].Value.VisitJSON(v); err != nil {
			return fmt.Errorf("%s %s: problem body does not match the Problem schema: %w\n%s", req.Method, req.URL.Path, err, body)
		}
		return nil
	}
	if declared := op.Route.Operation.Responses.Status(status); declared != nil && declared.Value != nil {
		for name := range header {
			if genericHeaders[name] || strings.HasPrefix(name, "Access-Control-") {
				continue
			}
			found := false
			for h := range declared.Value.Headers {
				found = found || http.CanonicalHeaderKey(h) == name
			}
			if !found {
				return fmt.Errorf("%s %s: response %d carries %s, which openapi.yaml does not declare on it", req.Method, req.URL.Path, status, name)
			}
		}
	}
	get := req
	if req.Method == http.MethodHead {
		get = req.Clone(req.Context())
		get.Method = http.MethodGet
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: get, PathParams: map[string]string{}, Route: op.Route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: status,
		Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: req.Method == http.MethodHead,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.WithStringFormatValidators(contract.StringFormats())}},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s: response %d does not match openapi.yaml: %w\n%s", req.Method, req.URL.Path, status, err, body)
	}
	return nil
}

// Check is Validate for the test's own goroutine: a response that does not match fails the test at once.
func Check(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if err := Validate(req, status, header, body); err != nil {
		t.Fatal(err)
	}
}

// Transport is an http.RoundTripper that checks every response it carries against openapi.yaml. A response that
// does not match fails the test (t.Error: a transport may run on any goroutine) and the request returns the error.
type Transport struct {
	T    testing.TB
	Base http.RoundTripper // nil: http.DefaultTransport
}

// RoundTrip sends req and checks the response, whose body it reads and hands back unchanged.
func (tr Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := tr.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := Validate(req, resp.StatusCode, resp.Header, body); err != nil {
		tr.T.Error(err)
		return nil, err
	}
	return resp, nil
}

// Spec returns openapi.yaml as Validate reads it (object schemas of responses closed) and its operations indexed
// by "METHOD /path" (Echo's path syntax, under BasePath).
func Spec() (*openapi3.T, map[string]*contract.Operation, error) {
	once.Do(load)
	return spec, ops, err0
}
