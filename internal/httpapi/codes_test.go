package httpapi

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// TestProblemCodes holds the problem codes of internal/nexus/codes.go to the error table of openapi.yaml: the same
// codes, each with the status the mapper gives it, and a title.
func TestProblemCodes(t *testing.T) {
	raw, err := os.ReadFile("../../openapi.yaml")
	must(t, err)
	row := regexp.MustCompile("(?m)^    \\| `([a-z_]+)` \\| ([0-9]{3}) \\|")
	documented := map[nexus.Code]int{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		status, _ := strconv.Atoi(m[2])
		documented[nexus.Code(m[1])] = status
	}
	codes := nexus.Codes()
	for _, c := range codes {
		if c.Title() == "" {
			t.Errorf("%s has no title", c)
		}
		if _, ok := documented[c]; !ok {
			t.Errorf("%s is not in the error table of openapi.yaml", c)
		}
	}
	for c := range documented {
		if !slices.Contains(codes, c) {
			t.Errorf("openapi.yaml documents %s, which codes.go does not define", c)
		}
	}
	// The statuses the mapper gives the errors the service makes.
	for _, e := range []*nexus.Error{nexus.Invalid(), nexus.ErrInvalidCredentials, nexus.ErrInvalidClient, nexus.ErrInvalidGrant,
		nexus.ErrRefreshTokenReused, nexus.ErrUnauthenticated, nexus.ErrAccountInactive, nexus.ErrInsufficientPermission,
		nexus.ErrNotFound, nexus.ErrConflict, nexus.RateLimited(0), nexus.ErrUnavailable, nexus.Internal(nil),
		asNexus(echo.ErrNotFound), asNexus(echo.ErrMethodNotAllowed),
		{Kind: nexus.KindInvalid, Code: nexus.CodeNotAcceptable}, {Kind: nexus.KindInvalid, Code: nexus.CodePayloadTooLarge},
		{Kind: nexus.KindInvalid, Code: nexus.CodeUnsupportedMediaType}, {Kind: nexus.KindInvalid, Code: nexus.CodeRequestHeadersTooLarge},
	} {
		if got, want := statusOf(e), documented[e.Code]; got != want {
			t.Errorf("%s: status %d, openapi.yaml says %d", e.Code, got, want)
		}
	}
}

// TestCodesSpelledOnce checks that no production source file but internal/nexus/codes.go spells a problem code
// as a string: every other file names it by its constant. (Words that are also codes but mean something else
// are listed with their file.)
func TestCodesSpelledOnce(t *testing.T) {
	otherMeaning := map[string]string{
		"internal/httpapi/health.go":  `"unavailable"`, // a readiness state of /readyz
		"internal/ratelimit/store.go": `"unavailable"`, // why Redis failed, for /readyz
	}
	var quoted []string
	for _, c := range nexus.Codes() {
		quoted = append(quoted, strconv.Quote(string(c)))
	}
	for _, dir := range []string{"../../internal", "../../cmd"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			rel := strings.TrimPrefix(filepath.ToSlash(path), "../../")
			if rel == "internal/nexus/codes.go" {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, q := range quoted {
				if strings.Contains(string(src), q) && otherMeaning[rel] != q {
					t.Errorf("%s spells the problem code %s; use its constant from internal/nexus/codes.go", rel, q)
				}
			}
			return nil
		})
		must(t, err)
	}
}
