package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/config"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// printResult prints v as one JSON object with --json, or the text line otherwise.
func printResult(stdout io.Writer, asJSON bool, v any, text string) error {
	if asJSON {
		return json.NewEncoder(stdout).Encode(v)
	}
	_, err := fmt.Fprintln(stdout, text)
	return err
}

func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

func migrate(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	if err := parseFlags(flag.NewFlagSet("migrate", flag.ContinueOnError), args, stderr); err != nil {
		return err
	}
	e, err := setup(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer e.db.Close()
	_, err = fmt.Fprintf(stdout, "database schema is up to date (%s)\n", e.db.Dialect())
	return err
}

func rotateKeys(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	e, err := setup(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer e.db.Close()
	svc, err := e.authService()
	if err != nil {
		return err
	}
	k, err := svc.RotateSigningKey(ctx)
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON,
		map[string]any{"id": k.ID, "published_at": k.CreatedAt, "active_from": k.ActiveFrom},
		fmt.Sprintf("added signing key %s: published now, signs from %s", k.ID, k.ActiveFrom.Format(time.RFC3339)))
}

func createOrg(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("org create", flag.ContinueOnError)
	name := fs.String("name", "", "organization name (required)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	*name = strings.TrimSpace(*name)
	if *name == "" || len(*name) > users.MaxOrganizationName {
		return usageError{fmt.Sprintf("--name: required, at most %d bytes", users.MaxOrganizationName)}
	}
	e, err := setup(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer e.db.Close()
	svc, err := e.usersService()
	if err != nil {
		return err
	}
	org, err := svc.CreateOrganization(ctx, nexus.SystemPrincipal(""), *name)
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON, map[string]any{"id": org.ID, "name": org.Name},
		fmt.Sprintf("created organization %s (%s)", org.ID, org.Name))
}

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

func createClient(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("client create", flag.ContinueOnError)
	clientID := fs.String("client-id", "", "the client_id applications will send (required)")
	name := fs.String("name", "", "a human-readable name (required)")
	org := fs.String("org", "", "limit the client to this organization's users")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if !clientIDPattern.MatchString(*clientID) {
		return usageError{"--client-id: required, 1-128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit"}
	}
	if strings.TrimSpace(*name) == "" {
		return usageError{"--name: required"}
	}
	e, err := setup(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer e.db.Close()
	dir := store.NewDirectory(e.db)
	if *org != "" {
		ok, err := dir.OrganizationExists(ctx, *org)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("--org: no organization %q", *org)
		}
	}
	id, err := dir.CreateClient(ctx, store.NewClient{ClientID: *clientID, Name: strings.TrimSpace(*name), OrganizationID: *org})
	if errors.Is(err, nexus.ErrConflict) {
		return fmt.Errorf("--client-id: %q is already registered", *clientID)
	}
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON, map[string]any{"id": id, "client_id": *clientID},
		fmt.Sprintf("created client %s (client_id %s)", id, *clientID))
}

func createUser(ctx context.Context, args []string, cfg config.Config, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user create", flag.ContinueOnError)
	org := fs.String("org", "", "organization id (required)")
	email := fs.String("email", "", "email address, unique across the installation (required)")
	role := fs.String("role", "", "admin, manager, analyst or member (required)")
	name := fs.String("name", "", "display name (default: the email's local part)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input (required)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	*email = strings.TrimSpace(*email)
	if !users.ValidEmail(*email) {
		return usageError{"--email: required, a valid email address"}
	}
	if !nexus.Role(*role).Valid() {
		return usageError{"--role: one of admin, manager, analyst, member"}
	}
	if !*fromStdin {
		return usageError{"--password-stdin: required (passwords are never taken from the command line)"}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, auth.MaxPasswordBytes+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if err := auth.CheckNewPassword(password); err != nil {
		var ne *nexus.Error
		if errors.As(err, &ne) && len(ne.Fields) > 0 {
			return fmt.Errorf("password %s", ne.Fields[0].Detail)
		}
		return err
	}
	if *name == "" {
		*name = (*email)[:strings.IndexByte(*email, '@')]
	}
	e, err := setup(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer e.db.Close()
	ok, err := store.NewDirectory(e.db).OrganizationExists(ctx, *org)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("--org: no organization %q", *org)
	}
	svc, err := e.usersService()
	if err != nil {
		return err
	}
	u, err := svc.Create(ctx, nexus.SystemPrincipal(*org), users.NewUser{Email: *email, Name: *name,
		Role: nexus.Role(*role), Status: nexus.UserActive, Password: password})
	if errors.Is(err, users.ErrEmailTaken) {
		return fmt.Errorf("--email: %s is already in use", *email)
	}
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON, map[string]any{"id": u.ID, "email": u.Email, "organization_id": u.OrganizationID, "role": u.Role},
		fmt.Sprintf("created user %s (%s, %s)", u.ID, u.Email, u.Role))
}
