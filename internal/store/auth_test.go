package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// equalTimes compares times by instant; the store returns them in UTC, which the tests check separately.
var equalTimes = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

// t0 is a fixed instant with microsecond precision, what both databases keep.
var t0 = time.Date(2030, 5, 17, 9, 30, 15, 123456000, time.UTC)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// mustSession stores a new session of user u and returns it.
func mustSession(t *testing.T, db *store.DB, u nexus.User) auth.Session {
	t.Helper()
	s := auth.Session{ID: uuid.NewString(), UserID: u.ID, OrganizationID: u.OrganizationID, ClientID: "web",
		Salt: randomBytes(t, 32), CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(90 * 24 * time.Hour)}
	if err := createSession(store.NewAuth(db), s); err != nil {
		t.Fatalf("StartSession: %v", err)
	}
	return s
}

// createSession stores s as the session StartSession's callback returns for s's user.
func createSession(a *store.Auth, s auth.Session) error {
	return a.StartSession(context.Background(), s.UserID, func(auth.Credentials) (auth.Session, error) { return s, nil }, nil)
}

func checkUTC(t *testing.T, what string, times ...time.Time) {
	t.Helper()
	for i, tm := range times {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s: time %d is in %v, want UTC", what, i, tm.Location())
		}
	}
}

func TestUserByEmail(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		u := mustUser(t, db, mustOrg(t, db, "Acme").ID, "Ada.Lovelace@Example.com")
		a := store.NewAuth(db)
		for _, email := range []string{"Ada.Lovelace@Example.com", "ada.lovelace@example.com", "ADA.LOVELACE@EXAMPLE.COM", " ada.lovelace@example.com\t"} {
			got, err := a.UserByEmail(ctx, email)
			if err != nil {
				t.Errorf("UserByEmail(%q): %v", email, err)
				continue
			}
			if diff := cmp.Diff(u, got.User, equalTimes); diff != "" {
				t.Errorf("UserByEmail(%q) user (-want +got):\n%s", email, diff)
			}
			if got.PasswordHash != "hash-of-Ada.Lovelace@Example.com" {
				t.Errorf("UserByEmail(%q) hash = %q", email, got.PasswordHash)
			}
		}
		for _, email := range []string{"ada@example.com", "", "ada.lovelace@example.co"} {
			if _, err := a.UserByEmail(ctx, email); !errors.Is(err, nexus.ErrNotFound) {
				t.Errorf("UserByEmail(%q) = %v, want not found", email, err)
			}
		}
	})
}

// badIDs are ids that no row can have: PostgreSQL would refuse to compare most of them with a uuid column.
var badIDs = []string{
	"",
	"not-a-uuid",
	"123",
	"' OR '1'='1",
	"00000000-0000-0000-0000-00000000000g",
	"6ba7b810-9dad-11d1-80b4-00c04fd430c8-",
	"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
	"urn:uuid:6ba7b810-9dad-11d1-80b4-00c04fd430c8",
	"6ba7b8109dad11d180b400c04fd430c8",
}

func TestLookupByID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := store.NewAuth(db)
		u := mustUser(t, db, mustOrg(t, db, "Acme").ID, "ada@example.com")
		s := mustSession(t, db, u)

		lookups := []struct {
			name string
			find func(id string) error
			id   string
		}{
			{"StartSession", func(id string) error {
				// The user was found if fn ran: it refuses, and nothing is stored.
				errFound := errors.New("found")
				err := a.StartSession(ctx, id, func(auth.Credentials) (auth.Session, error) { return auth.Session{}, errFound }, nil)
				if errors.Is(err, errFound) {
					return nil
				}
				return err
			}, u.ID},
			{"Session", func(id string) error { _, err := a.Session(ctx, id); return err }, s.ID},
			{"UpdateSession", func(id string) error {
				return a.UpdateSession(ctx, id, func(*auth.Session, nexus.User) (bool, error) { return false, nil }, nil)
			}, s.ID},
		}
		for _, l := range lookups {
			t.Run(l.name, func(t *testing.T) {
				if err := l.find(l.id); err != nil {
					t.Errorf("%s(existing id): %v", l.name, err)
				}
				if err := l.find(strings.ToUpper(l.id)); err != nil {
					t.Errorf("%s(upper-case id): %v", l.name, err)
				}
				for _, id := range append([]string{uuid.NewString()}, badIDs...) {
					err := l.find(id)
					if !errors.Is(err, nexus.ErrNotFound) {
						t.Errorf("%s(%q) = %v (kind %v), want not found", l.name, id, err, nexus.KindOf(err))
					}
				}
			})
		}
	})
}

