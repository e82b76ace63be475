package httpapi

import (
	"html"
	"html/template"
	"regexp"
	"strings"
)

// markdown renders the small Markdown subset the contract's descriptions use: paragraphs, "## " headings,
// "- " lists (with indented continuation lines), pipe tables, `code`, **bold** and [links](https://…). All text
// is escaped first; only http(s) links are made.
func markdown(src string) template.HTML {
	var b strings.Builder
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	var para []string
	flush := func() {
		if len(para) > 0 {
			b.WriteString("<p>" + inline(strings.Join(para, " ")) + "</p>\n")
			para = nil
		}
	}
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			flush()
		case strings.HasPrefix(trimmed, "#"):
			flush()
			level := len(trimmed) - len(strings.TrimLeft(trimmed, "#"))
			level = min(max(level+2, 3), 6) // page headings own h1 and h2
			b.WriteString("<h" + string(rune('0'+level)) + ">" + inline(strings.TrimSpace(trimmed[level-2:])) + "</h" + string(rune('0'+level)) + ">\n")
		case strings.HasPrefix(trimmed, "- "):
			flush()
			b.WriteString("<ul>\n")
			for i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "- ") {
				item := strings.TrimPrefix(strings.TrimSpace(lines[i]), "- ")
				for i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  ") && !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "- ") {
					i++
					item += " " + strings.TrimSpace(lines[i])
				}
				b.WriteString("<li>" + inline(item) + "</li>\n")
				i++
			}
			i--
			b.WriteString("</ul>\n")
		case strings.HasPrefix(trimmed, "|"):
			flush()
			b.WriteString("<table>\n")
			header := true
			for i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|") {
				cells := strings.Split(strings.Trim(strings.TrimSpace(lines[i]), "|"), "|")
				if isRule(cells) {
					i++
					continue
				}
				tag := "td"
				if header {
					tag = "th"
				}
				b.WriteString("<tr>")
				for _, c := range cells {
					b.WriteString("<" + tag + ">" + inline(strings.TrimSpace(c)) + "</" + tag + ">")
				}
				b.WriteString("</tr>\n")
				header = false
				i++
			}
			i--
			b.WriteString("</table>\n")
		default:
			para = append(para, trimmed)
		}
	}
	flush()
	return template.HTML(b.String()) // #nosec G203 -- every piece of text went through inline, which escapes
}

func isRule(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(strings.TrimSpace(c), "-:") != "" {
			return false
		}
	}
	return true
}

var (
	mdCode = regexp.MustCompile("`([^`]+)`")
	mdBold = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdLink = regexp.MustCompile(`\[([^\]]+)\]\((https?://[^\s)]+)\)`)
)

// inline escapes text, then turns code spans, bold and http(s) links into HTML. Code spans are replaced by
// placeholders first, so nothing inside them is formatted.
func inline(text string) string {
	s := html.EscapeString(text)
	var codes []string
	s = mdCode.ReplaceAllStringFunc(s, func(m string) string {
		codes = append(codes, "<code>"+m[1:len(m)-1]+"</code>")
		return "\x00" + string(rune('0'+len(codes)-1)) + "\x00" // #nosec G115 -- code spans of one spec paragraph: a handful
	})
	s = mdBold.ReplaceAllString(s, "<strong>$1</strong>")
	s = mdLink.ReplaceAllString(s, `<a href="$2">$1</a>`)
	for i, c := range codes {
		s = strings.Replace(s, "\x00"+string(rune('0'+i))+"\x00", c, 1)
	}
	return s
}
