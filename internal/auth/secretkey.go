package auth

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// EnsureSigningKey prepares the keys a server needs at its start: it creates the first signing key if the
// database has none, seals every signing key that only the previous secret key opens under the current one, and
// loads the keys. Without a previous secret key, every refresh session and client secret stored before key ids
// were recorded can only have been made with the current one, and is labelled so. Several nodes may run it at
// once.
func (s *Service) EnsureSigningKey(ctx context.Context) error {
	resealed, err := s.keys.ensure(ctx)
	if err != nil {
		return err
	}
	if resealed > 0 {
		s.log.Info("sealed signing keys under the current NEXUS_SECRET_KEY", slog.Int("keys", resealed))
	}
	if s.sec.prev == nil {
		if err := s.store.LabelSecretKeyID(ctx, s.sec.id); err != nil {
			return fmt.Errorf("label rows with the secret key's id: %w", err)
		}
	}
	return nil
}

// SecretKeyStatus is what still depends on the previous secret key (NEXUS_SECRET_KEY_PREVIOUS): once nothing
// does, it can be removed.
type SecretKeyStatus struct {
	Previous bool // a previous secret key is configured; without one, nothing is counted
	// SigningKeys only the previous secret key opens: no server has started with the current one since (a
	// server's start seals them again).
	SigningKeys int
	// UnreadableSigningKeys is how many signing keys neither secret key opens: no server starts with them.
	UnreadableSigningKeys int
	// Sessions is how many live refresh sessions hold a refresh token the previous secret key minted (or one
	// minted before key ids were recorded): each moves to the current key at its next refresh. The last of them
	// ends by SessionsEndBy at the latest, unless it is refreshed.
	Sessions      int
	SessionsEndBy time.Time
	// ClientSecrets is how many client secrets that are neither revoked nor expired are hashed under the previous
	// secret key (or before key ids were recorded): each is hashed again under the current key when it is next
	// used.
	ClientSecrets int
}

// Clean reports whether nothing depends on the previous secret key.
func (st SecretKeyStatus) Clean() bool {
	return st.SigningKeys == 0 && st.Sessions == 0 && st.ClientSecrets == 0
}

// SecretKeyStatus counts what still depends on the previous secret key.
// Errors: unavailable, internal.
func (s *Service) SecretKeyStatus(ctx context.Context) (SecretKeyStatus, error) {
	if s.sec.prev == nil {
		return SecretKeyStatus{}, nil
	}
	st := SecretKeyStatus{Previous: true}
	rows, err := s.store.SigningKeys(ctx)
	if err != nil {
		return SecretKeyStatus{}, fmt.Errorf("read signing keys: %w", err)
	}
	for _, row := range rows {
		_, previous, err := s.sec.openBytes(row.Sealed, row.ID)
		switch {
		case err != nil:
			st.UnreadableSigningKeys++
		case previous:
			st.SigningKeys++
		}
	}
	now := s.now()
	u, err := s.store.SecretKeyUsage(ctx, s.sec.prev.id, true, now, now.Add(-s.idleTTL))
	if err != nil {
		return SecretKeyStatus{}, fmt.Errorf("count what depends on the previous secret key: %w", err)
	}
	st.Sessions, st.ClientSecrets = u.Sessions, u.ClientSecrets
	if u.Sessions > 0 {
		st.SessionsEndBy = minTime(u.SessionsExpireBy, u.SessionsLastUse.Add(s.idleTTL))
	}
	return st, nil
}
