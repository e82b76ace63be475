package httpapi

import (
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "<p>plain text</p>\n"},
		{"## Heading", "<h4>Heading</h4>\n"},
		{"- one\n- two `x`\n  continued", "<ul>\n<li>one</li>\n<li>two <code>x</code> continued</li>\n</ul>\n"},
		{"| a | b |\n|---|---|\n| `c` | d |", "<table>\n<tr><th>a</th><th>b</th></tr>\n<tr><td><code>c</code></td><td>d</td></tr>\n</table>\n"},
		{"see [RFC](https://example.com/x) and **bold**", `<p>see <a href="https://example.com/x">RFC</a> and <strong>bold</strong></p>` + "\n"},
		{"`**not bold**` and `<b>`", "<p><code>**not bold**</code> and <code>&lt;b&gt;</code></p>\n"},
	} {
		if got := string(markdown(tc.in)); got != tc.want {
			t.Errorf("markdown(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	for _, evil := range []string{"<script>alert(1)</script>", "[x](javascript:alert(1))", `[x](https://a.b/" onclick="y)`, "<img src=x onerror=y>"} {
		got := string(markdown(evil))
		if strings.Contains(got, "<script") || strings.Contains(got, "javascript:alert(1)\"") || strings.Contains(got, "<img") ||
			strings.Contains(got, `href="javascript`) || strings.Contains(got, `" onclick="`) {
			t.Errorf("markdown(%q) = %q: not escaped", evil, got)
		}
	}
}