func TestSessionRoundTrip(t *testing.T) {
	east := time.FixedZone("UTC+5", 5*60*60)
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := store.NewAuth(db)
		u := mustUser(t, db, mustOrg(t, db, "Acme").ID, "ada@example.com")
		tests := []struct {
			name string
			s    auth.Session
		}{
			{"fresh", auth.Session{ClientID: "web", Salt: randomBytes(t, 32),
				CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(90 * 24 * time.Hour)}},
			{"every field set", auth.Session{ClientID: "mobile", DeviceID: "device-1", Salt: randomBytes(t, 32),
				Generation: 41, RotatedAt: t0.Add(time.Hour), CreatedAt: t0, LastUsedAt: t0.Add(2 * time.Hour),
				ExpiresAt: t0.Add(90 * 24 * time.Hour), RevokedAt: t0.Add(3 * time.Hour), RevokedReason: "logout"}},
			{"times in another zone", auth.Session{ClientID: "web", DeviceID: "d", Salt: []byte{0, 1, 2, 0xff},
				Generation: 1 << 40, RotatedAt: t0.In(east), CreatedAt: t0.In(east), LastUsedAt: t0.In(east),
				ExpiresAt: t0.Add(time.Minute).In(east)}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				want := tt.s
				want.ID, want.UserID, want.OrganizationID = uuid.NewString(), u.ID, u.OrganizationID
				if err := createSession(a, want); err != nil {
					t.Fatalf("StartSession: %v", err)
				}
				got, err := a.Session(ctx, want.ID)
				if err != nil {
					t.Fatalf("Session: %v", err)
				}
				if diff := cmp.Diff(want, got, equalTimes); diff != "" {
					t.Errorf("Session (-want +got):\n%s", diff)
				}
				checkUTC(t, "Session", got.RotatedAt, got.CreatedAt, got.LastUsedAt, got.ExpiresAt, got.RevokedAt)
				if err := createSession(a, want); !errors.Is(err, nexus.ErrConflict) {
					t.Errorf("StartSession with an existing id = %v, want conflict", err)
				}
			})
		}
	})
}

func TestUpdateSession(t *testing.T) {
	errFn := errors.New("callback failed")
	tests := []struct {
		name     string
		save     bool
		err      error
		wantSave bool
	}{
		{"save", true, nil, true},
		{"no save", false, nil, false},
		{"plain error with save", true, errFn, false},
		{"plain error without save", false, errFn, false},
		{"nexus error", true, nexus.ErrInvalidGrant, false},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := store.NewAuth(db)
		u := mustUser(t, db, mustOrg(t, db, "Acme").ID, "ada@example.com")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := mustSession(t, db, u)
				var changed auth.Session
				err := a.UpdateSession(ctx, before.ID, func(s *auth.Session, user nexus.User) (bool, error) {
					if diff := cmp.Diff(before, *s, equalTimes); diff != "" {
						t.Errorf("fn got (-stored +got):\n%s", diff)
					}
					if diff := cmp.Diff(u, user, equalTimes); diff != "" {
						t.Errorf("fn got the user (-stored +got):\n%s", diff)
					}
					s.Generation++
					s.DeviceID = "device-1"
					s.RotatedAt = t0.Add(time.Minute)
					s.LastUsedAt = t0.Add(time.Minute)
					s.RevokedAt = t0.Add(2 * time.Minute)
					s.RevokedReason = "test"
					changed = *s
					return tt.save, tt.err
				}, nil)
				switch {
				case tt.err == nil && err != nil:
					t.Fatalf("UpdateSession: %v", err)
				case tt.err != nil && !errors.Is(err, tt.err):
					t.Fatalf("UpdateSession = %v, want the callback's error %v", err, tt.err)
				case tt.err == errFn && errors.As(err, new(*nexus.Error)):
					t.Errorf("UpdateSession = %v: the callback's error was wrapped", err)
				}
				want := before
				if tt.wantSave {
					want = changed
				}
				got, err := a.Session(ctx, before.ID)
				if err != nil {
					t.Fatalf("Session: %v", err)
				}
				if diff := cmp.Diff(want, got, equalTimes); diff != "" {
					t.Errorf("stored session (-want +got):\n%s", diff)
				}
			})
		}

		called := false
		err := a.UpdateSession(ctx, uuid.NewString(), func(*auth.Session, nexus.User) (bool, error) { called = true; return true, nil }, nil)
		if !errors.Is(err, nexus.ErrNotFound) || called {
			t.Errorf("UpdateSession(unknown) = %v, fn called %v; want not found, not called", err, called)
		}
	})
}

