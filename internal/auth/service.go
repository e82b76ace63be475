// Package auth implements login, password hashing, access-token issue and verification, refresh-token rotation
// with reuse detection, logout, and signing-key management. It declares the Store it needs.
package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"log/slog"
	"runtime"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Options configures a Service.
type Options struct {
	Store              Store
	Secret             []byte // the server's master secret (NEXUS_SECRET_KEY), at least 32 bytes
	PreviousSecret     []byte // the secret before a rotation (NEXUS_SECRET_KEY_PREVIOUS) or nil: read, never used to make
	Issuer             string
	AccessTTL          time.Duration
	RefreshIdleTTL     time.Duration
	RefreshAbsoluteTTL time.Duration
	RefreshGrace       time.Duration
	KeyPublishDelay    time.Duration
	// ClientTTL is how long a client as read from the database is used without reading it again (0: 1 s;
	// negative: read on every login and refresh). Clients are disabled (or moved to an organization) only in the
	// database, so a disabled client stops working on every node within ClientTTL.
	ClientTTL time.Duration
	Now       func() time.Time // defaults to time.Now
	Logger    *slog.Logger
	// CacheEntries bounds each of the two caches of Authenticate (verified tokens, sessions); 0 turns them off.
	// Live sessions are believed from the cache only while a revocation feed (store.DB.FollowRevocations)
	// keeps calling RevocationsCurrent.
	CacheEntries int
}

// Service is the auth domain service.
type Service struct {
	store       Store
	sec         *secrets
	keys        *keyRing
	issuer      string
	accessTTL   time.Duration
	idleTTL     time.Duration
	absoluteTTL time.Duration
	grace       time.Duration
	publish     time.Duration
	now         func() time.Time
	log         *slog.Logger
	dummyHash   string
	hashSlots   chan struct{} // one per core: password checks running at once
	clients     clientCache
	cache       *caches
}

// NewService returns a Service. It computes a dummy password hash so that logins of unknown emails cost as much
// as logins of known ones.
func NewService(o Options) (*Service, error) {
	sec, err := newSecrets(o.Secret, o.PreviousSecret)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	// Microsecond precision, in UTC: what both databases store, so a value read back compares equal.
	clock := func() time.Time { return now().UTC().Truncate(time.Microsecond) }
	dummy := make([]byte, 32)
	if _, err := rand.Read(dummy); err != nil {
		return nil, err
	}
	dummyHash, err := HashPassword(string(dummy))
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cache, err := newCaches(o.CacheEntries, o.AccessTTL, clock)
	if err != nil {
		return nil, err
	}
	s := &Service{
		store: o.Store, sec: sec, issuer: o.Issuer,
		accessTTL: o.AccessTTL, idleTTL: o.RefreshIdleTTL, absoluteTTL: o.RefreshAbsoluteTTL,
		grace: o.RefreshGrace, publish: o.KeyPublishDelay, now: clock, log: log, dummyHash: dummyHash,
		hashSlots: make(chan struct{}, max(runtime.GOMAXPROCS(0), 1)),
		clients:   newClientCache(o.ClientTTL), cache: cache,
	}
	s.keys = &keyRing{store: o.Store, sec: sec, now: clock, publishDelay: o.KeyPublishDelay, accessTTL: o.AccessTTL}
	return s, nil
}

// Meta describes where a request came from, for the audit log.
type Meta struct {
	SocketIP  string
	UserAgent string
}

// LoginInput is a login request.
type LoginInput struct {
	Email      string
	Password   string
	ClientID   string
	ReportedIP string // as reported by the client; recorded, never trusted
	Meta
	// BeforePasswordCheck, when set, runs right before the password is checked, for known and unknown emails
	// alike, once the login is past everything that could fail for another reason (the database, the client):
	// the brute-force limit takes its attempt here, so that an outage costs the account nothing. An error ends
	// the login with that error, the password unchecked.
	BeforePasswordCheck func(ctx context.Context) error
}

// RefreshInput is a refresh request.
type RefreshInput struct {
	RefreshToken string
	ClientID     string
	DeviceID     string
	Meta
}

// Tokens is what a successful login or refresh returns.
type Tokens struct {
	AccessToken      string
	ExpiresIn        time.Duration
	RefreshToken     string
	RefreshExpiresIn time.Duration
	User             nexus.User
}

// RotateSigningKey adds a signing key that is published at once and signs after the configured publish delay.
// Tokens signed with older keys stay valid until they expire.
func (s *Service) RotateSigningKey(ctx context.Context) (SigningKey, error) {
	k, err := s.keys.add(ctx, s.publish)
	if err != nil {
		return SigningKey{}, err
	}
	return k, s.keys.load(ctx)
}

// ImportSigningKey stores an existing ECDSA P-256 private key as a signing key that is published now and signs
// from activeFrom, for moving keys from another issuer. The caller must keep no other copy.
func (s *Service) ImportSigningKey(ctx context.Context, key *ecdsa.PrivateKey, activeFrom time.Time) (SigningKey, error) {
	k, err := s.keys.storeKey(ctx, key, activeFrom.UTC().Truncate(time.Microsecond))
	if err != nil {
		return SigningKey{}, err
	}
	return k, s.keys.load(ctx)
}

// PublicKeys returns the published verification keys.
func (s *Service) PublicKeys(ctx context.Context) ([]PublicKey, error) {
	keys, err := s.keys.published(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PublicKey, 0, len(keys))
	for _, k := range keys {
		pk, err := toPublicKey(k)
		if err != nil {
			return nil, nexus.Internal(err)
		}
		out = append(out, pk)
	}
	return out, nil
}
