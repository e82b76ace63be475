package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nexus-cloud/nexus-core/internal/app"
	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/config"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
)

// maxClientName is the length of a service client's name, in characters, as openapi.yaml's ClientName says.
const maxClientName = 100

// clientCreate is `nexus client create`: a service client with --service, a login client otherwise. Each form
// parses its own flags, so a flag of the other form is refused by name.
func clientCreate(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client create", flag.ContinueOnError)
	service := fs.Bool("service", false, "")
	for _, name := range []string{"client-id", "name", "org", "scopes", "secret-expires"} {
		fs.String(name, "", "")
	}
	fs.Bool("json", false, "")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		// Let the form the operator meant report the mistake.
		for _, a := range args {
			*service = *service || a == "-service" || a == "--service" || strings.HasPrefix(a, "-service=") || strings.HasPrefix(a, "--service=")
		}
	}
	var misplaced error
	fs.Visit(func(f *flag.Flag) {
		switch {
		case *service && f.Name == "client-id":
			misplaced = usageError{"--client-id: a service client's client_id is generated; leave out --client-id"}
		case !*service && (f.Name == "scopes" || f.Name == "secret-expires"):
			misplaced = usageError{"--" + f.Name + ": only for a service client (add --service)"}
		}
	})
	switch {
	case misplaced != nil:
		return misplaced
	case *service:
		return createServiceClient(ctx, args, cfg, stdout, stderr)
	}
	return createClient(ctx, args, cfg, stdout, stderr)
}

func createServiceClient(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client create --service", flag.ContinueOnError)
	fs.Bool("service", false, "register a service client (client credentials grant), with a generated client_id and secret")
	org := fs.String("org", "", "the organization the client acts in (required)")
	name := fs.String("name", "", "a human-readable name (required)")
	scopes := fs.String("scopes", "", `the permissions granted, separated by spaces: "users:read events:write" (required)`)
	expires := fs.String("secret-expires", "", "when the first secret stops working, RFC 3339 (default: never)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := required(fs, "org", "name", "scopes"); err != nil {
		return err
	}
	n, err := clientName(*name)
	if err != nil {
		return err
	}
	set, err := parseScopes(*scopes)
	if err != nil {
		return err
	}
	exp, err := futureTime("--secret-expires", *expires)
	if err != nil {
		return err
	}
	return withClients(ctx, cfg, stderr, *org, func(svc *clients.Service, p nexus.Principal) error {
		created, err := svc.Create(ctx, p, clients.CreateInput{Name: n, Scopes: set, SecretExpiresAt: exp})
		if err != nil {
			return err
		}
		c, sec := created.Client, created.Client.Secrets[0]
		if *asJSON {
			fmt.Fprintln(stderr, shownOnce)
			return printResult(stdout, true, map[string]any{"client": toClientJSON(c), "secret_id": sec.ID, "client_secret": created.Secret}, "")
		}
		_, err = fmt.Fprintf(stdout, "created service client %s (%s) in organization %s\n  scopes:        %s\n  secret id:     %s (expires %s)\n  client secret: %s\n%s\n",
			c.ClientID, c.Name, c.OrganizationID, scopeText(c.Scopes), sec.ID, when(sec.ExpiresAt, "never"), created.Secret, shownOnce)
		return err
	})
}

// shownOnce follows every secret the commands print.
const shownOnce = "The client secret is shown only this once: store it now (Nexus keeps only a keyed hash of it)."

func listServiceClients(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client list", flag.ContinueOnError)
	org := fs.String("org", "", "the organization whose service clients to list (required)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := required(fs, "org"); err != nil {
		return err
	}
	return withClients(ctx, cfg, stderr, *org, func(svc *clients.Service, p nexus.Principal) error {
		list, err := svc.List(ctx, p)
		if err != nil {
			return err
		}
		if *asJSON {
			data := make([]clientJSON, len(list))
			for i, c := range list {
				data[i] = toClientJSON(c)
			}
			return printResult(stdout, true, map[string]any{"data": data}, "")
		}
		if len(list) == 0 {
			_, err := fmt.Fprintf(stdout, "organization %s has no service clients\n", *org)
			return err
		}
		var b strings.Builder
		for _, c := range list {
			fmt.Fprintf(&b, "%s  %s  %s  scopes: %s\n", c.ClientID, c.Name, status(c), scopeText(c.Scopes))
			if len(c.Secrets) == 0 {
				b.WriteString("  no secret\n")
			}
			for _, s := range c.Secrets {
				fmt.Fprintf(&b, "  secret %s  …%s  created %s  expires %s  last used %s\n", s.ID, s.Hint,
					s.CreatedAt.Format(time.RFC3339), when(s.ExpiresAt, "never"), when(s.LastUsedAt, "never"))
			}
		}
		_, err = io.WriteString(stdout, b.String())
		return err
	})
}

func updateServiceClient(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client update", flag.ContinueOnError)
	org := fs.String("org", "", "the client's organization (required)")
	clientID := fs.String("client-id", "", "the service client's client_id (required)")
	name := fs.String("name", "", "a new name")
	scopes := fs.String("scopes", "", "the new scopes, replacing the old ones (taking one away revokes the client's tokens)")
	disable := fs.Bool("disable", false, "disable the client: it obtains no tokens, and the tokens it holds are revoked")
	enable := fs.Bool("enable", false, "enable a disabled client again")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := required(fs, "org", "client-id"); err != nil {
		return err
	}
	var in clients.UpdateInput
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["name"] {
		n, err := clientName(*name)
		if err != nil {
			return err
		}
		in.Name = &n
	}
	if set["scopes"] {
		s, err := parseScopes(*scopes)
		if err != nil {
			return err
		}
		in.Scopes = &s
	}
	switch {
	case *disable && *enable:
		return usageError{"--disable and --enable: give one of them"}
	case *disable || *enable:
		in.Disabled = disable
	}
	if in.Name == nil && in.Scopes == nil && in.Disabled == nil {
		return usageError{"nothing to change: give --name, --scopes, --disable or --enable"}
	}
	return withClients(ctx, cfg, stderr, *org, func(svc *clients.Service, p nexus.Principal) error {
		c, err := svc.Update(ctx, p, *clientID, in)
		if err != nil {
			return clientError(err, *org, *clientID)
		}
		return printResult(stdout, *asJSON, toClientJSON(c),
			fmt.Sprintf("updated service client %s (%s): %s, scopes: %s", c.ClientID, c.Name, status(c), scopeText(c.Scopes)))
	})
}

