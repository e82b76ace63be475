package auth

import (
	"sync"
	"time"
)

// Client cache limits. Clients are registered by operators (nexus client create), so an installation has a
// handful; the bound only keeps a misconfiguration from growing the cache without end. An entry costs about
// 200 bytes plus its strings.
const (
	defaultClientTTL = time.Second
	maxCachedClients = 1024
)

// clientCache keeps the registered clients that logins and refreshes name, each for ttl after it was read, so
// that neither costs a query for its client. Expiry is by the monotonic clock, not the service's (settable)
// one. Unknown client ids are never cached.
type clientCache struct {
	ttl time.Duration // <= 0: nothing is cached

	mu sync.Mutex
	m  map[string]cachedClient
}

type cachedClient struct {
	c       Client
	expires time.Time
}

func newClientCache(ttl time.Duration) clientCache {
	if ttl == 0 {
		ttl = defaultClientTTL
	}
	return clientCache{ttl: ttl, m: map[string]cachedClient{}}
}

// get returns the cached client registered as clientID, unless it has expired.
func (c *clientCache) get(clientID string) (Client, bool) {
	if c.ttl <= 0 {
		return Client{}, false
	}
	c.mu.Lock()
	e, ok := c.m[clientID]
	c.mu.Unlock()
	if !ok || !time.Now().Before(e.expires) {
		return Client{}, false
	}
	return e.c, true
}

// put caches client as read just now. A full cache drops its expired entries first, and caches nothing more
// while none has expired.
func (c *clientCache) put(clientID string, client Client) {
	if c.ttl <= 0 {
		return
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[clientID]; !ok && len(c.m) >= maxCachedClients {
		for id, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, id)
			}
		}
		if len(c.m) >= maxCachedClients {
			return
		}
	}
	c.m[clientID] = cachedClient{c: client, expires: now.Add(c.ttl)}
}
