package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/argon2"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// fakeStore is an in-memory Store. StartSession and UpdateSession hold the store's lock while fn runs, like the
// row locks of the real stores.
type fakeStore struct {
	mu       sync.Mutex
	users    map[string]Credentials    // by user id
	clients  map[string]Client         // by client_id
	sessions map[string]Session        // by session id
	services map[string]ServiceSession // by session id
	keys     []SigningKey
	events   []AuditEvent
	// afterSessionRead, when set, runs after Session has read a session and before it returns it.
	afterSessionRead func(id string)
}

var _ Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{users: map[string]Credentials{}, clients: map[string]Client{}, sessions: map[string]Session{}, services: map[string]ServiceSession{}}
}

func cloneSession(s Session) Session {
	s.Salt = bytes.Clone(s.Salt)
	return s
}

func (f *fakeStore) UserByEmail(_ context.Context, email string) (Credentials, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.users {
		if nexus.NormalizeEmail(c.User.Email) == nexus.NormalizeEmail(email) {
			return c, nil
		}
	}
	return Credentials{}, nexus.ErrNotFound
}

func (f *fakeStore) ClientByClientID(_ context.Context, clientID string) (Client, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[clientID]
	if !ok {
		return Client{}, nexus.ErrNotFound
	}
	return c, nil
}

func (f *fakeStore) StartSession(_ context.Context, userID string, fn func(Credentials) (Session, error), audit *AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.users[userID]
	if !ok {
		return nexus.ErrNotFound
	}
	s, err := fn(c)
	if err != nil {
		return err
	}
	if _, ok := f.sessions[s.ID]; ok {
		return nexus.ErrConflict
	}
	f.sessions[s.ID] = cloneSession(s)
	if audit != nil {
		f.events = append(f.events, *audit)
	}
	return nil
}

func (f *fakeStore) Session(_ context.Context, id string) (Session, error) {
	f.mu.Lock()
	s, ok := f.sessions[id]
	hook := f.afterSessionRead
	f.mu.Unlock()
	if !ok {
		return Session{}, nexus.ErrNotFound
	}
	if hook != nil {
		hook(id)
	}
	return cloneSession(s), nil
}

func (f *fakeStore) UpdateSession(_ context.Context, id string, fn func(*Session, nexus.User) (bool, error), audit *AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sessions[id]
	if !ok {
		return nexus.ErrNotFound
	}
	s = cloneSession(s)
	save, err := fn(&s, f.users[s.UserID].User)
	if err != nil {
		return err
	}
	if save {
		s.ID = id
		f.sessions[id] = cloneSession(s)
	}
	if audit != nil {
		f.events = append(f.events, *audit)
	}
	return nil
}

// StartServiceSession stores sess for an always-enabled client that holds every scope (the clients' own rules
// are tested on the real stores).
func (f *fakeStore) StartServiceSession(_ context.Context, sess ServiceSession, fn func(ServiceClientState) error, audit *AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := fn(ServiceClientState{Scopes: nexus.AllPermissions()}); err != nil {
		return err
	}
	f.services[sess.ID] = sess
	if audit != nil {
		f.events = append(f.events, *audit)
	}
	return nil
}

func (f *fakeStore) ServiceSession(_ context.Context, id string) (ServiceSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[id]
	if !ok {
		return ServiceSession{}, nexus.ErrNotFound
	}
	return s, nil
}

func (f *fakeStore) RevokeServiceSession(_ context.Context, id, reason string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[id]
	if !ok {
		return nexus.ErrNotFound
	}
	if s.RevokedAt.IsZero() {
		s.RevokedAt, s.RevokedReason = at, reason
		f.services[id] = s
	}
	return nil
}

func (f *fakeStore) SigningKeys(context.Context) ([]SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := append([]SigningKey(nil), f.keys...)
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].ActiveFrom.Before(keys[j].ActiveFrom) })
	return keys, nil
}

func (f *fakeStore) AddSigningKey(_ context.Context, k SigningKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, have := range f.keys {
		if have.ID == k.ID {
			return nexus.ErrConflict
		}
	}
	f.keys = append(f.keys, k)
	return nil
}

func (f *fakeStore) ResealSigningKey(_ context.Context, id string, old, sealed []byte) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.keys {
		if f.keys[i].ID == id && bytes.Equal(f.keys[i].Sealed, old) {
			f.keys[i].Sealed = sealed
			return true, nil
		}
	}
	return false, nil
}

func (f *fakeStore) LabelSecretKeyID(_ context.Context, keyID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, s := range f.sessions {
		if s.KeyID == "" {
			s.KeyID = keyID
			f.sessions[id] = s
		}
	}
	return nil
}

