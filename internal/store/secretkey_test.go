package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// TestSecretKeyUsage: sessions and client secrets record the secret key that made them, a refresh can change a
// session's, a re-hash a secret's; SecretKeyUsage counts the live ones of a key (and, asked to, those without
// one, the decoy's secrets never), and LabelSecretKeyID labels only those without one.
func TestSecretKeyUsage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a, cs := store.NewAuth(db), store.NewClients(db)
		org := mustOrg(t, db, "Acme").ID
		u := mustUser(t, db, org, "ada@example.com")
		now := t0.Add(48 * time.Hour)
		idle := 24 * time.Hour
		session := func(keyID string, change func(*auth.Session)) auth.Session {
			s := mustSession(t, db, u)
			if err := a.UpdateSession(ctx, s.ID, func(cur *auth.Session, _ nexus.User) (bool, error) {
				cur.KeyID, cur.LastUsedAt = keyID, now.Add(-time.Hour)
				if change != nil {
					change(cur)
				}
				s = *cur
				return true, nil
			}, nil); err != nil {
				t.Fatal(err)
			}
			return s
		}
		live := session("aaaa", nil)
		unlabelled := session("", func(s *auth.Session) { s.LastUsedAt = now.Add(-2 * time.Hour) })
		session("bbbb", nil)
		session("aaaa", func(s *auth.Session) { s.RevokedAt, s.RevokedReason = now.Add(-time.Minute), "logout" })
		session("aaaa", func(s *auth.Session) { s.ExpiresAt = now })
		session("aaaa", func(s *auth.Session) { s.LastUsedAt = now.Add(-idle) })
		if got, err := a.Session(ctx, live.ID); err != nil || got.KeyID != "aaaa" {
			t.Fatalf("Session = %+v, %v; want key id aaaa", got, err)
		}

		n := 0
		secret := func(keyID string, change func(*clients.Secret)) clients.Secret {
			n++
			s := newSecret(t0.Add(time.Duration(n) * time.Second)) // in this order
			s.KeyID = keyID
			if change != nil {
				change(&s)
			}
			return s
		}
		c := newServiceClient(org, "nxc_sync", readScopes, t0)
		c.Secrets = []clients.Secret{secret("aaaa", nil), secret("", nil), secret("aaaa", func(s *clients.Secret) { s.ExpiresAt = now }),
			secret("aaaa", func(s *clients.Secret) { s.RevokedAt = t0 }), secret("bbbb", nil)}
		if err := cs.CreateServiceClient(ctx, c, noLimit, createAudit(c)); err != nil {
			t.Fatal(err)
		}

		usage := func(keyID string, unlabelled bool) auth.SecretKeyUsage {
			t.Helper()
			got, err := a.SecretKeyUsage(ctx, keyID, unlabelled, now, now.Add(-idle))
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		last := now.Add(-time.Hour)
		if diff := cmp.Diff(auth.SecretKeyUsage{Sessions: 1, SessionsLastUse: last, SessionsExpireBy: live.ExpiresAt, ClientSecrets: 1},
			usage("aaaa", false), equalTimes); diff != "" {
			t.Errorf("SecretKeyUsage(aaaa) (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(auth.SecretKeyUsage{Sessions: 2, SessionsLastUse: last, SessionsExpireBy: live.ExpiresAt, ClientSecrets: 2},
			usage("aaaa", true), equalTimes); diff != "" {
			t.Errorf("SecretKeyUsage(aaaa or none) (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(auth.SecretKeyUsage{}, usage("cccc", false), equalTimes); diff != "" {
			t.Errorf("SecretKeyUsage(cccc) (-want +got):\n%s", diff)
		}

		// Labelled, the rows without a key id count for the label's key, and the others keep theirs.
		if err := a.LabelSecretKeyID(ctx, "cccc"); err != nil {
			t.Fatal(err)
		}
		if got, err := a.Session(ctx, unlabelled.ID); err != nil || got.KeyID != "cccc" {
			t.Errorf("Session after the label = %+v, %v; want key id cccc", got, err)
		}
		if got := usage("aaaa", true); got.Sessions != 1 || got.ClientSecrets != 1 {
			t.Errorf("SecretKeyUsage(aaaa or none) after the label = %+v", got)
		}
		if got := usage("cccc", false); got.Sessions != 1 || got.ClientSecrets != 1 {
			t.Errorf("SecretKeyUsage(cccc) after the label = %+v", got)
		}
		cred, err := cs.Credentials(ctx, "nxc_sync")
		if err != nil {
			t.Fatal(err)
		}
		var keyIDs []string
		for _, s := range cred.Secrets {
			keyIDs = append(keyIDs, s.KeyID)
		}
		if diff := cmp.Diff([]string{"aaaa", "cccc", "aaaa", "bbbb"}, keyIDs); diff != "" {
			t.Errorf("Credentials' key ids (-want +got):\n%s", diff)
		}

		// A re-hash replaces the hash it was given, once.
		first := cred.Secrets[0]
		hash := make([]byte, 32)
		_, _ = rand.Read(hash)
		for i, tt := range []struct {
			old  []byte
			want bool
		}{{hash, false}, {first.Hash, true}, {first.Hash, false}} {
			if ok, err := cs.RehashSecret(ctx, first.ID, tt.old, hash, "dddd"); err != nil || ok != tt.want {
				t.Errorf("RehashSecret %d = %v, %v; want %v", i, ok, err, tt.want)
			}
		}
		if cred, err = cs.Credentials(ctx, "nxc_sync"); err != nil || !bytes.Equal(cred.Secrets[0].Hash, hash) || cred.Secrets[0].KeyID != "dddd" {
			t.Errorf("Credentials after the re-hash = %+v, %v", cred, err)
		}
		if got := usage("aaaa", false); got.ClientSecrets != 0 {
			t.Errorf("SecretKeyUsage(aaaa) after the re-hash = %+v", got)
		}
	})
}

