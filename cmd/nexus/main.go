// Command nexus is the Nexus Core API server and its admin tool.
//
//	nexus serve [--dev] [--addr host:port]
//	nexus migrate
//	nexus backup --to FILE [--force] [--json]
//	nexus restore --from FILE [--json]
//	nexus keys rotate [--json]
//	nexus secret-key status [--json]
//	nexus org create --name NAME [--json]
//	nexus client create --client-id ID --name NAME [--org ORG_ID] [--json]
//	nexus client create --service --org ORG_ID --name NAME --scopes "SCOPE …" [--secret-expires RFC3339] [--json]
//	nexus client list --org ORG_ID [--json]
//	nexus client update --org ORG_ID --client-id ID [--name NAME] [--scopes "SCOPE …"] [--disable | --enable] [--json]
//	nexus client secret add --org ORG_ID --client-id ID [--expires RFC3339] [--json]
//	nexus client secret revoke --org ORG_ID --client-id ID --secret-id SECRET_ID [--json]
//	nexus user create --org ORG_ID --email EMAIL --role ROLE [--name NAME] --password-stdin [--json]
//	nexus version [--json]
//	nexus healthcheck [--live] [--addr host:port] [--timeout 3s]
//
// The first client create registers a login client, a public application through which users log in; the
// --service form and the other client commands manage service clients, which obtain tokens of their own with
// the OAuth 2.0 client credentials grant and act in one organization with the scopes granted (permissions of
// the matrix). A service client's secret is printed once; the server keeps only a keyed hash of it, which is
// why these commands need the server's NEXUS_SECRET_KEY.
//
// Every command but version reads the same NEXUS_* configuration (see the README); version prints the build
// information the Go tool recorded in the binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/nexus-cloud/nexus-core/internal/config"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(report(os.Stderr, err))
}