// TestUpdateSessionConcurrent proves that UpdateSession serializes read-modify-write cycles: no increment is lost.
func TestUpdateSessionConcurrent(t *testing.T) {
	const workers = 20
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := store.NewAuth(db)
		s := mustSession(t, db, mustUser(t, db, mustOrg(t, db, "Acme").ID, "ada@example.com"))
		errs := make(chan error, workers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				<-start
				errs <- a.UpdateSession(ctx, s.ID, func(s *auth.Session, _ nexus.User) (bool, error) {
					s.Generation++
					return true, nil
				}, nil)
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("UpdateSession: %v", err)
			}
		}
		got, err := a.Session(ctx, s.ID)
		if err != nil {
			t.Fatalf("Session: %v", err)
		}
		if got.Generation != workers {
			t.Errorf("Generation = %d after %d concurrent increments", got.Generation, workers)
		}
	})
}

func TestSigningKeys(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := store.NewAuth(db)
		keys, err := a.SigningKeys(ctx)
		if err != nil || len(keys) != 0 {
			t.Fatalf("SigningKeys on a new database = %v, %v; want none", keys, err)
		}
		base := t0.Truncate(time.Second)
		key := func(id string, created, active time.Duration) auth.SigningKey {
			return auth.SigningKey{ID: id, Algorithm: "ES256", PublicJWK: []byte(`{"kid":"` + id + `"}`),
				Sealed: randomBytes(t, 60), CreatedAt: base.Add(created), ActiveFrom: base.Add(active)}
		}
		// Added out of order, created in another order than they activate, and with fractions of a second of
		// different lengths (which SQLite stores as text).
		want := []auth.SigningKey{
			key("a", 3*time.Hour, 0),
			key("b", time.Hour, 123456*time.Microsecond),
			key("c", 2*time.Hour, 500*time.Millisecond),
			key("d", 0, time.Hour),
		}
		for _, i := range []int{3, 0, 2, 1} {
			if err := a.AddSigningKey(ctx, want[i]); err != nil {
				t.Fatalf("AddSigningKey(%s): %v", want[i].ID, err)
			}
		}
		keys, err = a.SigningKeys(ctx)
		if err != nil {
			t.Fatalf("SigningKeys: %v", err)
		}
		if diff := cmp.Diff(want, keys, equalTimes); diff != "" {
			t.Errorf("SigningKeys (-want +got):\n%s", diff)
		}
		for _, k := range keys {
			checkUTC(t, k.ID, k.CreatedAt, k.ActiveFrom)
		}
		if err := a.AddSigningKey(ctx, key("a", 0, 0)); !errors.Is(err, nexus.ErrConflict) {
			t.Errorf("AddSigningKey with an existing id = %v, want conflict", err)
		}
	})
}

