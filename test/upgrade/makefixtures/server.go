package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	_ "github.com/glebarez/go-sqlite"
)

// server is the tag's `nexus serve --dev` (loopback, plain HTTP; the database has data, so nothing is seeded).
type server struct {
	cmd    *exec.Cmd
	url    string
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
	once   sync.Once
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

var listening = regexp.MustCompile(`listening on (http://\S+)`)

func serve(n nexus) (*server, error) {
	s := &server{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(n.bin, "serve", "--dev", "--addr", "127.0.0.1:0")
	s.cmd.Env = n.env
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.done <- s.cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := listening.FindStringSubmatch(s.stdout.String()); m != nil {
			s.url = m[1]
			if r, err := http.Get(s.url + "/healthz"); err == nil {
				_ = r.Body.Close()
				if r.StatusCode == http.StatusOK {
					return s, nil
				}
			}
		}
	}
	_ = s.stop()
	return nil, fmt.Errorf("the server did not start:\n%s\n%s", s.stdout, s.stderr)
}

func (s *server) stop() error {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			s.err = errors.New("did not stop within 30 s")
		}
	})
	return s.err
}

// call sends a request and decodes the JSON answer into out, failing on any status but want.
func (s *server) call(method, path, token string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.do(req, want, out)
}

func (s *server) do(req *http.Request, want int, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// use does through the API what an installation does: logins, users, events, a service client's token.
func (s *server) use(f *fixture, st *state) error {
	login := func() (access, refresh string, err error) {
		var tok struct {
			AccessToken  string `json:"access_token"`
			RefreshToken string `json:"refresh_token"`
		}
		err = s.call("POST", "/v2/auth/login", "", map[string]string{"email": f.AdminEmail, "password": f.AdminPassword,
			"client_id": f.LoginClientID}, http.StatusOK, &tok)
		return tok.AccessToken, tok.RefreshToken, err
	}
	access, refresh, err := login()
	if err != nil {
		return err
	}
	if err := s.call("POST", "/v2/auth/refresh", "", map[string]string{"refresh_token": refresh, "client_id": f.LoginClientID},
		http.StatusOK, nil); err != nil {
		return err
	}
	for _, u := range []user{{Email: "ada@upgrade.test", Role: "manager"}, {Email: "grace@upgrade.test", Role: "analyst"},
		{Email: "linus@upgrade.test", Role: "member"}} {
		var created user
		if err := s.call("POST", "/v2/users", access, map[string]string{"email": u.Email, "name": strings.Split(u.Email, "@")[0],
			"role": u.Role, "password": f.UserPassword}, http.StatusCreated, &created); err != nil {
			return err
		}
		st.Users = append(st.Users, created)
	}
	days := []string{"2026-11-20", "2026-11-21", "2026-11-22"}
	for i := range 9 {
		ev := map[string]any{"event_id": uuid(), "event_name": []string{"page_viewed", "signup_completed", "report_exported"}[i%3],
			"event_category": "upgrade", "timestamp": fmt.Sprintf("%sT%02d:15:00.123Z", days[i%3], 8+i),
			"source": "web", "properties": map[string]any{"n": i, "path": "/p/" + fmt.Sprint(i)}}
		if err := s.call("POST", "/v2/analytics/events", access, ev, http.StatusAccepted, nil); err != nil {
			return err
		}
		st.EventIDs = append(st.EventIDs, ev["event_id"].(string))
	}
	// The service client: a token by client credentials, and an event for another user.
	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest("POST", s.url+"/v2/auth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(st.ServiceClientID), url.QueryEscape(st.ServiceClientSecret))
	var svcTok struct {
		AccessToken string `json:"access_token"`
	}
	if err := s.do(req, http.StatusOK, &svcTok); err != nil {
		return err
	}
	ev := map[string]any{"event_id": uuid(), "event_name": "crm_synced", "event_category": "upgrade",
		"timestamp": "2026-11-22T23:59:59.999Z", "user_id": st.Users[1].ID}
	if err := s.call("POST", "/v2/analytics/events", svcTok.AccessToken, ev, http.StatusAccepted, nil); err != nil {
		return err
	}
	st.EventIDs = append(st.EventIDs, ev["event_id"].(string))
	slices.Sort(st.EventIDs)

	// The processor rolls the events up: wait for all of them and an empty backlog.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var sum struct {
			Total int `json:"total"`
		}
		if err := s.call("GET", "/v2/analytics/summary?"+f.SummaryQuery, access, nil, http.StatusOK, &sum); err != nil {
			return err
		}
		var ready struct {
			Events struct {
				Backlog int `json:"backlog"`
			} `json:"events"`
		}
		if err := s.call("GET", "/readyz", "", nil, http.StatusOK, &ready); err != nil {
			return err
		}
		if sum.Total == len(st.EventIDs) && ready.Events.Backlog == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the summary counts %d events, want %d", sum.Total, len(st.EventIDs))
		}
	}
	if err := s.call("GET", "/v2/analytics/summary?"+f.SummaryQuery, access, nil, http.StatusOK, &st.Summary); err != nil {
		return err
	}
	var jwks struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := s.call("GET", "/v2/.well-known/jwks.json", "", nil, http.StatusOK, &jwks); err != nil {
		return err
	}
	for _, k := range jwks.Keys {
		st.SigningKeyIDs = append(st.SigningKeyIDs, k.Kid)
	}
	// The refresh token the test presents: of a login of its own, rotated once (a session with a history), and
	// the successor never presented.
	if _, refresh, err = login(); err != nil {
		return err
	}
	var rotated struct {
		RefreshToken string `json:"refresh_token"`
	}
	err = s.call("POST", "/v2/auth/refresh", "", map[string]string{"refresh_token": refresh, "client_id": f.LoginClientID},
		http.StatusOK, &rotated)
	st.RefreshToken = rotated.RefreshToken
	return err
}