func addClientSecret(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client secret add", flag.ContinueOnError)
	org := fs.String("org", "", "the client's organization (required)")
	clientID := fs.String("client-id", "", "the service client's client_id (required)")
	expires := fs.String("expires", "", "when the secret stops working, RFC 3339 (default: never)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := required(fs, "org", "client-id"); err != nil {
		return err
	}
	exp, err := futureTime("--expires", *expires)
	if err != nil {
		return err
	}
	return withClients(ctx, cfg, stderr, *org, func(svc *clients.Service, p nexus.Principal) error {
		sec, plain, err := svc.AddSecret(ctx, p, *clientID, exp)
		if err != nil {
			return clientError(err, *org, *clientID)
		}
		if *asJSON {
			fmt.Fprintln(stderr, shownOnce)
			return printResult(stdout, true, map[string]any{"secret": toSecretJSON(sec), "client_secret": plain}, "")
		}
		_, err = fmt.Fprintf(stdout, "added a secret to service client %s\n  secret id:     %s (expires %s)\n  client secret: %s\n%s\n",
			*clientID, sec.ID, when(sec.ExpiresAt, "never"), plain, shownOnce)
		return err
	})
}

func revokeClientSecret(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client secret revoke", flag.ContinueOnError)
	org := fs.String("org", "", "the client's organization (required)")
	clientID := fs.String("client-id", "", "the service client's client_id (required)")
	secretID := fs.String("secret-id", "", "the id of the secret to revoke, as `nexus client list` shows it (required)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := required(fs, "org", "client-id", "secret-id"); err != nil {
		return err
	}
	return withClients(ctx, cfg, stderr, *org, func(svc *clients.Service, p nexus.Principal) error {
		err := svc.RevokeSecret(ctx, p, *clientID, *secretID)
		if errors.Is(err, nexus.ErrNotFound) {
			// The service does not say whether the client or the secret is missing: ask.
			if _, gerr := svc.Get(ctx, p, *clientID); gerr == nil {
				return fmt.Errorf("--secret-id: service client %s has no active secret %q", *clientID, *secretID)
			}
		}
		if err != nil {
			return clientError(err, *org, *clientID)
		}
		return printResult(stdout, *asJSON, map[string]any{"client_id": *clientID, "secret_id": strings.ToLower(*secretID), "revoked": true},
			fmt.Sprintf("revoked secret %s of service client %s, and the tokens issued with it", strings.ToLower(*secretID), *clientID))
	})
}

// withClients opens the database and the clients service and runs fn as the operator in the organization
// orgID, which must exist.
func withClients(ctx context.Context, cfg config.Config, stderr io.Writer, orgID string, fn func(*clients.Service, nexus.Principal) error) error {
	e, err := setup(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer e.db.Close()
	// The clients service hashes secrets with a key derived from the master secret: the server's own.
	secret, err := secretKey(e.cfg, false)
	if err != nil {
		return err
	}
	svc, err := app.ClientsService(e.db, secret, e.cfg.SecretKeyPrevious, nil, e.log)
	if err != nil {
		return err
	}
	ok, err := store.NewDirectory(e.db).OrganizationExists(ctx, orgID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("--org: no organization %q", orgID)
	}
	return fn(svc, nexus.SystemPrincipal(orgID))
}

// clientError names the client the operator gave when the service finds none.
func clientError(err error, orgID, clientID string) error {
	if errors.Is(err, nexus.ErrNotFound) {
		return fmt.Errorf("--client-id: organization %s has no service client %q", orgID, clientID)
	}
	return err
}

// required refuses a command line that lacks one of the named flags or gives it empty.
func required(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if strings.TrimSpace(fs.Lookup(n).Value.String()) == "" {
			return usageError{"--" + n + ": required"}
		}
	}
	return nil
}

func clientName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > maxClientName {
		return "", usageError{fmt.Sprintf("--name: required, at most %d characters", maxClientName)}
	}
	return name, nil
}

// parseScopes reads --scopes: permission names separated by spaces or commas.
func parseScopes(s string) (nexus.PermissionSet, error) {
	names := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	set, unknown := nexus.ParsePermissionSet(strings.Join(names, " "))
	if len(unknown) > 0 {
		return 0, usageError{fmt.Sprintf("--scopes: unknown %s %s; the scopes are: %s",
			map[bool]string{true: "scope", false: "scopes"}[len(unknown) == 1], strings.Join(quoteAll(unknown), ", "), nexus.AllPermissions())}
	}
	return set, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// futureTime reads an optional RFC 3339 time that must lie in the future; "" is the zero time (never).
func futureTime(flagName, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageError{flagName + ": an RFC 3339 time, such as 2027-06-30T00:00:00Z"}
	}
	if !t.After(time.Now()) {
		return time.Time{}, usageError{flagName + ": must be in the future"}
	}
	return t.UTC(), nil
}
