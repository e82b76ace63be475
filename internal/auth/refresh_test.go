package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/uuid"
)

const b64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func mustSecrets(t *testing.T, master []byte) *secrets {
	t.Helper()
	s, err := newSecrets(master, nil)
	if err != nil {
		t.Fatalf("newSecrets: %v", err)
	}
	return s
}

func randomKey(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func testSession(t *testing.T) Session {
	return Session{ID: uuid.NewString(), Salt: randomKey(t)}
}

func TestNewSecretsNeeds32Bytes(t *testing.T) {
	for _, n := range []int{0, 16, 31} {
		if _, err := newSecrets(make([]byte, n), nil); err == nil {
			t.Errorf("newSecrets(%d bytes) succeeded", n)
		}
	}
	for _, n := range []int{32, 64} {
		if _, err := newSecrets(make([]byte, n), nil); err != nil {
			t.Errorf("newSecrets(%d bytes): %v", n, err)
		}
	}
}

func TestRefreshTokenRoundTrip(t *testing.T) {
	sec := mustSecrets(t, randomKey(t))
	sess := testSession(t)
	for _, gen := range []int64{0, 1, 2, 1<<40 + 7, 1<<63 - 1} {
		tok := sec.mintRefreshToken(sess, gen)
		if !strings.HasPrefix(tok, "nxr_") {
			t.Errorf("token %q lacks the nxr_ prefix", tok)
		}
		got, ok := parseRefreshToken(tok)
		if !ok {
			t.Fatalf("parseRefreshToken(%q) failed", tok)
		}
		if got.sessionID != sess.ID || got.generation != gen {
			t.Errorf("parsed session %s generation %d, want %s generation %d", got.sessionID, got.generation, sess.ID, gen)
		}
		if !sec.validRefreshMAC(got, sess) {
			t.Errorf("generation %d: validRefreshMAC = false for a token just minted", gen)
		}
		if again := sec.mintRefreshToken(sess, gen); again != tok {
			t.Errorf("minting generation %d twice gave %q and %q", gen, tok, again)
		}
	}
}

// TestRefreshTokenTampered changes each character of a token in a way that changes the bytes it encodes: the
// result must not be accepted for any session with the same salt.
func TestRefreshTokenTampered(t *testing.T) {
	sec := mustSecrets(t, randomKey(t))
	sess := testSession(t)
	sess.Generation = 3
	tok := sec.mintRefreshToken(sess, sess.Generation)
	for i := len(refreshPrefix); i < len(tok); i++ {
		// Flipping the top bit of the 6-bit value changes a data bit even in the last character, whose low bits
		// are padding.
		v := strings.IndexByte(b64URLAlphabet, tok[i])
		if v < 0 {
			t.Fatalf("token %q has a character outside the base64url alphabet at %d", tok, i)
		}
		tampered := tok[:i] + string(b64URLAlphabet[v^32]) + tok[i+1:]
		got, ok := parseRefreshToken(tampered)
		if !ok {
			continue
		}
		if sec.validRefreshMAC(got, Session{ID: got.sessionID, Salt: sess.Salt, Generation: sess.Generation}) {
			t.Errorf("token with character %d changed is accepted (session %s generation %d)", i, got.sessionID, got.generation)
		}
	}
}

func TestRefreshTokenBoundToSecretSaltAndGeneration(t *testing.T) {
	sec := mustSecrets(t, randomKey(t))
	sess := testSession(t)
	tok, ok := parseRefreshToken(sec.mintRefreshToken(sess, 5))
	if !ok {
		t.Fatal("parseRefreshToken failed")
	}

	other := mustSecrets(t, randomKey(t))
	if other.validRefreshMAC(tok, sess) {
		t.Error("a token minted with another secret is accepted")
	}
	if fromOther, _ := parseRefreshToken(other.mintRefreshToken(sess, 5)); sec.validRefreshMAC(fromOther, sess) {
		t.Error("a token minted by another secret's service is accepted")
	}

	resalted := sess
	resalted.Salt = randomKey(t)
	if sec.validRefreshMAC(tok, resalted) {
		t.Error("a token is accepted for a session with another salt")
	}

	for _, gen := range []int64{4, 6} {
		moved := tok
		moved.generation = gen
		if sec.validRefreshMAC(moved, sess) {
			t.Errorf("the MAC of generation 5 is accepted for generation %d", gen)
		}
	}
	if sec.mintRefreshToken(sess, 5) == sec.mintRefreshToken(sess, 6) {
		t.Error("generations 5 and 6 have the same token")
	}
}

// flipPaddingBits returns the base64url character with the same 4 data bits as c and other padding bits: the last
// character of a 56-byte value carries 4 data bits and 2 bits that a lenient decoder ignores.
func flipPaddingBits(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i^1]
}

