package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// secrets holds the keys derived from the server's master secret, one per purpose, so that no key does two jobs.
type secrets struct {
	seal       cipher.AEAD // encrypts signing keys at rest
	refreshMAC []byte      // keys the MAC that derives refresh tokens
	emailHash  []byte      // keys the hash of unknown emails in the audit log
}

func newSecrets(master []byte) (*secrets, error) {
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
	return &secrets{seal: aead, refreshMAC: mac, emailHash: email}, nil
}

// sealBytes encrypts plaintext, binding it to label (the key id) so a sealed value cannot be moved to another row.
func (s *secrets) sealBytes(plaintext []byte, label string) ([]byte, error) {
	nonce := make([]byte, s.seal.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.seal.Seal(nonce, nonce, plaintext, []byte(label)), nil
}

func (s *secrets) openBytes(sealed []byte, label string) ([]byte, error) {
	n := s.seal.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed value too short")
	}
	out, err := s.seal.Open(nil, sealed[:n], sealed[n:], []byte(label))
	if err != nil {
		return nil, fmt.Errorf("open sealed value (wrong NEXUS_SECRET_KEY?): %w", err)
	}
	return out, nil
}

// hashEmail returns a keyed hash of a normalized email: stable for correlating failed logins, useless without
// the server secret.
func (s *secrets) hashEmail(normalized string) string {
	m := hmac.New(sha256.New, s.emailHash)
	m.Write([]byte(normalized))
	return hex.EncodeToString(m.Sum(nil))
}
