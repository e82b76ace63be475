package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"time"
)

// sessionPool is a set of access tokens, one per connection of a load, of sessions the harness logged in.
type sessionPool struct {
	tokens []string
	at     time.Time
}

// sessionMaxAge is how long the harness reuses a session pool; access tokens live 15 minutes by default.
const sessionMaxAge = 10 * time.Minute

// tokens returns n access tokens of sessions of the given users (user i%len(users) for token i), logging them
// in the first time a pool of that name is asked for, or when it is older than sessionMaxAge. Each connection of
// a load sends its own session's token, as distinct clients would.
func (h *harness) tokens(ctx context.Context, name string, users []user, n int) ([]string, error) {
	h.mu.Lock()
	p := h.sessions[name]
	h.mu.Unlock()
	if p != nil && len(p.tokens) >= n && time.Since(p.at) < sessionMaxAge {
		return p.tokens[:n], nil
	}
	p = &sessionPool{tokens: make([]string, n), at: time.Now()}
	var wg sync.WaitGroup
	errs := make([]error, n)
	sem := make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c := newConn(h.srv.addr)
			defer c.close()
			p.tokens[i], _, errs[i] = login(c, users[i%len(users)].email)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.sessions[name] = p
	h.mu.Unlock()
	return p.tokens, nil
}

// tokenPair is the part of a TokenResponse the harness uses.
type tokenPair struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func loginBody(email string) []byte {
	b, _ := json.Marshal(map[string]string{"email": email, "password": password, "client_id": clientID})
	return b
}

func refreshBody(refreshToken string) []byte {
	b, _ := json.Marshal(map[string]string{"refresh_token": refreshToken, "client_id": clientID})
	return b
}

// login logs email in on c and returns the session's tokens.
func login(c *conn, email string) (access, refresh string, err error) {
	status, body, err := c.do(request{method: "POST", path: "/v2/auth/login", body: loginBody(email)})
	if err != nil {
		return "", "", fmt.Errorf("login %s: %w", email, err)
	}
	if status != http.StatusOK {
		return "", "", fmt.Errorf("login %s: %d %.300s", email, status, body)
	}
	var t tokenPair
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" || t.RefreshToken == "" {
		return "", "", fmt.Errorf("login %s: no tokens in %.300s", email, body)
	}
	return t.AccessToken, t.RefreshToken, nil
}
