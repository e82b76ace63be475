package httpapi

import (
	"bytes"
	"html/template"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// The contract's descriptions are CommonMark with GFM tables (the rate-limit and permission tables), rendered by
// goldmark. Raw HTML is never passed through: html.WithUnsafe stays off, and escapeRawHTML shows it as text
// instead of goldmark's "raw HTML omitted" comment, so a `<token>` written outside backticks stays visible.
// docsRewrite moves headings two levels down (the page owns h1 and h2), keeps only http(s) links and turns
// images into their text, as the page loads nothing from elsewhere.
var (
	docsMarkdown = goldmark.New(
		goldmark.WithExtensions(extension.Table),
		goldmark.WithParserOptions(parser.WithASTTransformers(util.Prioritized(docsRewrite{}, 100))),
		goldmark.WithRendererOptions(renderer.WithNodeRenderers(util.Prioritized(escapeRawHTML{}, 100))),
	)
	// docsInline reads a short description (a summary, a parameter's or a property's) as paragraphs only: no
	// headings, lists or tables inside a table cell.
	docsInline = goldmark.New(
		goldmark.WithParser(parser.NewParser(
			parser.WithBlockParsers(util.Prioritized(parser.NewParagraphParser(), 1000)),
			parser.WithInlineParsers(parser.DefaultInlineParsers()...),
			parser.WithParagraphTransformers(parser.DefaultParagraphTransformers()...),
			parser.WithASTTransformers(util.Prioritized(docsRewrite{}, 100)),
		)),
		goldmark.WithRendererOptions(renderer.WithNodeRenderers(util.Prioritized(escapeRawHTML{}, 100))),
	)
)

// markdown renders a description of the contract as HTML for the docs page.
func markdown(src string) template.HTML {
	var b bytes.Buffer
	if err := docsMarkdown.Convert([]byte(src), &b); err != nil {
		return template.HTML(template.HTMLEscapeString(src)) // #nosec G203 -- escaped; goldmark fails only on a failing writer
	}
	return template.HTML(b.String()) // #nosec G203 -- goldmark escapes text and raw HTML (escapeRawHTML); links are http(s) only
}

// inline renders a short description as HTML without the paragraph around it, for a table cell or a list item.
func inline(src string) string {
	var b bytes.Buffer
	if err := docsInline.Convert([]byte(src), &b); err != nil {
		return template.HTMLEscapeString(src)
	}
	s := strings.TrimSuffix(b.String(), "\n")
	if inner, ok := strings.CutPrefix(s, "<p>"); ok && strings.Count(s, "<p>") == 1 {
		s, _ = strings.CutSuffix(inner, "</p>")
	}
	return s
}

// docsRewrite is the AST transformer of the docs page's Markdown: headings two levels down (h3 to h6), links
// other than http(s) and all images reduced to their text.
type docsRewrite struct{}

func (docsRewrite) Transform(doc *ast.Document, reader text.Reader, _ parser.Context) {
	source := reader.Source()
	var unwrap []ast.Node
	_ = ast.Walk(doc, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			n.Level = min(max(n.Level+2, 3), 6)
		case *ast.Link:
			if !webURL(n.Destination) {
				unwrap = append(unwrap, n)
			}
		case *ast.AutoLink:
			if !webURL(n.URL(source)) {
				unwrap = append(unwrap, n)
			}
		case *ast.Image:
			unwrap = append(unwrap, n)
		}
		return ast.WalkContinue, nil
	})
	for _, n := range unwrap {
		parent := n.Parent()
		if auto, ok := n.(*ast.AutoLink); ok {
			parent.ReplaceChild(parent, n, ast.NewString(auto.Label(source)))
			continue
		}
		for c := n.FirstChild(); c != nil; {
			next := c.NextSibling()
			parent.InsertBefore(parent, n, c)
			c = next
		}
		parent.RemoveChild(parent, n)
	}
}

func webURL(u []byte) bool {
	s := strings.ToLower(string(u))
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// escapeRawHTML renders raw HTML, inline or as a block, as escaped text.
type escapeRawHTML struct{}

func (escapeRawHTML) RegisterFuncs(r renderer.NodeRendererFuncRegisterer) {
	r.Register(ast.KindRawHTML, func(w util.BufWriter, source []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			segs := n.(*ast.RawHTML).Segments
			for i := range segs.Len() {
				seg := segs.At(i)
				_, _ = w.Write(util.EscapeHTML(seg.Value(source)))
			}
		}
		return ast.WalkSkipChildren, nil
	})
	r.Register(ast.KindHTMLBlock, func(w util.BufWriter, source []byte, n ast.Node, entering bool) (ast.WalkStatus, error) {
		if entering {
			block := n.(*ast.HTMLBlock)
			_, _ = w.WriteString("<p>")
			lines := block.Lines()
			for i := range lines.Len() {
				line := lines.At(i)
				_, _ = w.Write(util.EscapeHTML(line.Value(source)))
			}
			if block.HasClosure() {
				_, _ = w.Write(util.EscapeHTML(block.ClosureLine.Value(source)))
			}
			_, _ = w.WriteString("</p>\n")
		}
		return ast.WalkSkipChildren, nil
	})
}
