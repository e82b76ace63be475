// Command nexus is the Nexus Core API server and its admin tool.
//
//	nexus serve [--dev] [--addr host:port]
//	nexus migrate
//	nexus keys rotate [--json]
//	nexus org create --name NAME [--json]
//	nexus client create --client-id ID --name NAME [--org ORG_ID] [--json]
//	nexus user create --org ORG_ID --email EMAIL --role ROLE [--name NAME] --password-stdin [--json]
//
// Every command reads the same NEXUS_* configuration (see the README).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nexus:", err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + " (run `nexus help`)" }

const usage = `usage:
  nexus serve [--dev] [--addr host:port]    run the API server (--dev: loopback HTTP, embedded DB, demo data)
  nexus migrate                             apply database migrations
  nexus keys rotate [--json]                add a signing key (published now, signs after NEXUS_KEY_PUBLISH_DELAY)
  nexus org create --name NAME [--json]
  nexus client create --client-id ID --name NAME [--org ORG_ID] [--json]
  nexus user create --org ORG_ID --email EMAIL --role admin|manager|analyst|member [--name NAME] --password-stdin [--json]
`

// run is the whole program: main only wires it to the process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command"}
	}
	cmd, rest := args[0], args[1:]
	sub := ""
	if len(rest) > 0 {
		sub = rest[0]
	}
	switch {
	case cmd == "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case cmd == "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case cmd == "keys" && sub == "rotate":
		return rotateKeys(ctx, rest[1:], getenv, stdout, stderr)
	case cmd == "org" && sub == "create":
		return createOrg(ctx, rest[1:], getenv, stdout, stderr)
	case cmd == "client" && sub == "create":
		return createClient(ctx, rest[1:], getenv, stdout, stderr)
	case cmd == "user" && sub == "create":
		return createUser(ctx, rest[1:], getenv, stdin, stdout, stderr)
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", joinArgs(args, 2))}
}

func joinArgs(args []string, n int) string {
	if len(args) < n {
		n = len(args)
	}
	s := ""
	for i, a := range args[:n] {
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}
