package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// Argon2id parameters: the OWASP recommendation (19 MiB, 2 iterations, 1 lane).
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonSaltLen   = 16
	argonKeyLen    = 32

	// MaxPasswordBytes is the longest password accepted anywhere; longer ones are rejected, never truncated.
	MaxPasswordBytes = 1024
	// MinPasswordLength is the shortest password a new account may have, in characters.
	MinPasswordLength = 12
)

// HashPassword returns the argon2id hash of password in PHC string format.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC-encoded argon2id hash, in time that does not depend
// on where they differ. A malformed hash never matches.
func VerifyPassword(hash, password string) bool {
	p, err := parsePHC(hash)
	if err != nil {
		return false
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key))) // #nosec G115 -- parsePHC bounds the key to 16..64 bytes
	return subtle.ConstantTimeCompare(key, p.key) == 1
}

// CheckNewPassword returns a validation error if password may not be set on an account.
func CheckNewPassword(password string) error {
	n := len([]rune(password))
	switch {
	case len(password) > MaxPasswordBytes:
		return nexus.Invalid(nexus.BodyField("/password", fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)))
	case n < MinPasswordLength:
		return nexus.Invalid(nexus.BodyField("/password", fmt.Sprintf("must be at least %d characters", MinPasswordLength)))
	}
	return nil
}

type phc struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

var errBadHash = errors.New("malformed argon2id hash")

func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return phc{}, errBadHash
	}
	var p phc
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", p.memory, p.time, p.threads) {
		return phc{}, errBadHash
	}
	// Bounds keep a corrupted row from turning one login into a denial of service: at most 256 MiB.
	if p.memory < 8*1024 || p.memory > 256*1024 || p.time < 1 || p.time > 16 || p.threads < 1 || p.threads > 16 {
		return phc{}, errBadHash
	}
	var err1, err2 error
	p.salt, err1 = base64.RawStdEncoding.DecodeString(parts[4])
	p.key, err2 = base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(p.salt) < 8 || len(p.key) < 16 || len(p.key) > 64 {
		return phc{}, errBadHash
	}
	return p, nil
}
