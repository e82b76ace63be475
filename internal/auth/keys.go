package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

const (
	keyReloadInterval = 30 * time.Second // how stale a node's view of the key table may get
	keyMissReloadGap  = time.Second      // at most one reload a second for tokens naming an unknown kid
	keyRetireMargin   = 2 * time.Minute  // kept past the last moment a retired key could have signed
)

// keyRing caches the signing keys of the database. Every node sharing a database signs with the newest active
// key and verifies with every published key; a key added by `nexus keys rotate` reaches each node within
// keyReloadInterval, or at once when a token names it.
type keyRing struct {
	store        Store
	sec          *secrets
	now          func() time.Time
	publishDelay time.Duration
	accessTTL    time.Duration

	mu         sync.Mutex
	keys       []loadedKey // oldest first
	loadedAt   time.Time
	missReload time.Time
}

type loadedKey struct {
	SigningKey
	private  jwk.Key
	public   jwk.Key
	signer   *ecdsa.PrivateKey // the private key, for signAccessToken
	previous bool              // sealed under the previous secret key: to be sealed again under the current one
}

// PublicKey is a published verification key.
type PublicKey struct {
	KeyID, Algorithm, Curve, X, Y string
}

func (r *keyRing) load(ctx context.Context) error {
	rows, err := r.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	keys := make([]loadedKey, 0, len(rows))
	for _, row := range rows {
		k, err := r.open(row)
		if err != nil {
			return nexus.Internal(fmt.Errorf("signing key %s: %w", row.ID, err))
		}
		keys = append(keys, k)
	}
	r.mu.Lock()
	r.keys, r.loadedAt = keys, r.now()
	r.mu.Unlock()
	return nil
}

func (r *keyRing) open(row SigningKey) (loadedKey, error) {
	der, previous, err := r.sec.openBytes(row.Sealed, row.ID)
	if err != nil {
		return loadedKey{}, err
	}
	raw, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return loadedKey{}, err
	}
	ec, ok := raw.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return loadedKey{}, errors.New("not a P-256 key")
	}
	priv, pub, err := jwkPair(ec, row.ID)
	if err != nil {
		return loadedKey{}, err
	}
	return loadedKey{SigningKey: row, private: priv, public: pub, signer: ec, previous: previous}, nil
}

func jwkPair(ec *ecdsa.PrivateKey, kid string) (jwk.Key, jwk.Key, error) {
	priv, err := jwk.FromRaw(ec)
	if err != nil {
		return nil, nil, err
	}
	pub, err := jwk.FromRaw(&ec.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range []jwk.Key{priv, pub} {
		if err := errors.Join(k.Set(jwk.KeyIDKey, kid), k.Set(jwk.AlgorithmKey, jwa.ES256), k.Set(jwk.KeyUsageKey, "sig")); err != nil {
			return nil, nil, err
		}
	}
	return priv, pub, nil
}

// snapshot returns the cached keys, reloading them first when they are stale.
func (r *keyRing) snapshot(ctx context.Context) ([]loadedKey, error) {
	r.mu.Lock()
	stale := r.now().Sub(r.loadedAt) > keyReloadInterval
	r.mu.Unlock()
	if stale {
		if err := r.load(ctx); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys, nil
}

// retired reports whether no token signed by keys[i] can still be valid: a newer key has been active for longer
// than an access token lives, plus margins for clock skew and node reloads.
func (r *keyRing) retired(keys []loadedKey, i int, now time.Time) bool {
	for _, n := range keys[i+1:] {
		if now.After(n.ActiveFrom.Add(keyReloadInterval + r.accessTTL + keyRetireMargin)) {
			return true
		}
	}
	return false
}

// signingKey returns the newest key that is active now.
func (r *keyRing) signingKey(ctx context.Context) (loadedKey, error) {
	keys, err := r.snapshot(ctx)
	if err != nil {
		return loadedKey{}, err
	}
	now := r.now()
	for i := len(keys) - 1; i >= 0; i-- {
		if !keys[i].ActiveFrom.After(now) {
			return keys[i], nil
		}
	}
	return loadedKey{}, nexus.Internal(errors.New("no active signing key: run `nexus keys rotate`"))
}

// published returns the public keys that verify tokens now: every key that is not retired, including keys
// that do not sign yet.
func (r *keyRing) published(ctx context.Context) ([]loadedKey, error) {
	keys, err := r.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now()
	out := make([]loadedKey, 0, len(keys))
	for i := range keys {
		if !r.retired(keys, i, now) {
			out = append(out, keys[i])
		}
	}
	return out, nil
}

// verificationKeys returns the published keys as a JWK set, reloading first (at most once a second) when kid is
// not among them, so that a key added on another node verifies at once.
func (r *keyRing) verificationKeys(ctx context.Context, kid string) (jwk.Set, error) {
	keys, err := r.published(ctx)
	if err != nil {
		return nil, err
	}
	if !hasKey(keys, kid) {
		r.mu.Lock()
		reload := r.now().Sub(r.missReload) >= keyMissReloadGap
		if reload {
			r.missReload = r.now()
		}
		r.mu.Unlock()
		if reload {
			if err := r.load(ctx); err != nil {
				return nil, err
			}
			if keys, err = r.published(ctx); err != nil {
				return nil, err
			}
		}
	}
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k.public); err != nil {
			return nil, nexus.Internal(err)
		}
	}
	return set, nil
}