// TestResealSigningKeysConcurrently starts two nodes at once on one database, round after round, each with the
// secret key of the round before as the previous one: both start, and every key is sealed under the round's key
// alone, its public half unchanged.
func TestResealSigningKeysConcurrently(t *testing.T) {
	ctx := context.Background()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			opts := openBare(t, d)
			nodes := []*store.DB{open(t, opts), open(t, opts)}
			if _, err := nodes[0].Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			resealed := &resealCounter{}
			service := func(db *store.DB, secret, previous []byte) *auth.Service {
				t.Helper()
				svc, err := auth.NewService(auth.Options{Store: store.NewAuth(db), Secret: secret, PreviousSecret: previous,
					Issuer: "https://nexus.test", AccessTTL: time.Minute, RefreshIdleTTL: time.Hour, RefreshAbsoluteTTL: time.Hour,
					Logger: slog.New(resealed)})
				if err != nil {
					t.Fatal(err)
				}
				return svc
			}
			key := func() []byte {
				k := make([]byte, 32)
				_, _ = rand.Read(k)
				return k
			}
			secret := key()
			first := service(nodes[0], secret, nil)
			if err := first.EnsureSigningKey(ctx); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if _, err := first.RotateSigningKey(ctx); err != nil {
					t.Fatal(err)
				}
			}
			published, err := first.PublicKeys(ctx)
			if err != nil || len(published) != 3 {
				t.Fatalf("PublicKeys = %v, %v; want 3", published, err)
			}
			a := store.NewAuth(nodes[0])
			for round := range 20 {
				before, err := a.SigningKeys(ctx)
				if err != nil {
					t.Fatal(err)
				}
				previous := secret
				secret = key()
				var wg sync.WaitGroup
				errs := make([]error, len(nodes))
				start := make(chan struct{})
				for i, db := range nodes {
					svc := service(db, secret, previous)
					wg.Go(func() {
						<-start
						errs[i] = svc.EnsureSigningKey(ctx)
					})
				}
				resealed.n.Store(0)
				close(start)
				wg.Wait()
				// Each key is sealed again once, by one node or the other: the other's update finds it changed.
				if n := resealed.n.Load(); n != 3 {
					t.Fatalf("round %d: %d keys sealed again across the nodes, want 3", round, n)
				}
				for i, err := range errs {
					if err != nil {
						t.Fatalf("round %d: node %d: EnsureSigningKey: %v", round, i, err)
					}
				}
				// The round's key alone opens every key, and status finds none left to the previous one.
				alone := service(nodes[1], secret, nil)
				if err := alone.EnsureSigningKey(ctx); err != nil {
					t.Fatalf("round %d: a node with the new key alone: %v", round, err)
				}
				if got, err := alone.PublicKeys(ctx); err != nil || !cmp.Equal(published, got) {
					t.Fatalf("round %d: PublicKeys = %v, %v; want %v", round, got, err, published)
				}
				if st, err := service(nodes[0], secret, previous).SecretKeyStatus(ctx); err != nil || st.SigningKeys != 0 || st.UnreadableSigningKeys != 0 {
					t.Fatalf("round %d: SecretKeyStatus = %+v, %v", round, st, err)
				}
				after, err := a.SigningKeys(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for i := range after {
					if bytes.Equal(before[i].Sealed, after[i].Sealed) {
						t.Fatalf("round %d: key %s not sealed again", round, after[i].ID)
					}
				}
			}
		})
	}
}

