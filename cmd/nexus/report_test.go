package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// TestReportPlainWords checks what the command line prints on failure: an ordinary failure (here, a database
// that does not exist) in plain words with its cause, never the API's "internal: An unexpected error
// occurred."; a client-facing error by its message; "internal" only for an error nobody explained.
func TestReportPlainWords(t *testing.T) {
	u, err := url.Parse(testdb.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/nexus_no_such_database"
	runErr := run(context.Background(), []string{"migrate"},
		envFunc(map[string]string{"NEXUS_DATABASE_URL": u.String(), "NEXUS_LOG_LEVEL": "warn"}), nil, io.Discard, io.Discard)
	var out bytes.Buffer
	if status := report(&out, runErr); status != 1 {
		t.Errorf("exit status %d, want 1", status)
	}
	got := out.String()
	if !strings.HasPrefix(got, "nexus: ") || !strings.Contains(got, `database "nexus_no_such_database" does not exist`) ||
		strings.Contains(got, "internal") || strings.Contains(got, "unexpected") {
		t.Errorf("printed %q, want the cause in plain words", got)
	}

	for _, tt := range []struct {
		err    error
		want   string
		status int
	}{
		{fmt.Errorf("open data: %w", nexus.Internal(errors.New("disk full"))), "nexus: open data: disk full\n", 1},
		{fmt.Errorf("open postgres database: %w", nexus.Unavailable(errors.New("dial tcp 127.0.0.1:1: connect: connection refused"))),
			"nexus: open postgres database: dial tcp 127.0.0.1:1: connect: connection refused\n", 1},
		{fmt.Errorf("create user: %w", nexus.ErrConflict), "nexus: create user: " + nexus.ErrConflict.Message + "\n", 1},
		{&nexus.Error{Kind: nexus.KindInternal, Code: nexus.CodeInternal, Message: "An unexpected error occurred."},
			"nexus: internal: An unexpected error occurred.\n", 1},
		{usageError{"no command"}, "nexus: no command (run `nexus help`)\n", 2},
	} {
		var out bytes.Buffer
		if status := report(&out, tt.err); out.String() != tt.want || status != tt.status {
			t.Errorf("report(%v) printed %q and returned %d, want %q and %d", tt.err, out.String(), status, tt.want, tt.status)
		}
	}
	if status := report(io.Discard, nil); status != 0 {
		t.Errorf("report(nil) = %d", status)
	}
}