// verifies reports whether the key kid is published now: a token it signed, verified before, is still good.
func (r *keyRing) verifies(ctx context.Context, kid string) (bool, error) {
	keys, err := r.snapshot(ctx)
	if err != nil {
		return false, err
	}
	now := r.now()
	for i := range keys {
		if keys[i].ID == kid {
			return !r.retired(keys, i, now), nil
		}
	}
	return false, nil
}

func hasKey(keys []loadedKey, kid string) bool {
	for _, k := range keys {
		if k.ID == kid {
			return true
		}
	}
	return false
}

// ensure creates a first signing key, active at once, when the database has none, and seals every key that only
// the previous secret key opens under the current one. It returns how many keys it sealed again.
func (r *keyRing) ensure(ctx context.Context) (int, error) {
	if err := r.load(ctx); err != nil {
		return 0, err
	}
	r.mu.Lock()
	keys := r.keys
	r.mu.Unlock()
	if len(keys) == 0 {
		if _, err := r.add(ctx, 0); err != nil {
			return 0, err
		}
		return 0, r.load(ctx)
	}
	resealed := 0
	for _, k := range keys {
		if !k.previous {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.signer)
		if err != nil {
			return resealed, nexus.Internal(err)
		}
		sealed, err := r.sec.sealBytes(der, k.ID)
		if err != nil {
			return resealed, nexus.Internal(err)
		}
		// Conditional on the sealed bytes read: of several nodes starting at once, one replaces them, and the
		// others' attempts change nothing (every node then reads a key the current secret opens).
		ok, err := r.store.ResealSigningKey(ctx, k.ID, k.Sealed, sealed)
		if err != nil {
			return resealed, fmt.Errorf("seal signing key %s again: %w", k.ID, err)
		}
		if ok {
			resealed++
		}
	}
	if resealed == 0 {
		return 0, nil
	}
	return resealed, r.load(ctx)
}

// add generates a key that is published now and signs after delay.
func (r *keyRing) add(ctx context.Context, delay time.Duration) (SigningKey, error) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return SigningKey{}, nexus.Internal(err)
	}
	return r.storeKey(ctx, ec, r.now().Add(delay))
}

// storeKey seals ec and stores it as a key that is published now and signs from activeFrom.
func (r *keyRing) storeKey(ctx context.Context, ec *ecdsa.PrivateKey, activeFrom time.Time) (SigningKey, error) {
	if ec.Curve != elliptic.P256() {
		return SigningKey{}, nexus.Invalid(nexus.BodyField("", "the signing key must be an ECDSA P-256 key"))
	}
	now := r.now()
	suffix := make([]byte, 6)
	if _, err := rand.Read(suffix); err != nil {
		return SigningKey{}, nexus.Internal(err)
	}
	kid := now.Format("20060102") + "-" + base64.RawURLEncoding.EncodeToString(suffix)
	_, pub, err := jwkPair(ec, kid)
	if err != nil {
		return SigningKey{}, nexus.Internal(err)
	}
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		return SigningKey{}, nexus.Internal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		return SigningKey{}, nexus.Internal(err)
	}
	sealed, err := r.sec.sealBytes(der, kid)
	if err != nil {
		return SigningKey{}, nexus.Internal(err)
	}
	k := SigningKey{ID: kid, Algorithm: "ES256", PublicJWK: pubJSON, Sealed: sealed, CreatedAt: now, ActiveFrom: activeFrom}
	if err := r.store.AddSigningKey(ctx, k); err != nil {
		return SigningKey{}, fmt.Errorf("add signing key: %w", err)
	}
	return k, nil
}

func toPublicKey(k loadedKey) (PublicKey, error) {
	ec, ok := k.public.(jwk.ECDSAPublicKey)
	if !ok {
		return PublicKey{}, errors.New("not an EC key")
	}
	b64 := base64.RawURLEncoding
	return PublicKey{KeyID: k.ID, Algorithm: k.Algorithm, Curve: "P-256", X: b64.EncodeToString(ec.X()), Y: b64.EncodeToString(ec.Y())}, nil
}