// resealCounter is a log handler that adds up the keys the auth services report sealing again.
type resealCounter struct{ n atomic.Int64 }

func (c *resealCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *resealCounter) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "keys" {
			c.n.Add(a.Value.Int64())
		}
		return true
	})
	return nil
}
func (c *resealCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *resealCounter) WithGroup(string) slog.Handler      { return c }

// TestMigrateSecretKeyIDs upgrades a database of version 10 holding a refresh session and a client secret: they
// have no key id, count as possibly the previous key's, and a start without a previous key labels them with its
// own, the decoy's secrets too (which status never counts).
func TestMigrateSecretKeyIDs(t *testing.T) {
	ctx := context.Background()
	for _, d := range storetest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			db := open(t, openBare(t, d))
			if _, err := db.MigrateTo(ctx, 10); err != nil {
				t.Fatal(err)
			}
			const (
				org    = "0191e1a0-0000-7000-8000-0000000000aa"
				user   = "0191e1a0-0000-7000-8000-0000000000ab"
				ts     = "'2030-05-17 09:30:15+00:00'"
				future = "'2031-01-01 00:00:00+00:00'"
			)
			salt := "zeroblob(32)"
			if d == store.Postgres {
				salt = "decode(repeat('00', 32), 'hex')"
			}
			for _, q := range []string{
				"INSERT INTO organizations (id, name, created_at, updated_at) VALUES ('" + org + "', 'Acme', " + ts + ", " + ts + ")",
				"INSERT INTO users (id, organization_id, email, email_key, name, role, status, password_hash, created_at, updated_at) VALUES ('" +
					user + "', '" + org + "', 'a@b.test', 'a@b.test', 'A', 'member', 'active', 'x', " + ts + ", " + ts + ")",
				"INSERT INTO refresh_sessions (id, user_id, organization_id, client_id, salt, generation, created_at, last_used_at, expires_at, role) VALUES " +
					"('0191e1a0-0000-7000-8000-0000000000ac', '" + user + "', '" + org + "', 'web', " + salt + ", 0, " + ts + ", " + ts + ", " + future + ", 'member')",
				"INSERT INTO clients (id, client_id, name, organization_id, scopes, created_at, updated_at) VALUES " +
					"('0191e1a0-0000-7000-8000-0000000000ad', 'nxc_sync', 'Sync', '" + org + "', 'users:read', " + ts + ", " + ts + ")",
				"INSERT INTO client_secrets (id, client_ref, hash, hint, created_at) VALUES " +
					"('0191e1a0-0000-7000-8000-0000000000ae', '0191e1a0-0000-7000-8000-0000000000ad', " + salt + ", 'ab12', " + ts + ")",
			} {
				if err := db.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			if applied, err := db.Migrate(ctx); err != nil || !cmp.Equal(applied, allVersions(t)[10:]) {
				t.Fatalf("Migrate from 10 applied %v (%v), want %v", applied, err, allVersions(t)[10:])
			}
			a := store.NewAuth(db)
			now := time.Date(2030, 5, 18, 0, 0, 0, 0, time.UTC)
			count := func(keyID string, unlabelled bool) auth.SecretKeyUsage {
				t.Helper()
				u, err := a.SecretKeyUsage(ctx, keyID, unlabelled, now, now.Add(-30*24*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				return u
			}
			if u := count("aaaa", true); u.Sessions != 1 || u.ClientSecrets != 1 {
				t.Errorf("SecretKeyUsage of the rows made before the upgrade = %+v, want 1 and 1", u)
			}
			if err := a.LabelSecretKeyID(ctx, "bbbb"); err != nil {
				t.Fatal(err)
			}
			if u := count("aaaa", true); u.Sessions != 0 || u.ClientSecrets != 0 {
				t.Errorf("SecretKeyUsage(aaaa or none) once labelled = %+v", u)
			}
			if u := count("bbbb", false); u.Sessions != 1 || u.ClientSecrets != 1 {
				t.Errorf("SecretKeyUsage(bbbb) once labelled = %+v, want 1 and 1 (not the decoy's)", u)
			}
		})
	}
}
