package auth

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

func TestPasswordRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		password string
	}{
		{"ordinary", "correct horse battery staple"},
		{"100 characters", strings.Repeat("pässwörd🔑", 10)},
		{"1024 bytes", strings.Repeat("x", MaxPasswordBytes)},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash, err := HashPassword(tt.password)
			if err != nil {
				t.Fatalf("HashPassword: %v", err)
			}
			if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
				t.Errorf("hash %q lacks the argon2id PHC prefix with the OWASP parameters", hash)
			}
			if !VerifyPassword(hash, tt.password) {
				t.Error("VerifyPassword(hash, password) = false")
			}
			for _, wrong := range []string{tt.password + "x", strings.ToUpper(tt.password) + "X", tt.password[:len(tt.password)/2]} {
				if wrong != tt.password && VerifyPassword(hash, wrong) {
					t.Errorf("VerifyPassword(hash, %.20q...) = true", wrong)
				}
			}
			again, err := HashPassword(tt.password)
			if err != nil {
				t.Fatalf("HashPassword: %v", err)
			}
			if again == hash {
				t.Error("two hashes of one password are equal: the salt is not random")
			}
		})
	}
}

// TestVerifyPasswordReadsParameters checks that a hash made with other parameters still verifies, so that the
// parameters can be raised later.
func TestVerifyPasswordReadsParameters(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("password"), salt, 1, 8*1024, 2, 32)
	b64 := base64.RawStdEncoding
	hash := fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=2$%s$%s", b64.EncodeToString(salt), b64.EncodeToString(key))
	if !VerifyPassword(hash, "password") {
		t.Error("VerifyPassword with m=8192,t=1,p=2 = false")
	}
	if VerifyPassword(hash, "Password") {
		t.Error("VerifyPassword with the wrong password = true")
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	const password = "correct horse battery staple"
	good, err := HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", "argon2id", "v=19", "m=19456,t=2,p=1", salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	tests := []struct{ name, hash string }{
		{"empty", ""},
		{"not PHC", password},
		{"argon2i", with(1, "argon2i")},
		{"argon2d", with(1, "argon2d")},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"other version", with(2, "v=16")},
		{"absurd memory", with(3, "m=99999999,t=2,p=1")},
		{"memory overflowing uint32", with(3, "m=99999999999,t=2,p=1")},
		{"negative memory", with(3, "m=-1,t=2,p=1")},
		{"too little memory", with(3, "m=1024,t=2,p=1")},
		{"zero time", with(3, "m=19456,t=0,p=1")},
		{"absurd time", with(3, "m=19456,t=1000,p=1")},
		{"zero threads", with(3, "m=19456,t=2,p=0")},
		{"threads overflowing uint8", with(3, "m=19456,t=2,p=257")},
		{"parameters missing", with(3, "m=19456")},
		{"parameters garbled", with(3, "t=2,m=19456,p=1")},
		{"salt not base64", with(4, "!!!!!!!!!!!!!!!!!!!!!!")},
		{"salt padded", with(4, parts[4]+"==")},
		{"salt too short", with(4, "AAAA")},
		{"key not base64", with(5, "%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%")},
		{"key too short", with(5, parts[5][:16])},
		{"key too long", with(5, parts[5]+parts[5]+parts[5])},
		{"key empty", with(5, "")},
		{"extra field", good + "$extra"},
		{"leading garbage", "x" + good},
		{"junk after the parameters", with(3, "m=19456,t=2,p=1junk")},
		{"extra parameter", with(3, "m=19456,t=2,p=1,x=5")},
		{"memory over 256 MiB", with(3, "m=262145,t=2,p=1")},
		{"field missing", strings.Join(parts[:5], "$")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if VerifyPassword(tt.hash, password) {
				t.Errorf("VerifyPassword(%q) = true", tt.hash)
			}
		})
	}
}

func TestCheckNewPassword(t *testing.T) {
	tests := []struct {
		name     string
		password string
		valid    bool
	}{
		{"empty", "", false},
		{"11 characters", "abcdefghijk", false},
		{"12 characters", "abcdefghijkl", true},
		{"11 two-byte characters", strings.Repeat("é", 11), false},
		{"12 two-byte characters", strings.Repeat("é", 12), true},
		{"12 four-byte characters", strings.Repeat("🔑", 12), true},
		{"1024 bytes", strings.Repeat("a", MaxPasswordBytes), true},
		{"1025 bytes", strings.Repeat("a", MaxPasswordBytes+1), false},
		{"1026 bytes in 513 characters", strings.Repeat("é", 513), false},
		{"1024 bytes in 512 two-byte characters", strings.Repeat("é", 512), true},
		{"1024 bytes in 256 four-byte characters", strings.Repeat("🔑", 256), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckNewPassword(tt.password)
			switch {
			case tt.valid && err != nil:
				t.Errorf("CheckNewPassword = %v, want nil", err)
			case !tt.valid && nexus.KindOf(err) != nexus.KindInvalid:
				t.Errorf("CheckNewPassword = %v (kind %v), want an invalid error", err, nexus.KindOf(err))
			}
		})
	}
}
