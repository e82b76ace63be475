package httpapi

import (
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "<p>plain text</p>\n"},
		{"# Title\n## Heading\n##### Deep", "<h3>Title</h3>\n<h4>Heading</h4>\n<h6>Deep</h6>\n"},
		{"- one\n- two `x`\n  continued", "<ul>\n<li>one</li>\n<li>two <code>x</code>\ncontinued</li>\n</ul>\n"},
		{"| a | b |\n|---|---|\n| `c` | d |", "<table>\n<thead>\n<tr>\n<th>a</th>\n<th>b</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td><code>c</code></td>\n<td>d</td>\n</tr>\n</tbody>\n</table>\n"},
		{"see [RFC](https://example.com/x) and **bold**", `<p>see <a href="https://example.com/x">RFC</a> and <strong>bold</strong></p>` + "\n"},
		{"`**not bold**` and `<b>`", "<p><code>**not bold**</code> and <code>&lt;b&gt;</code></p>\n"},
		// Raw HTML is shown as text, neither passed through nor dropped.
		{"send `Bearer` <access_token> & <b>x</b>", "<p>send <code>Bearer</code> &lt;access_token&gt; &amp; &lt;b&gt;x&lt;/b&gt;</p>\n"},
		{"<div>\nblock\n</div>", "<p>&lt;div&gt;\nblock\n&lt;/div&gt;</p>\n"},
		// Only http(s) links are made; images become their text.
		{"[rel](/v2/x), [mail](mailto:a@b.c), <mailto:a@b.c> and ![pic](https://example.com/p.png)", "<p>rel, mail, mailto:a@b.c and pic</p>\n"},
		{"<https://example.com/y>", `<p><a href="https://example.com/y">https://example.com/y</a></p>` + "\n"},
	} {
		if got := string(markdown(tc.in)); got != tc.want {
			t.Errorf("markdown(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	for _, evil := range []string{"<script>alert(1)</script>", "[x](javascript:alert(1))", `[x](https://a.b/" onclick="y)`, "<img src=x onerror=y>",
		"![x](data:image/png;base64,AAAA)", "x <iframe src=y>"} {
		got := string(markdown(evil))
		if strings.Contains(got, "<script") || strings.Contains(got, "javascript:alert(1)\"") || strings.Contains(got, "<img") ||
			strings.Contains(got, "<iframe") || strings.Contains(got, `href="javascript`) || strings.Contains(got, `" onclick="`) {
			t.Errorf("markdown(%q) = %q: not escaped", evil, got)
		}
	}
}

func TestMarkdownInline(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain `code` and [RFC](https://example.com/x)", `plain <code>code</code> and <a href="https://example.com/x">RFC</a>`},
		{"## not a heading\n- not a list", "## not a heading\n- not a list"},
		{"a <b>", "a &lt;b&gt;"},
		{"one\n\ntwo", "<p>one</p>\n<p>two</p>"},
	} {
		if got := inline(tc.in); got != tc.want {
			t.Errorf("inline(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
