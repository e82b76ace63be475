package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/config"
)

// exitDependents is the exit status of `nexus secret-key status` while something still depends on the previous
// secret key (1 is an error, 2 a mistake in the command line).
const exitDependents = 3

// exitError ends the program with its status, after its message.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// secretKeyStatus reports what still depends on NEXUS_SECRET_KEY_PREVIOUS: exit status 0 when nothing does (or
// none is set), exitDependents otherwise.
func secretKeyStatus(ctx context.Context, args []string, cfg config.Config, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("secret-key status", flag.ContinueOnError)
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
	st, err := svc.SecretKeyStatus(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := map[string]any{"previous_key_set": st.Previous, "signing_keys": st.SigningKeys,
			"unreadable_signing_keys": st.UnreadableSigningKeys, "refresh_sessions": st.Sessions,
			"client_secrets": st.ClientSecrets, "clean": st.Clean()}
		if !st.SessionsEndBy.IsZero() {
			out["refresh_sessions_end_by"] = st.SessionsEndBy
		}
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return err
		}
	} else if _, err := io.WriteString(stdout, statusText(st)); err != nil {
		return err
	}
	if !st.Clean() {
		return exitError{exitDependents, "the previous secret key is still in use: keep NEXUS_SECRET_KEY_PREVIOUS"}
	}
	return nil
}

// statusText is the report of secretKeyStatus for people.
func statusText(st auth.SecretKeyStatus) string {
	if !st.Previous {
		return "NEXUS_SECRET_KEY_PREVIOUS is not set: nothing depends on a previous secret key.\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "What still depends on the previous secret key (NEXUS_SECRET_KEY_PREVIOUS):\n")
	fmt.Fprintf(&b, "  signing keys sealed under it:            %d", st.SigningKeys)
	if st.SigningKeys > 0 {
		b.WriteString("  (start a server with both keys: it seals them under NEXUS_SECRET_KEY)")
	}
	fmt.Fprintf(&b, "\n  refresh sessions whose token it minted:  %d", st.Sessions)
	if st.Sessions > 0 {
		fmt.Fprintf(&b, "  (each moves to the current key at its next refresh; the last ends by %s at the latest)",
			st.SessionsEndBy.Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "\n  client secrets hashed under it:          %d", st.ClientSecrets)
	if st.ClientSecrets > 0 {
		b.WriteString("  (each is hashed under the current key at its next use)")
	}
	b.WriteString("\n")
	if st.UnreadableSigningKeys > 0 {
		fmt.Fprintf(&b, "warning: %d signing keys open under neither key: no server starts until they do.\n", st.UnreadableSigningKeys)
	}
	if st.Clean() {
		b.WriteString("Nothing depends on the previous key any more; you can remove NEXUS_SECRET_KEY_PREVIOUS.\n")
	} else {
		fmt.Fprintf(&b, "Removing NEXUS_SECRET_KEY_PREVIOUS now would end those %d refresh sessions (their users log in again) and "+
			"refuse those %d client secrets (until new ones are issued).\n", st.Sessions, st.ClientSecrets)
	}
	return b.String()
}
