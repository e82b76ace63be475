package ratelimit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sync"
)

// hashLen is how many bytes of the HMAC a stored key keeps: 128 bits, far
// beyond any chance of two keys colliding.
const hashLen = 16

// hasher computes HMAC-SHA-256 with pooled state, so that a key costs no
// allocation but the resulting string.
type hasher struct{ pool sync.Pool }

type hashState struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func newHasher(secret []byte) hasher {
	secret = append([]byte(nil), secret...)
	return hasher{pool: sync.Pool{New: func() any {
		return &hashState{mac: hmac.New(sha256.New, secret), buf: make([]byte, 0, 128)}
	}}}
}

// storeKey returns the stored form of key under p: "name:limit/window:" and
// the HMAC of the name and the key, base64url. The quota is part of it, so a
// changed quota starts from fresh state rather than misreading old state;
// the name is part of the MAC, so the same IP under two policies yields
// unrelated values.
func (p *policy) storeKey(h *hasher, key string) string {
	s := h.pool.Get().(*hashState)
	s.buf = append(s.buf[:0], p.name...)
	s.buf = append(s.buf, 0)
	s.buf = append(s.buf, key...)
	s.mac.Reset()
	s.mac.Write(s.buf)
	sum := s.mac.Sum(s.sum[:0])

	enc := base64.RawURLEncoding
	s.buf = append(s.buf[:0], p.prefix...)
	n := len(s.buf)
	s.buf = append(s.buf, make([]byte, enc.EncodedLen(hashLen))...)
	enc.Encode(s.buf[n:], sum[:hashLen])
	out := string(s.buf)
	if cap(s.buf) > 1024 { // do not keep a huge key's buffer
		s.buf = make([]byte, 0, 128)
	}
	h.pool.Put(s)
	return out
}
