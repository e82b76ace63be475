package store

import (
	"context"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/auth"
)

// decoyClientRef is the row id of the decoy client of migration 10, whose secrets no secret key made.
const decoyClientRef = "00000000-0000-0000-0000-000000000000"

// ResealSigningKey implements auth.Store with one conditional UPDATE: of several nodes re-sealing one key at once,
// the first to commit replaces the sealed bytes, and the others' statements (which on PostgreSQL wait for it and
// then read the row again) match nothing.
func (a *Auth) ResealSigningKey(ctx context.Context, id string, old, sealed []byte) (bool, error) {
	res, err := a.db.sql.ExecContext(ctx, a.db.rebind("UPDATE signing_keys SET sealed_private_key = ? WHERE id = ? AND sealed_private_key = ?"),
		sealed, id, old)
	if err != nil {
		return false, translate(err)
	}
	n, err := res.RowsAffected()
	return n == 1, translate(err)
}

// LabelSecretKeyID implements auth.Store. The partial indexes of migration 11 hold exactly the rows without a
// key id, so that once they are labelled the statements find nothing to do at once.
func (a *Auth) LabelSecretKeyID(ctx context.Context, keyID string) error {
	for _, q := range []string{
		"UPDATE refresh_sessions SET key_id = ? WHERE key_id IS NULL",
		"UPDATE client_secrets SET key_id = ? WHERE key_id IS NULL",
	} {
		if _, err := a.db.sql.ExecContext(ctx, a.db.rebind(q), keyID); err != nil {
			return translate(err)
		}
	}
	return nil
}

// SecretKeyUsage implements auth.Store: two counting queries, over every refresh session and client secret (an
// operator's command, not a request's work).
func (a *Auth) SecretKeyUsage(ctx context.Context, keyID string, unlabelled bool, now, idleSince time.Time) (auth.SecretKeyUsage, error) {
	match := "key_id = ?"
	if unlabelled {
		match = "(key_id = ? OR key_id IS NULL)"
	}
	var u auth.SecretKeyUsage
	var lastUse, expireBy timeValue
	err := a.db.sql.QueryRowContext(ctx, a.db.rebind("SELECT COUNT(*), MAX(last_used_at), MAX(expires_at) FROM refresh_sessions WHERE "+match+
		" AND revoked_at IS NULL AND expires_at > ? AND last_used_at > ?"), keyID, now.UTC(), idleSince.UTC()).Scan(&u.Sessions, &lastUse, &expireBy)
	if err != nil {
		return auth.SecretKeyUsage{}, translate(err)
	}
	u.SessionsLastUse, u.SessionsExpireBy = lastUse.t, expireBy.t
	err = a.db.sql.QueryRowContext(ctx, a.db.rebind("SELECT COUNT(*) FROM client_secrets WHERE "+match+
		" AND client_ref <> ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"), keyID, decoyClientRef, now.UTC()).Scan(&u.ClientSecrets)
	if err != nil {
		return auth.SecretKeyUsage{}, translate(err)
	}
	return u, nil
}
