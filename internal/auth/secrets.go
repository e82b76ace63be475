package auth

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// secrets holds the keys derived from the server's master secret, one per purpose, so that no key does two jobs,
// and those of the previous master secret during a rotation (NEXUS_SECRET_KEY_PREVIOUS): values made with it are
// still read (sealed signing keys, refresh tokens), but nothing new is made with it.
type secrets struct {
	id         string      // nexus.SecretKeyID of the master secret, stored beside what it made
	seal       cipher.AEAD // encrypts signing keys at rest
	refreshMAC []byte      // keys the MAC that derives refresh tokens
	emailHash  []byte      // keys the hash of unknown emails in the audit log
	prev       *secrets    // the previous master secret's keys; nil when none is configured
}

// newSecrets derives the keys of master and, when previous is not nil, those of previous.
func newSecrets(master, previous []byte) (*secrets, error) {
	s, err := deriveSecrets(master)
	if err != nil || previous == nil {
		return s, err
	}
	if bytes.Equal(master, previous) {
		return nil, errors.New("the previous secret key must differ from the secret key")
	}
	if s.prev, err = deriveSecrets(previous); err != nil {
		return nil, fmt.Errorf("previous secret key: %w", err)
	}
	return s, nil
}

func deriveSecrets(master []byte) (*secrets, error) {
	if len(master) < 32 {
		return nil, errors.New("the secret key must be at least 32 bytes")
	}
	derive := func(info string) ([]byte, error) { return hkdf.Key(sha256.New, master, nil, info, 32) }
	sealKey, err := derive("nexus/v1/signing-key-seal")
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	mac, err := derive("nexus/v1/refresh-token-mac")
	if err != nil {
		return nil, err
	}
	email, err := derive("nexus/v1/audit-email-hash")
	if err != nil {
		return nil, err
	}
	return &secrets{id: nexus.SecretKeyID(master), seal: aead, refreshMAC: mac, emailHash: email}, nil
}

// sealBytes encrypts plaintext, binding it to label (the key id) so a sealed value cannot be moved to another row.
func (s *secrets) sealBytes(plaintext []byte, label string) ([]byte, error) {
	nonce := make([]byte, s.seal.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.seal.Seal(nonce, nonce, plaintext, []byte(label)), nil
}

// openBytes decrypts a value sealBytes made with the current secret or, when one is configured, the previous one;
// previous reports that it took the previous one (the value should be sealed again).
func (s *secrets) openBytes(sealed []byte, label string) (out []byte, previous bool, err error) {
	out, err = s.open(sealed, label)
	if err != nil && s.prev != nil {
		if out, perr := s.prev.open(sealed, label); perr == nil {
			return out, true, nil
		}
		return nil, false, fmt.Errorf("open sealed value (neither NEXUS_SECRET_KEY nor NEXUS_SECRET_KEY_PREVIOUS opens it): %w", err)
	}
	if err != nil {
		return nil, false, fmt.Errorf("open sealed value (wrong NEXUS_SECRET_KEY? after changing it, set NEXUS_SECRET_KEY_PREVIOUS to the key before): %w", err)
	}
	return out, false, nil
}

func (s *secrets) open(sealed []byte, label string) ([]byte, error) {
	n := s.seal.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	return s.seal.Open(nil, sealed[:n], sealed[n:], []byte(label))
}

// hashEmail returns a keyed hash of a normalized email, under the current secret only: stable for correlating
// failed logins, useless without the server secret. A rotation starts new hashes: the failed logins of one
// unknown email before and after it do not correlate.
func (s *secrets) hashEmail(normalized string) string {
	m := hmac.New(sha256.New, s.emailHash)
	m.Write([]byte(normalized))
	return hex.EncodeToString(m.Sum(nil))
}
