package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Outcomes of a refresh decision, for the audit log.
const (
	outcomeRotated        = "success"
	outcomeGrace          = "success_grace"
	outcomeReused         = string(nexus.CodeRefreshTokenReused)
	outcomeClientMismatch = "client_mismatch"
	outcomeDeviceMismatch = "device_mismatch"
	outcomeInactive       = string(nexus.CodeAccountInactive)
)

// Refresh exchanges a refresh token for new tokens, rotating the refresh token. Re-presenting the immediately
// previous token within the grace period returns the same successor; any older token revokes the session.
// Errors: invalid_client, invalid_grant, refresh_token_reused, unavailable, internal.
func (s *Service) Refresh(ctx context.Context, in RefreshInput) (Tokens, error) {
	now := s.now()
	ev := AuditEvent{OccurredAt: now, Action: "refresh", ClientID: in.ClientID, DeviceID: in.DeviceID,
		SocketIP: in.SocketIP, UserAgent: in.UserAgent}
	record := func(result string, err error) (Tokens, error) {
		ev.Result = result
		if aerr := s.store.RecordAuthEvent(ctx, ev); aerr != nil {
			return Tokens{}, fmt.Errorf("record refresh: %w", aerr)
		}
		return Tokens{}, err
	}
	if _, err := s.client(ctx, in.ClientID); err != nil {
		if errors.Is(err, nexus.ErrInvalidClient) {
			return record(string(nexus.ErrInvalidClient.Code), err)
		}
		return Tokens{}, err
	}
	tok, ok := parseRefreshToken(in.RefreshToken)
	if !ok {
		return record(string(nexus.ErrInvalidGrant.Code), nexus.ErrInvalidGrant)
	}
	ev.SessionID = tok.sessionID

	var outcome string
	var sess Session
	var user nexus.User
	// The user is read in the rotation's transaction, which holds the user's row as a login does: the successor
	// carries the user's role as it is now, and a deactivated user's session ends here. Every decision, a refusal
	// included, commits its audit entry in that transaction: fn never fails, so that one commit records it.
	decide := func(result string, save bool) (bool, error) {
		outcome, ev.Result = result, result
		return save, nil
	}
	err := s.store.UpdateSession(ctx, tok.sessionID, func(cur *Session, u nexus.User) (bool, error) {
		ev.UserID, ev.OrganizationID = cur.UserID, cur.OrganizationID
		switch {
		case !s.sec.validRefreshMAC(tok, *cur), cur.Revoked(), tok.generation > cur.Generation:
			return decide(string(nexus.ErrInvalidGrant.Code), false)
		case !now.Before(cur.ExpiresAt), !now.Before(cur.LastUsedAt.Add(s.idleTTL)):
			return decide(string(nexus.ErrInvalidGrant.Code), false)
		case tok.generation < cur.Generation-1 || (tok.generation == cur.Generation-1 && now.After(cur.RotatedAt.Add(s.grace))):
			// An older token came back: someone holds a copy. Revoke the whole session, whichever client or device
			// presents it; the revocation is committed even though this request fails.
			cur.RevokedAt, cur.RevokedReason = now, outcomeReused
			return decide(outcomeReused, true)
		case cur.ClientID != in.ClientID:
			return decide(outcomeClientMismatch, false)
		case cur.DeviceID != "" && cur.DeviceID != in.DeviceID:
			return decide(outcomeDeviceMismatch, false)
		case u.Status != nexus.UserActive:
			// Deactivated, or gone: the session ends, committed although this request fails.
			cur.RevokedAt, cur.RevokedReason = now, outcomeInactive
			return decide(outcomeInactive, true)
		}
		user = u
		save := cur.Role != u.Role
		cur.Role = u.Role
		if tok.generation == cur.Generation-1 {
			// The immediately previous token within the grace period: the same successor. Its KeyID stays: if an
			// earlier secret key minted it, that token is still out there, although this one is minted afresh.
			sess = *cur
			return decide(outcomeGrace, save)
		}
		cur.Generation++
		cur.RotatedAt, cur.LastUsedAt = now, now
		cur.KeyID = s.sec.id // the successor is minted under the current secret key
		if cur.DeviceID == "" {
			cur.DeviceID = in.DeviceID
		}
		sess = *cur
		return decide(outcomeRotated, true)
	}, &ev)
	switch {
	case errors.Is(err, nexus.ErrNotFound):
		return record(string(nexus.ErrInvalidGrant.Code), nexus.ErrInvalidGrant)
	case err != nil:
		return Tokens{}, fmt.Errorf("rotate refresh token: %w", err)
	case outcome == outcomeReused:
		return Tokens{}, nexus.ErrRefreshTokenReused
	case outcome != outcomeRotated && outcome != outcomeGrace:
		return Tokens{}, nexus.ErrInvalidGrant
	}
	return s.issue(ctx, user, sess, now)
}

func (s *Service) revoke(ctx context.Context, sessionID, reason string) error {
	now := s.now()
	err := s.store.UpdateSession(ctx, sessionID, func(cur *Session, _ nexus.User) (bool, error) {
		if cur.Revoked() {
			return false, nil
		}
		cur.RevokedAt, cur.RevokedReason = now, reason
		return true, nil
	}, nil)
	if err != nil && !errors.Is(err, nexus.ErrNotFound) {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// Logout revokes the session of the principal's access token (a service token: the token).
// Errors: unavailable, internal.
func (s *Service) Logout(ctx context.Context, p nexus.Principal, meta Meta) error {
	if p.Service {
		// A service token's session is the token alone.
		if err := s.store.RevokeServiceSession(ctx, p.SessionID, "logout", s.now()); err != nil && !errors.Is(err, nexus.ErrNotFound) {
			return fmt.Errorf("revoke service session: %w", err)
		}
	} else if err := s.revoke(ctx, p.SessionID, "logout"); err != nil {
		return err
	}
	ev := AuditEvent{OccurredAt: s.now(), Action: "logout", Result: "success", UserID: p.UserID,
		OrganizationID: p.OrganizationID, ClientID: p.ClientID, SessionID: p.SessionID,
		SocketIP: meta.SocketIP, UserAgent: meta.UserAgent}
	if err := s.store.RecordAuthEvent(ctx, ev); err != nil {
		return fmt.Errorf("record logout: %w", err)
	}
	return nil
}