func TestAuthEvents(t *testing.T) {
	// truncated strings must keep whole characters: "é" is 2 bytes, "€" 3, "🔑" 4.
	tests := []struct {
		name      string
		userAgent string
		wantLen   int
	}{
		{"empty", "", 0},
		{"short", "curl/8.5.0", 10},
		{"exactly 512 bytes", strings.Repeat("a", 512), 512},
		{"513 bytes", strings.Repeat("a", 513), 512},
		{"2-byte rune across the limit", "a" + strings.Repeat("é", 300), 511},
		{"3-byte rune across the limit", "a" + strings.Repeat("€", 200), 511},
		{"4-byte rune across the limit", "ab" + strings.Repeat("🔑", 200), 510},
		{"4-byte runes ending at the limit", strings.Repeat("🔑", 200), 512},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := store.NewAuth(db)
		u := mustUser(t, db, mustOrg(t, db, "Acme").ID, "ada@example.com")
		var want []auth.AuditEvent
		// Recorded newest first: AuthEvents must return them oldest first.
		for i := len(tests) - 1; i >= 0; i-- {
			tt := tests[i]
			e := auth.AuditEvent{OccurredAt: t0.Add(time.Duration(i) * time.Second), Action: "login", Result: "success",
				UserAgent: tt.userAgent}
			if i%2 == 0 {
				e.UserID, e.OrganizationID, e.ClientID, e.SessionID = u.ID, u.OrganizationID, "web", uuid.NewString()
				e.EmailHash, e.SocketIP, e.ReportedIP, e.DeviceID = "abc123", "192.0.2.1", "2001:db8::1", "device-1"
			}
			if err := a.RecordAuthEvent(ctx, e); err != nil {
				t.Fatalf("%s: RecordAuthEvent: %v", tt.name, err)
			}
			e.UserAgent = tt.userAgent[:tt.wantLen]
			want = append([]auth.AuditEvent{e}, want...)
		}
		got, err := a.AuthEvents(ctx)
		if err != nil {
			t.Fatalf("AuthEvents: %v", err)
		}
		if diff := cmp.Diff(want, got, equalTimes); diff != "" {
			t.Errorf("AuthEvents (-want +got):\n%s", diff)
		}
		for i, e := range got {
			if len(e.UserAgent) > 512 || !utf8.ValidString(e.UserAgent) {
				t.Errorf("event %d: user agent of %d bytes, valid UTF-8 %v", i, len(e.UserAgent), utf8.ValidString(e.UserAgent))
			}
			checkUTC(t, "AuthEvents", e.OccurredAt)
		}
	})
}

// TestSessionWritesSerializeWithUserChanges holds the callback of StartSession (a login) or UpdateSession (a
// refresh) open while a change that takes the user's rights away runs. The change must wait for it, and then
// revoke the session the callback wrote: a session is never left live with rights read before a change that has
// returned. Without the user's row lock the change would commit while the callback waits, miss the session, and
// this test would fail on both counts.
func TestSessionWritesSerializeWithUserChanges(t *testing.T) {
	inactive, analyst := nexus.UserInactive, nexus.RoleAnalyst
	changes := []struct {
		name   string
		change users.Change
		reason string
	}{
		{"deactivate", users.Change{Status: &inactive}, "user_deactivated"},
		{"change role", users.Change{Role: &analyst}, "role_changed"},
	}
	writes := []struct {
		name  string
		write func(a *store.Auth, u nexus.User, hold func(nexus.User)) error
	}{
		{"StartSession", func(a *store.Auth, u nexus.User, hold func(nexus.User)) error {
			return a.StartSession(context.Background(), u.ID, func(c auth.Credentials) (auth.Session, error) {
				hold(c.User)
				return auth.Session{ID: uuid.NewString(), UserID: u.ID, OrganizationID: u.OrganizationID, ClientID: "web",
					Role: c.User.Role, Salt: []byte("salt"), CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}, nil
			}, nil)
		}},
		{"UpdateSession", func(a *store.Auth, u nexus.User, hold func(nexus.User)) error {
			s := auth.Session{ID: uuid.NewString(), UserID: u.ID, OrganizationID: u.OrganizationID, ClientID: "web",
				Role: u.Role, Salt: []byte("salt"), CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}
			if err := createSession(a, s); err != nil {
				return err
			}
			return a.UpdateSession(context.Background(), s.ID, func(s *auth.Session, cur nexus.User) (bool, error) {
				hold(cur)
				s.Generation++
				s.Role = cur.Role
				return true, nil
			}, nil)
		}},
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		a, us := store.NewAuth(db), store.NewUsers(db)
		org := mustOrg(t, db, "Acme")
		for _, w := range writes {
			for _, ch := range changes {
				t.Run(w.name+"/"+ch.name, func(t *testing.T) {
					u := mustUser(t, db, org.ID, uuid.NewString()+"@example.com")
					entered, release := make(chan nexus.User, 1), make(chan struct{})
					wrote := make(chan error, 1)
					go func() {
						wrote <- w.write(a, u, func(cur nexus.User) { entered <- cur; <-release })
					}()
					if seen := <-entered; seen.Role != u.Role || seen.Status != u.Status {
						t.Fatalf("the callback saw %s/%s, want the user before the change", seen.Role, seen.Status)
					}
					changed := make(chan error, 1)
					go func() {
						_, err := updateUser(context.Background(), us, org.ID, u.ID, ch.change, t0.Add(time.Minute))
						changed <- err
					}()
					select {
					case err := <-changed:
						close(release)
						<-wrote
						t.Fatalf("UpdateUser returned (%v) while the session's transaction held the user", err)
					case <-time.After(200 * time.Millisecond): // time for the change to run into the lock
					}
					close(release)
					if err := <-wrote; err != nil {
						t.Fatalf("%s: %v", w.name, err)
					}
					if err := <-changed; err != nil {
						t.Fatalf("UpdateUser: %v", err)
					}
					sessions, err := a.UserSessions(context.Background(), u.ID)
					if err != nil {
						t.Fatal(err)
					}
					for _, s := range sessions {
						if s.RevokedReason != ch.reason {
							t.Errorf("session %s after the change: revoked %v for %q, want %q", s.ID, s.Revoked(), s.RevokedReason, ch.reason)
						}
					}
				})
			}
		}
	})
}

