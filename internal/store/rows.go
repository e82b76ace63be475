package store

import (
	"time"

	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Row structs mirror the tables of the migrations. They stop in this package: the converters below turn them
// into domain types.

type organizationRow struct {
	ID        string `gorm:"primaryKey"`
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func (organizationRow) TableName() string { return "organizations" }

type userRow struct {
	ID             string `gorm:"primaryKey"`
	OrganizationID string
	Email          string
	EmailKey       string
	Name           string
	Role           string
	Status         string
	PasswordHash   string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (userRow) TableName() string { return "users" }

type clientRow struct {
	ID             string `gorm:"primaryKey"`
	ClientID       string
	Name           string
	OrganizationID *string
	DisabledAt     *time.Time
	Scopes         *string // NULL: a login client; a service client's scopes otherwise
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (clientRow) TableName() string { return "clients" }

type sessionRow struct {
	ID             string `gorm:"primaryKey"`
	UserID         string
	OrganizationID string
	ClientID       string
	Role           *string
	DeviceID       *string
	Salt           []byte
	Generation     int64
	RotatedAt      *time.Time
	CreatedAt      time.Time `gorm:"autoCreateTime:false"`
	LastUsedAt     time.Time
	ExpiresAt      time.Time
	RevokedAt      *time.Time
	RevokedReason  *string
	KeyID          *string // NULL: made before migration 11
}

func (sessionRow) TableName() string { return "refresh_sessions" }

type signingKeyRow struct {
	ID               string `gorm:"primaryKey"`
	Algorithm        string
	PublicJWK        string `gorm:"column:public_jwk"`
	SealedPrivateKey []byte
	CreatedAt        time.Time `gorm:"autoCreateTime:false"`
	ActiveFrom       time.Time
}

func (signingKeyRow) TableName() string { return "signing_keys" }

type authEventRow struct {
	ID             string `gorm:"primaryKey"`
	OccurredAt     time.Time
	Action         string
	Result         string
	UserID         *string
	OrganizationID *string
	ClientID       *string
	EmailHash      *string
	SocketIP       *string `gorm:"column:socket_ip"`
	ReportedIP     *string `gorm:"column:reported_ip"`
	DeviceID       *string
	UserAgent      *string
	SessionID      *string
	ActorUserID    *string
	Detail         *string
}

func (authEventRow) TableName() string { return "auth_events" }

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func fromOptString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func fromOptTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func toUser(r userRow) nexus.User {
	return nexus.User{
		ID: r.ID, OrganizationID: r.OrganizationID, Email: r.Email, Name: r.Name,
		Role: nexus.Role(r.Role), Status: nexus.UserStatus(r.Status),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

func toUserRow(u nexus.User, passwordHash string) userRow {
	return userRow{
		ID: u.ID, OrganizationID: u.OrganizationID, Email: u.Email, EmailKey: nexus.NormalizeEmail(u.Email),
		Name: u.Name, Role: string(u.Role), Status: string(u.Status), PasswordHash: passwordHash,
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
}

func toAuthClient(r clientRow) auth.Client {
	return auth.Client{ID: r.ID, ClientID: r.ClientID, Name: r.Name,
		OrganizationID: fromOptString(r.OrganizationID), Disabled: r.DisabledAt != nil, Service: r.Scopes != nil}
}

func toAuthSession(r sessionRow) auth.Session {
	return auth.Session{
		ID: r.ID, UserID: r.UserID, OrganizationID: r.OrganizationID, ClientID: r.ClientID,
		Role: nexus.Role(fromOptString(r.Role)), DeviceID: fromOptString(r.DeviceID), Salt: r.Salt, Generation: r.Generation,
		RotatedAt: fromOptTime(r.RotatedAt), CreatedAt: r.CreatedAt.UTC(), LastUsedAt: r.LastUsedAt.UTC(),
		ExpiresAt: r.ExpiresAt.UTC(), RevokedAt: fromOptTime(r.RevokedAt), RevokedReason: fromOptString(r.RevokedReason),
		KeyID: fromOptString(r.KeyID),
	}
}

func toSessionRow(s auth.Session) sessionRow {
	return sessionRow{
		ID: s.ID, UserID: s.UserID, OrganizationID: s.OrganizationID, ClientID: s.ClientID,
		Role: optString(string(s.Role)), DeviceID: optString(s.DeviceID), Salt: s.Salt, Generation: s.Generation, RotatedAt: optTime(s.RotatedAt),
		CreatedAt: s.CreatedAt.UTC(), LastUsedAt: s.LastUsedAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(),
		RevokedAt: optTime(s.RevokedAt), RevokedReason: optString(s.RevokedReason), KeyID: optString(s.KeyID),
	}
}

func toAuthSigningKey(r signingKeyRow) auth.SigningKey {
	return auth.SigningKey{ID: r.ID, Algorithm: r.Algorithm, PublicJWK: []byte(r.PublicJWK), Sealed: r.SealedPrivateKey,
		CreatedAt: r.CreatedAt.UTC(), ActiveFrom: r.ActiveFrom.UTC()}
}

func toSigningKeyRow(k auth.SigningKey) signingKeyRow {
	return signingKeyRow{ID: k.ID, Algorithm: k.Algorithm, PublicJWK: string(k.PublicJWK), SealedPrivateKey: k.Sealed,
		CreatedAt: k.CreatedAt.UTC(), ActiveFrom: k.ActiveFrom.UTC()}
}

func toAuthEventRow(id string, e auth.AuditEvent) authEventRow {
	return authEventRow{
		ID: id, OccurredAt: e.OccurredAt.UTC(), Action: e.Action, Result: e.Result,
		UserID: optString(e.UserID), OrganizationID: optString(e.OrganizationID), ClientID: optString(e.ClientID),
		EmailHash: optString(e.EmailHash), SocketIP: optString(e.SocketIP), ReportedIP: optString(e.ReportedIP),
		DeviceID: optString(e.DeviceID), UserAgent: optString(truncate(e.UserAgent, 512)), SessionID: optString(e.SessionID),
		ActorUserID: optString(e.ActorUserID), Detail: optString(e.Detail),
	}
}

func toAuditEvent(r authEventRow) auth.AuditEvent {
	return auth.AuditEvent{
		OccurredAt: r.OccurredAt.UTC(), Action: r.Action, Result: r.Result,
		UserID: fromOptString(r.UserID), OrganizationID: fromOptString(r.OrganizationID),
		ClientID: fromOptString(r.ClientID), EmailHash: fromOptString(r.EmailHash),
		SocketIP: fromOptString(r.SocketIP), ReportedIP: fromOptString(r.ReportedIP),
		DeviceID: fromOptString(r.DeviceID), UserAgent: fromOptString(r.UserAgent), SessionID: fromOptString(r.SessionID),
		ActorUserID: fromOptString(r.ActorUserID), Detail: fromOptString(r.Detail),
	}
}

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// eventID returns a new audit event id: a version 7 UUID, so that events recorded by one process in the same
// microsecond still sort in the order they were recorded.
func eventID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}
