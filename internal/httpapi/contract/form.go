package contract

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// readForm reads the body of an operation that takes application/x-www-form-urlencoded (the OAuth endpoints)
// under the same limits as JSON (readLimited), and holds it to RFC 6749 §3.2 and §3.1: one Content-Type, the
// form media type in UTF-8, a body that parses as a form, and each of the operation's parameters (known) given
// at most once (which value counts would otherwise be up to each reader) and valid UTF-8 once decoded. Other
// parameters are ignored, as RFC 6749 §3.2 requires, however often they are given and whatever they hold: they
// are left out of the body that is put back for validation and binding. One answer names every failing
// parameter.
func readForm(req *http.Request, limit int64, known map[string]bool) ([]byte, error) {
	body, gz, err := readLimited(req, limit)
	if err != nil {
		return nil, err
	}
	if err := checkMediaType(req.Header, echo.MIMEApplicationForm); err != nil {
		return nil, err
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, nexus.Invalid(nexus.BodyField("", "must be application/x-www-form-urlencoded: name=value pairs joined by &, percent-encoded"))
	}
	var fields []nexus.FieldError
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		vs := values[name]
		if !known[name] {
			delete(values, name)
			continue
		}
		pointer := "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(name)
		switch {
		case len(vs) > 1:
			fields = append(fields, nexus.BodyField(pointer, "must be given at most once"))
		case !utf8.ValidString(vs[0]):
			fields = append(fields, nexus.BodyField(pointer, "must be valid UTF-8"))
		}
	}
	if len(fields) > 0 {
		return nil, nexus.Invalid(fields...)
	}
	if len(values) != len(names) {
		body = []byte(values.Encode())
	}
	putBack(req, body, gz)
	return body, nil
}
