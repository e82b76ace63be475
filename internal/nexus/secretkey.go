package nexus

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
)

// SecretKeyID returns the id of a master secret (NEXUS_SECRET_KEY): 16 hex digits derived from it one way, stored
// beside the values the secret made (refresh sessions, client secrets) so that the server can tell which of them
// still depend on a previous secret after a rotation. It reveals nothing about the secret.
func SecretKeyID(master []byte) string {
	id, err := hkdf.Key(sha256.New, master, nil, "nexus/v1/key-id", 8)
	if err != nil {
		panic(err) // only for a key length SHA-256 cannot reach
	}
	return hex.EncodeToString(id)
}