// report prints err for the operator and returns the exit status: 0 without an error, 2 for a mistake in the
// command line, an exitError's own (3: `secret-key status` finds the previous secret key still in use), 1
// otherwise.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "nexus:", plain(err))
	if errors.As(err, new(usageError)) {
		return 2
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// plain renders err in plain words. A *nexus.Error in the chain is written for an API client, who must not see
// the cause: there, an internal or unavailable error with a cause (a database that cannot be reached, a file that
// cannot be read) becomes its cause, since "An unexpected error occurred." or "Retry after the number of seconds
// in Retry-After" tells an operator nothing, and any other kind becomes its message and field details. Only an
// internal error without a cause is left as it is: its code, internal, and its message.
func plain(err error) string {
	msg := err.Error()
	var ne *nexus.Error
	if !errors.As(err, &ne) {
		return msg
	}
	var words string
	switch {
	case (ne.Kind == nexus.KindInternal || ne.Kind == nexus.KindUnavailable) && ne.Err != nil:
		words = plain(ne.Err)
	case ne.Kind == nexus.KindInternal:
		return msg
	default:
		words = ne.Message
		for _, f := range ne.Fields {
			words += " " + f.Name + ": " + f.Detail
		}
	}
	return strings.Replace(msg, ne.Error(), words, 1)
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + " (run `nexus help`)" }

const usage = `usage:
  nexus serve [--dev] [--addr host:port]    run the API server (--dev: loopback HTTP, embedded DB, demo data)
  nexus migrate                             apply database migrations
  nexus backup --to FILE [--force] [--json] copy the embedded database while the server runs (PostgreSQL: pg_dump)
  nexus restore --from FILE [--json]        install a backup as the embedded database (server stopped)
  nexus keys rotate [--json]                add a signing key (published now, signs after NEXUS_KEY_PUBLISH_DELAY)
  nexus secret-key status [--json]          what still depends on NEXUS_SECRET_KEY_PREVIOUS (exit 0: nothing, 3: something)
  nexus org create --name NAME [--json]
  nexus client create --client-id ID --name NAME [--org ORG_ID] [--json]
                                            register a login client (users log in through it)
  nexus client create --service --org ORG_ID --name NAME --scopes "users:read events:write" [--secret-expires RFC3339] [--json]
                                            register a service client (client credentials); prints its secret once
  nexus client list --org ORG_ID [--json]   the organization's service clients and their secrets
  nexus client update --org ORG_ID --client-id ID [--name NAME] [--scopes "SCOPE ..."] [--disable | --enable] [--json]
  nexus client secret add --org ORG_ID --client-id ID [--expires RFC3339] [--json]
                                            add a secret (at most two active, to rotate); prints it once
  nexus client secret revoke --org ORG_ID --client-id ID --secret-id SECRET_ID [--json]
  nexus user create --org ORG_ID --email EMAIL --role admin|manager|analyst|member [--name NAME] --password-stdin [--json]
  nexus version [--json]                    the build: module version, VCS revision and time, Go version, OS/arch
  nexus healthcheck [--live] [--addr host:port] [--timeout 3s]
                                            exit 0 when the server of this configuration answers /readyz (--live: /healthz) 200
`

// run is the whole program: main only wires it to the process. It reads the configuration once, after the
// command line names a command, and hands it down.
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
	var command func(cfg config.Config) error
	dev := false
	switch {
	case cmd == "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(stderr)
		devFlag := fs.Bool("dev", false, "development mode: loopback-only plain HTTP, embedded database, demo data")
		addr := fs.String("addr", "", "listen address (overrides NEXUS_HTTP_ADDR)")
		if err := fs.Parse(rest); err != nil {
			return usageError{err.Error()}
		}
		if *addr != "" {
			env := getenv
			getenv = func(k string) string {
				if k == "NEXUS_HTTP_ADDR" {
					return *addr
				}
				return env(k)
			}
		}
		dev = *devFlag
		command = func(cfg config.Config) error { return serve(ctx, cfg, getenv, stdout, stderr) }
	case cmd == "migrate":
		command = func(cfg config.Config) error { return migrate(ctx, rest, cfg, stdout, stderr) }
	case cmd == "backup":
		command = func(cfg config.Config) error { return backup(ctx, rest, cfg, stdout, stderr) }
	case cmd == "restore":
		command = func(cfg config.Config) error { return restore(ctx, rest, cfg, stdout, stderr) }
	case cmd == "keys" && sub == "rotate":
		command = func(cfg config.Config) error { return rotateKeys(ctx, rest[1:], cfg, stdout, stderr) }
	case cmd == "secret-key" && sub == "status":
		command = func(cfg config.Config) error { return secretKeyStatus(ctx, rest[1:], cfg, stdout, stderr) }
	case cmd == "org" && sub == "create":
		command = func(cfg config.Config) error { return createOrg(ctx, rest[1:], cfg, stdout, stderr) }
	case cmd == "client" && sub == "create":
		command = func(cfg config.Config) error { return clientCreate(ctx, rest[1:], cfg, stdout, stderr) }
	case cmd == "client" && sub == "list":
		command = func(cfg config.Config) error { return listServiceClients(ctx, rest[1:], cfg, stdout, stderr) }
	case cmd == "client" && sub == "update":
		command = func(cfg config.Config) error { return updateServiceClient(ctx, rest[1:], cfg, stdout, stderr) }
	case cmd == "client" && sub == "secret" && len(rest) > 1 && rest[1] == "add":
		command = func(cfg config.Config) error { return addClientSecret(ctx, rest[2:], cfg, stdout, stderr) }
	case cmd == "client" && sub == "secret" && len(rest) > 1 && rest[1] == "revoke":
		command = func(cfg config.Config) error { return revokeClientSecret(ctx, rest[2:], cfg, stdout, stderr) }
	case cmd == "user" && sub == "create":
		command = func(cfg config.Config) error { return createUser(ctx, rest[1:], cfg, stdin, stdout, stderr) }
	case cmd == "healthcheck":
		command = func(cfg config.Config) error { return healthcheck(ctx, rest, cfg, stdout, stderr) }
	case cmd == "version":
		// Needs no configuration: it describes the binary, not an installation.
		return version(rest, debug.ReadBuildInfo, stdout, stderr)
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		n := 2
		if cmd == "client" && sub == "secret" {
			n = 3
		}
		return usageError{fmt.Sprintf("unknown command %q", joinArgs(args, n))}
	}
	cfg, err := config.Load(getenv, dev)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	return command(cfg)
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