// TestSessionWritesRecordTheirAuditEntry proves that StartSession and UpdateSession append the audit entry they
// are given, as the callback left it, in their transaction: with the session's change, without one (a refusal
// that changes nothing still commits its entry), and not at all when the callback fails (nothing is written).
func TestSessionWritesRecordTheirAuditEntry(t *testing.T) {
	errFn := errors.New("callback failed")
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := store.NewAuth(db)
		u := mustUser(t, db, mustOrg(t, db, "Acme").ID, "ada@example.com")
		var want []auth.AuditEvent
		entry := func(action string, at time.Duration) auth.AuditEvent {
			return auth.AuditEvent{OccurredAt: t0.Add(at), Action: action, Result: "pending", UserID: u.ID,
				OrganizationID: u.OrganizationID, ClientID: "web", SocketIP: "192.0.2.1", DeviceID: "device-1", UserAgent: "test"}
		}

		// StartSession: the entry commits with the session; a refusal writes neither.
		ev := entry("login", 0)
		s := auth.Session{ID: uuid.NewString(), UserID: u.ID, OrganizationID: u.OrganizationID, ClientID: "web",
			Salt: randomBytes(t, 32), CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := a.StartSession(ctx, u.ID, func(auth.Credentials) (auth.Session, error) {
			ev.SessionID, ev.Result = s.ID, "success"
			return s, nil
		}, &ev); err != nil {
			t.Fatalf("StartSession: %v", err)
		}
		want = append(want, ev)
		refused := entry("login", time.Second)
		if err := a.StartSession(ctx, u.ID, func(auth.Credentials) (auth.Session, error) {
			refused.Result = "refused"
			return auth.Session{}, errFn
		}, &refused); !errors.Is(err, errFn) {
			t.Fatalf("StartSession = %v, want the callback's error", err)
		}

		// UpdateSession: with a save, without one, and with a failing callback.
		for i, tt := range []struct {
			save   bool
			err    error
			result string
		}{
			{true, nil, "success"},
			{false, nil, "client_mismatch"},
			{true, errFn, "failed"},
		} {
			ev := entry("refresh", time.Duration(2+i)*time.Second)
			ev.SessionID = s.ID
			err := a.UpdateSession(ctx, s.ID, func(cur *auth.Session, _ nexus.User) (bool, error) {
				cur.Generation++
				cur.LastUsedAt = ev.OccurredAt
				ev.Result = tt.result
				return tt.save, tt.err
			}, &ev)
			if !errors.Is(err, tt.err) {
				t.Fatalf("UpdateSession(%s) = %v, want %v", tt.result, err, tt.err)
			}
			if tt.err == nil {
				want = append(want, ev)
			}
		}
		got, err := a.AuthEvents(ctx)
		if err != nil {
			t.Fatalf("AuthEvents: %v", err)
		}
		if diff := cmp.Diff(want, got, equalTimes); diff != "" {
			t.Errorf("audit log (-want +got):\n%s", diff)
		}
		stored, err := a.Session(ctx, s.ID)
		if err != nil {
			t.Fatalf("Session: %v", err)
		}
		if stored.Generation != 1 || !stored.LastUsedAt.Equal(t0.Add(2*time.Second)) {
			t.Errorf("session generation %d, last used %v: want only the first update saved", stored.Generation, stored.LastUsedAt)
		}
	})
}