func (f *fakeStore) SecretKeyUsage(_ context.Context, keyID string, unlabelled bool, now, idleSince time.Time) (SecretKeyUsage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var u SecretKeyUsage
	for _, s := range f.sessions {
		if (s.KeyID == keyID || unlabelled && s.KeyID == "") && !s.Revoked() && now.Before(s.ExpiresAt) && s.LastUsedAt.After(idleSince) {
			u.Sessions++
			if s.LastUsedAt.After(u.SessionsLastUse) {
				u.SessionsLastUse = s.LastUsedAt
			}
			if s.ExpiresAt.After(u.SessionsExpireBy) {
				u.SessionsExpireBy = s.ExpiresAt
			}
		}
	}
	return u, nil
}

func (f *fakeStore) RecordAuthEvent(_ context.Context, e AuditEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
	return nil
}

// session returns the stored session with the given id, failing the test if there is none.
func (f *fakeStore) session(t *testing.T, id string) Session {
	t.Helper()
	s, err := f.Session(context.Background(), id)
	if err != nil {
		t.Fatalf("session %s: %v", id, err)
	}
	return s
}

// lastEvent returns the newest audit event.
func (f *fakeStore) lastEvent(t *testing.T) AuditEvent {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		t.Fatal("no audit event recorded")
	}
	return f.events[len(f.events)-1]
}

func (f *fakeStore) setUserStatus(id string, status nexus.UserStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.users[id]
	c.User.Status = status
	f.users[id] = c
}

// fakeClock is a clock that moves only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// The fixture of every service test.
const (
	testIssuer     = "https://issuer.test"
	testClient     = "web"
	otherClient    = "cli"
	disabledClient = "retired"
	orgClient      = "other-org-app"
	testEmail      = "Ada@Example.com"
	testPassword   = "correct horse battery staple"
	testGrace      = 10 * time.Second
	testAccessTTL  = 15 * time.Minute
	testIdleTTL    = 30 * 24 * time.Hour
	testAbsTTL     = 90 * 24 * time.Hour
)

type testEnv struct {
	svc    *Service
	store  *fakeStore
	clock  *fakeClock
	user   nexus.User
	secret []byte
}

// cheapHash returns an argon2id hash of password with the smallest parameters VerifyPassword accepts, to keep
// the tests fast.
func cheapHash(t *testing.T, password string) string {
	t.Helper()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawStdEncoding
	key := argon2.IDKey([]byte(password), salt, 1, 8*1024, 1, 32)
	return fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=1$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key))
}

// newTestEnv returns a service over a fake store holding one active user, the clients testClient and otherClient
// (any organization), disabledClient, and orgClient (bound to another organization), and a signing key.
func newTestEnv(t *testing.T, opts ...func(*Options)) *testEnv {
	t.Helper()
	st := newFakeStore()
	clock := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	user := nexus.User{ID: uuid.NewString(), OrganizationID: uuid.NewString(), Email: testEmail, Name: "Ada",
		Role: nexus.RoleAnalyst, Status: nexus.UserActive, CreatedAt: clock.t, UpdatedAt: clock.t}
	st.users[user.ID] = Credentials{User: user, PasswordHash: cheapHash(t, testPassword)}
	for _, c := range []Client{
		{ID: uuid.NewString(), ClientID: testClient, Name: "Web"},
		{ID: uuid.NewString(), ClientID: otherClient, Name: "CLI"},
		{ID: uuid.NewString(), ClientID: disabledClient, Name: "Retired", Disabled: true},
		{ID: uuid.NewString(), ClientID: orgClient, Name: "Other", OrganizationID: uuid.NewString()},
	} {
		st.clients[c.ClientID] = c
	}
	secret := randomKey(t)
	o := Options{Store: st, Secret: secret, Issuer: testIssuer, AccessTTL: testAccessTTL,
		RefreshIdleTTL: testIdleTTL, RefreshAbsoluteTTL: testAbsTTL, RefreshGrace: testGrace, Now: clock.Now}
	for _, opt := range opts {
		opt(&o)
	}
	svc, err := NewService(o)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	if err := svc.EnsureSigningKey(context.Background()); err != nil {
		t.Fatalf("EnsureSigningKey: %v", err)
	}
	return &testEnv{svc: svc, store: st, clock: clock, user: user, secret: secret}
}

// login logs the test user in through testClient.
func (e *testEnv) login(t *testing.T) Tokens {
	t.Helper()
	tok, err := e.svc.Login(context.Background(), LoginInput{Email: testEmail, Password: testPassword, ClientID: testClient})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	return tok
}

// sessionID returns the session a refresh token names.
func sessionID(t *testing.T, refreshToken string) string {
	t.Helper()
	tok, ok := parseRefreshToken(refreshToken)
	if !ok {
		t.Fatalf("parseRefreshToken(%q) failed", refreshToken)
	}
	return tok.sessionID
}
