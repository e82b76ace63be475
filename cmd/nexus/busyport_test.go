package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// TestServeDevBusyPortSeedsNothing: `serve --dev` on a port another process holds fails saying the address is in
// use, before it seeds anything: no organization in the database and no password printed. The next start, on a
// free port, seeds the demo data and prints its one-time password then.
func TestServeDevBusyPortSeedsNothing(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			vars := map[string]string{"NEXUS_DATA_DIR": t.TempDir(), "NEXUS_HTTP_ADDR": taken.Addr().String(), "NEXUS_LOG_LEVEL": "warn"}
			if dialect == store.Postgres {
				vars["NEXUS_DATABASE_URL"] = testdb.PostgresURL(t)
			}

			var stdout, stderr bytes.Buffer
			err = run(context.Background(), []string{"serve", "--dev"}, envFunc(vars), strings.NewReader(""), &stdout, &stderr)
			if err == nil || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("serve on a taken port: err = %v, want address already in use", err)
			}
			if out := stdout.String() + stderr.String(); strings.Contains(out, "password") || strings.Contains(out, "seeded") {
				t.Errorf("a start that could not bind its port printed demo credentials:\n%s", out)
			}
			db, err := store.Open(context.Background(), store.Options{URL: vars["NEXUS_DATABASE_URL"], DataDir: vars["NEXUS_DATA_DIR"]})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			empty, err := store.NewDirectory(db).Empty(context.Background())
			_ = db.Close()
			if err != nil || !empty {
				t.Fatalf("a start that could not bind its port left an organization in the database (empty = %v, err = %v)", empty, err)
			}

			// The one-time password is printed by the start that serves.
			vars["NEXUS_HTTP_ADDR"] = "127.0.0.1:0"
			s := start(t, vars, "serve", "--dev")
			m := seeded.FindStringSubmatch(s.stdout.String())
			if m == nil {
				t.Fatalf("the first start that served printed no demo credentials:\n%s", s.stdout)
			}
			walkthrough(t, s, m[1], m[2], m[3])
		})
	}
}
