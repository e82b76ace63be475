//go:build linux

package cluster

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// revocationBound is README's promise: no node serves a revoked session later than 800 ms after the revocation
// committed.
const revocationBound = 800 * time.Millisecond

// revocationTrials is how many logouts phase e measures.
const revocationTrials = 6

// direct is a client of one node, bypassing HAProxy.
type direct struct {
	c *http.Client
}

func newDirect() *direct {
	return &direct{c: &http.Client{Timeout: 15 * time.Second}}
}

// do sends a request to base+path and returns the status and body (status 0 on a transport error).
func (d *direct) do(base, method, path, bearer string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := d.c.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// login logs email in on node n and returns the access token and the user's id.
func (d *direct) login(t *testing.T, n *node, email string) (token, userID string) {
	t.Helper()
	status, body := d.do(n.url(), "POST", "/v2/auth/login", "", map[string]string{"email": email, "password": password, "client_id": clientID})
	var tp tokenPair
	if status != http.StatusOK || json.Unmarshal(body, &tp) != nil || tp.AccessToken == "" {
		t.Fatalf("login %s on %s: %d %.300s", email, n.name, status, body)
	}
	return tp.AccessToken, tp.User.ID
}

// kid returns the key id in an access token's header.
func kid(t *testing.T, token string) string {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(b, &hdr) != nil || hdr.Kid == "" {
		t.Fatalf("no kid in the token's header %q", h)
	}
	return hdr.Kid
}

// crossVerify logs in on every node and uses each token on every node: every one must be accepted. It returns
// the tokens' key ids, by node.
func (c *cluster) crossVerify(t *testing.T, step string, extra ...string) []string {
	t.Helper()
	d := newDirect()
	defer d.c.CloseIdleConnections()
	var kids []string
	tokens := append([]string{}, extra...)
	var userID string
	for _, n := range c.nodes {
		tok, id := d.login(t, n, revokerEmail)
		tokens, kids, userID = append(tokens, tok), append(kids, kid(t, tok)), id
	}
	for i, tok := range tokens {
		for _, n := range c.nodes {
			if status, body := d.do(n.url(), "GET", "/v2/users/"+userID, tok, nil); status != http.StatusOK {
				t.Errorf("%s: token %d (kid %s) refused by %s: %d %.200s", step, i, kid(t, tok), n.name, status, body)
			}
		}
	}
	return kids
}

// rotateKey runs `nexus keys rotate` against the database, after checking that every node's tokens verify on
// every node, and returns the new key's id and when it starts signing. It also returns a token signed before.
func (c *cluster) rotateKey(t *testing.T) (newKid string, activeFrom time.Time, before string) {
	t.Helper()
	kids := c.crossVerify(t, "before the rotation")
	for _, k := range kids {
		if k != kids[0] {
			t.Fatalf("before the rotation, the nodes sign with different keys: %v", kids)
		}
	}
	d := newDirect()
	defer d.c.CloseIdleConnections()
	before, _ = d.login(t, c.nodes[0], revokerEmail)
	var k struct {
		ID         string    `json:"id"`
		ActiveFrom time.Time `json:"active_from"`
	}
	cli(t, c.bin, c.env, "", &k, "keys", "rotate")
	if k.ID == "" || k.ID == kids[0] {
		t.Fatalf("keys rotate: new key %q, old %q", k.ID, kids[0])
	}
	return k.ID, k.ActiveFrom, before
}

// checkRotation waits until the rotated key signs, then checks that every node signs with it, that its tokens
// verify on every node, and that a token signed by the previous key still does.
func (c *cluster) checkRotation(t *testing.T, newKid string, activeFrom time.Time, before string) {
	t.Helper()
	if wait := time.Until(activeFrom.Add(100 * time.Millisecond)); wait > 0 {
		if wait > keyPublishDelay+10*time.Second {
			t.Fatalf("the new key signs from %v, more than the publish delay (%v) away", activeFrom, keyPublishDelay)
		}
		time.Sleep(wait)
	}
	kids := c.crossVerify(t, "after the rotation", before)
	for i, k := range kids {
		if k != newKid {
			t.Errorf("after the rotation, %s signs with key %s, want the new key %s", c.nodes[i].name, k, newKid)
		}
	}
	c.rep.rotation = fmt.Sprintf("every node's tokens verify on every node before and after; after it every node signs with the new key (%d of %d)", count(kids, newKid), len(kids))
}

func count(s []string, v string) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// revocation logs out on one node and uses the session's access token on the two others (which have seen it
// before): each must refuse it within the revocation bound. It returns the worst lag.
func (c *cluster) revocation(t *testing.T) {
	t.Helper()
	d := newDirect()
	defer d.c.CloseIdleConnections()
	var worst time.Duration
	for trial := range revocationTrials {
		a := c.nodes[trial%nodeCount]
		tok, userID := d.login(t, a, revokerEmail)
		others := []*node{c.nodes[(trial+1)%nodeCount], c.nodes[(trial+2)%nodeCount]}
		for _, n := range append(others, a) {
			if status, body := d.do(n.url(), "GET", "/v2/users/"+userID, tok, nil); status != http.StatusOK {
				t.Fatalf("revocation: the fresh token is refused by %s: %d %.200s", n.name, status, body)
			}
		}
		if status, body := d.do(a.url(), "POST", "/v2/auth/logout", tok, nil); status != http.StatusNoContent {
			t.Fatalf("revocation: logout on %s: %d %.200s", a.name, status, body)
		}
		loggedOut := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, n := range others {
			wg.Go(func() {
				p := newDirect()
				defer p.c.CloseIdleConnections()
				for {
					sent := time.Now()
					status, body := p.do(n.url(), "GET", "/v2/users/"+userID, tok, nil)
					switch {
					case status == http.StatusUnauthorized:
						lag := time.Since(loggedOut)
						mu.Lock()
						worst = max(worst, lag)
						mu.Unlock()
						return
					case status == http.StatusOK && sent.Sub(loggedOut) > revocationBound:
						t.Errorf("revocation: %s accepted a token %v after its session was logged out on %s (bound %v)",
							n.name, sent.Sub(loggedOut).Round(time.Millisecond), a.name, revocationBound)
						return
					case status != http.StatusOK:
						t.Errorf("revocation: %s answered %d %.200s", n.name, status, body)
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
		wg.Wait()
	}
	c.rep.revocationWorst, c.rep.revocationTrials = worst, revocationTrials
}

// budget spends one account's login_failures budget (10 per 15 minutes, README "Brute force") with wrong
// passwords sent to all three nodes at once: Redis shares it, so exactly 10 are checked (401) and the rest are
// refused (429), where limits local to each node would let 10 through on each.
func (c *cluster) budget(t *testing.T) {
	t.Helper()
	const quota, perNode = 10, 6
	d := newDirect()
	defer d.c.CloseIdleConnections()
	got := map[int]int{}
	// Rounds of one attempt per node at once: the nodes spend the one budget concurrently, without a burst of
	// password checks starving the limiter's Redis round trips of CPU.
	for range perNode {
		statuses := make([]int, nodeCount)
		var wg sync.WaitGroup
		for i, n := range c.nodes {
			wg.Go(func() {
				statuses[i], _ = d.do(n.url(), "POST", "/v2/auth/login", "", map[string]string{"email": budgetEmail, "password": "not the password at all", "client_id": clientID})
			})
		}
		wg.Wait()
		for _, s := range statuses {
			got[s]++
		}
	}
	total := perNode * nodeCount
	c.rep.budget = fmt.Sprintf("login_failures (quota %d): %d wrong passwords, 3 at a time on the 3 nodes → %d × 401, %d × 429", quota, total, got[401], got[429])
	if got[http.StatusUnauthorized] != quota || got[http.StatusTooManyRequests] != total-quota {
		t.Errorf("one login_failures budget across the nodes: got %v, want %d × 401 and %d × 429", got, quota, total-quota)
	}
}
