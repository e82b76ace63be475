package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math"
	"strings"

	"github.com/google/uuid"
)

// A refresh token is "nxr_" + base64url(session id (16 bytes) || generation (8 bytes) || MAC (32 bytes)), where
// MAC = HMAC-SHA256(refresh key, "nexus-refresh" || session id || generation || session salt). The refresh key
// is derived from the server secret and the salt is random per session, so neither a copy of the database nor
// the secret alone can mint a token, and no token is ever stored: the session row keeps only the generation.
const (
	refreshPrefix = "nxr_"
	refreshRawLen = 16 + 8 + sha256.Size
)

type refreshToken struct {
	sessionID  string
	generation int64
	mac        []byte
}

func (s *secrets) refreshMACFor(sessionID uuid.UUID, generation int64, salt []byte) []byte {
	m := hmac.New(sha256.New, s.refreshMAC)
	m.Write([]byte("nexus-refresh"))
	m.Write(sessionID[:])
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], uint64(generation)) // #nosec G115 -- a generation is never negative, and the encoding is one-to-one anyway
	m.Write(g[:])
	m.Write(salt)
	return m.Sum(nil)
}

// mintRefreshToken returns the refresh token of the given generation of session s, under the current secret.
func (s *secrets) mintRefreshToken(sess Session, generation int64) string {
	id := uuid.MustParse(sess.ID)
	raw := make([]byte, 0, refreshRawLen)
	raw = append(raw, id[:]...)
	raw = binary.BigEndian.AppendUint64(raw, uint64(generation)) // #nosec G115 -- a generation is never negative; parseRefreshToken rejects what would be
	raw = append(raw, s.refreshMACFor(id, generation, sess.Salt)...)
	return refreshPrefix + base64.RawURLEncoding.EncodeToString(raw)
}

// parseRefreshToken splits a presented token into its parts without trusting any of them.
func parseRefreshToken(tok string) (refreshToken, bool) {
	rest, ok := strings.CutPrefix(tok, refreshPrefix)
	if !ok {
		return refreshToken{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	// One spelling per token: the decoder would also accept stray newlines and non-zero padding bits.
	if err != nil || len(raw) != refreshRawLen || base64.RawURLEncoding.EncodeToString(raw) != rest {
		return refreshToken{}, false
	}
	id, err := uuid.FromBytes(raw[:16])
	if err != nil {
		return refreshToken{}, false
	}
	gen := binary.BigEndian.Uint64(raw[16:24])
	if gen > math.MaxInt64 {
		return refreshToken{}, false
	}
	return refreshToken{sessionID: id.String(), generation: int64(gen), mac: raw[24:]}, true
}

// validRefreshMAC reports, in constant time, whether t was minted for session sess under the current secret or,
// when one is configured, the previous one: then both MACs are computed and compared, whichever matches, so
// that the time taken does not tell which key a token was minted with.
func (s *secrets) validRefreshMAC(t refreshToken, sess Session) bool {
	id := uuid.MustParse(sess.ID)
	ok := hmac.Equal(s.refreshMACFor(id, t.generation, sess.Salt), t.mac)
	if s.prev != nil {
		okPrev := hmac.Equal(s.prev.refreshMACFor(id, t.generation, sess.Salt), t.mac)
		ok = ok || okPrev
	}
	return ok
}
