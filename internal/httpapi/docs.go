package httpapi

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

//go:embed docs/page.html.tmpl docs/style.css
var docsFS embed.FS

// The reference page is rendered once, at start-up, from the same document that validates requests. It needs no
// script and loads nothing but its own stylesheet.
type docsPage struct {
	Title, Version, Description string
	Servers                     []docsServer
	Tags                        []docsTag
	Schemas                     []docsSchema
}

type docsServer struct{ URL, Description string }

type docsTag struct {
	Name, Description string
	Operations        []docsOperation
}

type docsOperation struct {
	ID, Method, Path, Summary, Description string
	Secured                                bool
	Parameters                             []docsField
	Body                                   *docsBody
	Responses                              []docsResponse
}

type docsField struct {
	Name, In, Type, Description string
	Required                    bool
}

type docsBody struct{ ContentType, Schema, Example string }

type docsResponse struct{ Status, Description, ContentType, Schema string }

type docsSchema struct {
	Name, Type, Description string
	Properties              []docsField
}

func renderDocs(spec *openapi3.T) ([]byte, error) {
	tmpl, err := template.New("page.html.tmpl").Funcs(template.FuncMap{"lower": strings.ToLower, "markdown": markdown,
		"inline": func(s string) template.HTML { return template.HTML(inline(s)) }}). // #nosec G203 -- inline escapes its text (the embedded spec) before adding markup
		ParseFS(docsFS, "docs/page.html.tmpl")
	if err != nil {
		return nil, err
	}
	page := docsPage{Title: spec.Info.Title, Version: spec.Info.Version, Description: spec.Info.Description}
	for _, s := range spec.Servers {
		page.Servers = append(page.Servers, docsServer{URL: s.URL, Description: s.Description})
	}
	byTag := map[string]*docsTag{}
	for _, t := range spec.Tags {
		page.Tags = append(page.Tags, docsTag{Name: t.Name, Description: t.Description})
	}
	for i := range page.Tags {
		byTag[page.Tags[i].Name] = &page.Tags[i]
	}
	paths := spec.Paths.InMatchingOrder()
	sort.Strings(paths)
	for _, path := range paths {
		item := spec.Paths.Value(path)
		for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			op := item.GetOperation(method)
			if op == nil {
				continue
			}
			security := spec.Security
			if op.Security != nil {
				security = *op.Security
			}
			o := docsOperation{ID: op.OperationID, Method: method, Path: path, Summary: op.Summary,
				Description: op.Description, Secured: len(security) > 0}
			for _, p := range append(item.Parameters, op.Parameters...) {
				o.Parameters = append(o.Parameters, docsField{Name: p.Value.Name, In: p.Value.In, Required: p.Value.Required,
					Type: schemaType(p.Value.Schema), Description: p.Value.Description})
			}
			if rb := op.RequestBody; rb != nil && rb.Value != nil {
				for ct, mt := range rb.Value.Content {
					b := &docsBody{ContentType: ct, Schema: schemaType(mt.Schema)}
					for _, ex := range mt.Examples {
						if ex.Value != nil {
							raw, _ := json.MarshalIndent(ex.Value.Value, "", "  ")
							b.Example = string(raw)
							break
						}
					}
					o.Body = b
				}
			}
			codes := make([]string, 0, op.Responses.Len())
			for code := range op.Responses.Map() {
				codes = append(codes, code)
			}
			sort.Strings(codes)
			for _, code := range codes {
				r := op.Responses.Value(code).Value
				resp := docsResponse{Status: code, Description: *r.Description}
				for ct, mt := range r.Content {
					resp.ContentType, resp.Schema = ct, schemaType(mt.Schema)
				}
				o.Responses = append(o.Responses, resp)
			}
			tag := "Other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			if byTag[tag] == nil {
				page.Tags = append(page.Tags, docsTag{Name: tag})
				for i := range page.Tags {
					byTag[page.Tags[i].Name] = &page.Tags[i]
				}
			}
			byTag[tag].Operations = append(byTag[tag].Operations, o)
		}
	}
	names := make([]string, 0, len(spec.Components.Schemas))
	for name := range spec.Components.Schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := spec.Components.Schemas[name].Value
		ds := docsSchema{Name: name, Type: schemaType(spec.Components.Schemas[name]), Description: s.Description}
		props := make([]string, 0, len(s.Properties))
		for p := range s.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		for _, p := range props {
			ds.Properties = append(ds.Properties, docsField{Name: p, Type: schemaType(s.Properties[p]),
				Description: s.Properties[p].Value.Description, Required: contains(s.Required, p)})
		}
		page.Schemas = append(page.Schemas, ds)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, page); err != nil {
		return nil, fmt.Errorf("render the reference page: %w", err)
	}
	return buf.Bytes(), nil
}

// schemaType names a schema for people: its component name, or its type with format and enum.
func schemaType(ref *openapi3.SchemaRef) string {
	if ref == nil || ref.Value == nil {
		return ""
	}
	if ref.Ref != "" {
		return ref.Ref[strings.LastIndexByte(ref.Ref, '/')+1:]
	}
	s := ref.Value
	t := ""
	if s.Type != nil && len(*s.Type) > 0 {
		t = (*s.Type)[0]
	}
	if t == "array" {
		return "array of " + schemaType(s.Items)
	}
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vals[i] = fmt.Sprint(v)
		}
		t += ": " + strings.Join(vals, " | ")
	}
	return t
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// docsCSP allows the page its own stylesheet and nothing else.
const docsCSP = "default-src 'none'; style-src 'self'; frame-ancestors 'none'"

func (s *Server) docs(c echo.Context) error {
	c.Response().Header().Set("Content-Security-Policy", docsCSP)
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.HTMLBlob(http.StatusOK, s.docsHTML)
}

func (s *Server) docsStyle(c echo.Context) error {
	css, err := docsFS.ReadFile("docs/style.css")
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "text/css; charset=utf-8", css)
}