func TestParseRefreshTokenRejects(t *testing.T) {
	sec := mustSecrets(t, randomKey(t))
	good := sec.mintRefreshToken(testSession(t), 1)
	body := strings.TrimPrefix(good, refreshPrefix)
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	negative := bytes.Clone(raw)
	binary.BigEndian.PutUint64(negative[16:24], 1<<63)
	tests := []struct{ name, token string }{
		{"empty", ""},
		{"prefix only", "nxr_"},
		{"not base64", "nxr_!!!"},
		{"missing prefix", body},
		{"other prefix", "nxa_" + body},
		{"prefix in upper case", "NXR_" + body},
		{"one byte short", refreshPrefix + base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1])},
		{"one byte long", refreshPrefix + base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw), 0))},
		{"padded", refreshPrefix + base64.URLEncoding.EncodeToString(raw)},
		{"standard alphabet", refreshPrefix + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, len(raw)))},
		{"negative generation", refreshPrefix + base64.RawURLEncoding.EncodeToString(negative)},
		{"surrounding space", " " + good},
		{"embedded newline", refreshPrefix + body[:10] + "\n" + body[10:]},
		{"trailing newline", good + "\n"},
		{"non-zero padding bits", refreshPrefix + body[:len(body)-1] + string(flipPaddingBits(body[len(body)-1]))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := parseRefreshToken(tt.token); ok {
				t.Errorf("parseRefreshToken(%q) = %+v, want failure", tt.token, got)
			}
		})
	}
}

func TestSealBytes(t *testing.T) {
	sec := mustSecrets(t, randomKey(t))
	plain := []byte("the private key")
	sealed, err := sec.sealBytes(plain, "kid-1")
	if err != nil {
		t.Fatalf("sealBytes: %v", err)
	}
	if bytes.Contains(sealed, plain) {
		t.Error("the sealed value contains the plaintext")
	}
	got, _, err := sec.openBytes(sealed, "kid-1")
	if err != nil {
		t.Fatalf("openBytes: %v", err)
	}
	if !bytes.Equal(got, plain) {
		t.Errorf("openBytes = %q, want %q", got, plain)
	}
	again, err := sec.sealBytes(plain, "kid-1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, sealed) {
		t.Error("sealing twice gave the same bytes: the nonce is not random")
	}

	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name   string
		sec    *secrets
		sealed []byte
		label  string
	}{
		{"wrong label", sec, sealed, "kid-2"},
		{"empty label", sec, sealed, ""},
		{"other secret", mustSecrets(t, randomKey(t)), sealed, "kid-1"},
		{"tampered", sec, flipped, "kid-1"},
		{"truncated", sec, sealed[:len(sealed)-1], "kid-1"},
		{"nonce only", sec, sealed[:sec.seal.NonceSize()], "kid-1"},
		{"shorter than a nonce", sec, sealed[:3], "kid-1"},
		{"empty", sec, nil, "kid-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, _, err := tt.sec.openBytes(tt.sealed, tt.label); err == nil {
				t.Errorf("openBytes = %q, want an error", out)
			}
		})
	}
}

func TestHashEmail(t *testing.T) {
	sec := mustSecrets(t, randomKey(t))
	a, b := sec.hashEmail("ada@example.com"), sec.hashEmail("ada@example.com")
	if a != b {
		t.Errorf("hashEmail is not stable: %s, %s", a, b)
	}
	if a == sec.hashEmail("bob@example.com") {
		t.Error("two emails hash alike")
	}
	if a == mustSecrets(t, randomKey(t)).hashEmail("ada@example.com") {
		t.Error("the hash does not depend on the secret")
	}
}
