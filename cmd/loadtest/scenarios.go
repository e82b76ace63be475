package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/nexus-cloud/nexus-core/internal/auth"
)

// harness drives one running server.
type harness struct {
	cfg  config
	diag io.Writer
	srv  *server
	hash string // the seeded users' password hash

	pprofDir string // where CPU profiles go; empty: none (also when the server exposes no pprof)

	mu       sync.Mutex
	sessions map[string]*sessionPool
}

// httpLoad is a load whose worker w sends the requests next(w) makes, one after another, on a connection of its
// own, and checks each 2xx response's body with check (nil: any 2xx is a success).
func (h *harness) httpLoad(name string, conns int, next func(w int) func() request, check func(body []byte) string) load {
	return load{name: name, conns: conns, perCall: 1, warmup: h.cfg.warmup, duration: h.cfg.duration, rss: h.srv.rss, cpu: h.srv.cpu,
		newJob: func(_ context.Context, w int) (job, func(), error) {
			c := newConn(h.srv.addr)
			gen := next(w)
			return func() outcome {
				status, body, err := c.do(gen())
				o := outcome{status: status, body: body, err: err}
				if !o.failed() && check != nil {
					o.bad = check(body)
				}
				return o
			}, c.close, nil
		}}
}

// measure runs l, with a CPU profile of the server over its measured window when profiles are asked for and
// the server offers them, and prints a progress line.
func (h *harness) measure(ctx context.Context, id string, l load) (result, error) {
	fmt.Fprintf(h.diag, "loadtest: %s %s: %d conns, %v + %v\n", id, l.name, l.conns, l.warmup, l.duration)
	var profiled sync.WaitGroup
	if h.pprofDir != "" {
		profiled.Go(func() { h.profile(ctx, id, l.warmup, l.duration) })
	}
	r, err := l.run(ctx, h.diag)
	profiled.Wait()
	if err != nil {
		return r, err
	}
	srvCores, genCores := r.cores()
	fmt.Fprintf(h.diag, "loadtest: %s: %.0f/s, p50 %v, p99 %v, %d failed of %d; cores: server %.2f, generator %.2f\n", id, r.rate(),
		r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.failures, r.calls, srvCores, genCores)
	return r, nil
}

// probePprof reports whether the server answers /debug/pprof/.
func (h *harness) probePprof() bool {
	res, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + h.srv.addr + "/debug/pprof/")
	if err != nil {
		return false
	}
	_ = res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// profile fetches the server's CPU profile over the measured window and writes it to the profile directory.
func (h *harness) profile(ctx context.Context, id string, warmup, duration time.Duration) {
	select {
	case <-time.After(warmup):
	case <-ctx.Done():
		return
	}
	secs := max(1, int(duration.Round(time.Second)/time.Second))
	client := &http.Client{Timeout: duration + time.Minute}
	res, err := client.Get("http://" + h.srv.addr + "/debug/pprof/profile?seconds=" + strconv.Itoa(secs))
	if err != nil {
		fmt.Fprintf(h.diag, "loadtest: %s: CPU profile: %v\n", id, err)
		return
	}
	defer res.Body.Close()
	path := filepath.Join(h.pprofDir, "cpu-"+id+".pprof")
	f, err := os.Create(path) // #nosec G304 -- LOADTEST_PPROF names the directory on purpose
	if err == nil {
		_, err = io.Copy(f, res.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil || res.StatusCode != http.StatusOK {
		fmt.Fprintf(h.diag, "loadtest: %s: CPU profile: %d %v\n", id, res.StatusCode, err)
		return
	}
	fmt.Fprintf(h.diag, "loadtest: %s: CPU profile in %s\n", id, path)
}

// The scenarios, each a load.

// healthz is the unauthenticated floor: GET /healthz.
func (h *harness) healthz() load {
	return h.httpLoad("GET /healthz", h.cfg.conns, func(int) func() request {
		return func() request { return request{method: "GET", path: "/healthz"} }
	}, nil)
}

// getUser reads the users of ids in turn (worker w starts at the w-th), with the sessions' tokens.
func (h *harness) getUser(tokens []string, ids []string) load {
	conns := len(tokens)
	return h.httpLoad("GET /v2/users/{id}", conns, func(w int) func() request {
		k := w
		return func() request {
			id := ids[k%len(ids)]
			k += conns
			return request{method: "GET", path: "/v2/users/" + id, token: tokens[w]}
		}
	}, nil)
}

// listUsers pages through path (a GET /v2/users URL), whose responses must carry the total.
func (h *harness) listUsers(name string, tokens []string, path string) load {
	return h.httpLoad(name, len(tokens), func(w int) func() request {
		return func() request { return request{method: "GET", path: path, token: tokens[w]} }
	}, hasTotal)
}

func hasTotal(body []byte) string {
	if !bytes.Contains(body, []byte(`"total":`)) {
		return "no pagination.total"
	}
	return ""
}

// listTotal returns pagination.total of one GET of path.
func (h *harness) listTotal(token, path string) (int, error) {
	c := newConn(h.srv.addr)
	defer c.close()
	status, body, err := c.do(request{method: "GET", path: path, token: token})
	if err != nil {
		return 0, err
	}
	var page struct {
		Pagination struct{ Total *int } `json:"pagination"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &page) != nil || page.Pagination.Total == nil {
		return 0, fmt.Errorf("GET %s: %d %.300s", path, status, body)
	}
	return *page.Pagination.Total, nil
}

// eventGen makes events: small page views with random (version 4) event ids, as clients make them, and
// timestamps within the last minute.
type eventGen struct {
	n    atomic.Int64
	base time.Time
}

func newEventGen() *eventGen {
	return &eventGen{base: time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)}
}

// eventProps are every event's properties, in the canonical form the server stores (sorted, compact).
const eventProps = `{"path":"/pricing","plan":"team","referrer":"https://www.example.com/blog/launch","seats":12,"trial":false}`

// appendEvent appends one event as JSON, and returns its timestamp.
func (g *eventGen) appendEvent(buf []byte) []byte {
	ts := g.base.Add(time.Duration(g.n.Add(1)%60_000) * time.Millisecond)
	buf = append(buf, `{"event_id":"`...)
	buf = append(buf, uuid.New().String()...)
	buf = append(buf, `","event_name":"page_view","event_category":"navigation","timestamp":"`...)
	buf = ts.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","source":"web","properties":`...)
	buf = append(buf, eventProps...)
	return append(buf, '}')
}

// row returns the row the server writes into events for one such event of user in org: the same columns,
// types and sizes, the fingerprint computed as the server computes it.
func (g *eventGen) row(org, user uuid.UUID, received time.Time) []any {
	ts := g.base.Add(time.Duration(g.n.Add(1)%60_000) * time.Millisecond)
	h := sha256.New()
	for _, part := range []string{"page_view", "navigation", ts.Format(time.RFC3339Nano), user.String(), "web"} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write([]byte(eventProps))
	// [16]byte, not uuid.UUID: pgx encodes it in binary directly.
	return []any{[16]byte(uuid.Must(uuid.NewV7())), [16]byte(org), [16]byte(uuid.New()), [16]byte(user), "page_view",
		"navigation", "web", eventProps, ts, received, hex.EncodeToString(h.Sum(nil))}
}

// copyColumns are the columns the server writes into events.
var copyColumns = []string{"id", "organization_id", "event_id", "user_id", "event_name", "event_category", "source",
	"properties", "occurred_at", "received_at", "fingerprint"}

// trackEvent posts one event per request, each with a unique event_id.
func (h *harness) trackEvent(tokens []string) load {
	gen := newEventGen()
	return h.httpLoad("POST /v2/analytics/events", len(tokens), func(w int) func() request {
		var buf []byte
		return func() request {
			buf = gen.appendEvent(buf[:0])
			return request{method: "POST", path: "/v2/analytics/events", token: tokens[w], body: buf}
		}
	}, func(body []byte) string {
		if !bytes.Contains(body, []byte(`"duplicate":false`)) {
			return "not stored as a new event"
		}
		return ""
	})
}

// trackBatch posts batches of n events with unique event_ids; every event must be accepted.
func (h *harness) trackBatch(tokens []string, n int) load {
	gen := newEventGen()
	l := h.httpLoad(fmt.Sprintf("POST /v2/analytics/events/batch (%d events)", n), len(tokens), func(w int) func() request {
		var buf []byte
		return func() request {
			buf = append(buf[:0], `{"events":[`...)
			for k := range n {
				if k > 0 {
					buf = append(buf, ',')
				}
				buf = gen.appendEvent(buf)
			}
			buf = append(buf, "]}"...)
			return request{method: "POST", path: "/v2/analytics/events/batch", token: tokens[w], body: buf}
		}
	}, func(body []byte) string {
		var r struct{ Accepted, Duplicates, Rejected int }
		if err := json.Unmarshal(body, &r); err != nil {
			return "unreadable: " + err.Error()
		}
		if r.Accepted != n {
			return fmt.Sprintf("%d of %d events accepted, %d rejected, %d duplicates", r.Accepted, n, r.Rejected, r.Duplicates)
		}
		return ""
	})
	l.perCall = n
	return l
}

// copyTable and copyKeysTable are the scratch tables of the raw COPY reference.
const (
	copyTable     = "loadtest_copy"
	copyKeysTable = "loadtest_copy_keys"
)

// copyKeyColumns are the columns the server writes into event_keys, in the order rawCopy fills them.
var copyKeyColumns = []string{"organization_id", "event_id", "id", "received_at", "occurred_at", "fingerprint"}

// rawCopy copies batches of n rows, the rows the server would write for the events trackBatch sends, with pgx
// CopyFrom in one transaction into two scratch tables, one shaped like events and one like event_keys (CREATE
// TABLE … (LIKE … INCLUDING ALL): the same columns, defaults, checks and indexes; events' partitions are by day,
// so one plain table with the partition's indexes is what a day's inserts meet), each worker on a connection of
// its own; worker w's rows are user users[w]'s events.
func (h *harness) rawCopy(dbURL string, conns, n int, org string, users []user) load {
	gen := newEventGen()
	orgID := uuid.MustParse(org)
	return load{name: fmt.Sprintf("raw pgx CopyFrom (%d rows)", n), conns: conns, perCall: n, warmup: h.cfg.warmup,
		duration: h.cfg.duration, rss: h.srv.rss, cpu: h.srv.cpu,
		newJob: func(ctx context.Context, w int) (job, func(), error) {
			userID := uuid.MustParse(users[w%len(users)].id)
			conn, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				return nil, nil, err
			}
			rows, keys := make([][]any, n), make([][]any, n)
			return func() outcome {
					received := time.Now().UTC().Truncate(time.Microsecond)
					for k := range rows {
						rows[k] = gen.row(orgID, userID, received)
					}
					for k, r := range rows {
						keys[k] = []any{r[1], r[2], r[0], r[9], r[8], r[10]}
					}
					if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
						if _, err := tx.CopyFrom(ctx, pgx.Identifier{copyTable}, copyColumns, pgx.CopyFromRows(rows)); err != nil {
							return err
						}
						_, err := tx.CopyFrom(ctx, pgx.Identifier{copyKeysTable}, copyKeyColumns, pgx.CopyFromRows(keys))
						return err
					}); err != nil {
						return outcome{err: err}
					}
					return outcome{status: http.StatusOK}
				}, func() {
					_ = conn.Close(context.WithoutCancel(ctx))
				}, nil
		}}
}

// refreshChains runs one refresh chain per connection: each logs a user in (users[w]), then refreshes with its
// latest refresh token in a loop. A chain whose refresh fails logs in again (inside the failed call's time).
func (h *harness) refreshChains(users []user, conns int) load {
	return load{name: "POST /v2/auth/refresh (session chains)", conns: conns, perCall: 1, warmup: h.cfg.warmup,
		duration: h.cfg.duration, rss: h.srv.rss, cpu: h.srv.cpu,
		newJob: func(_ context.Context, w int) (job, func(), error) {
			c := newConn(h.srv.addr)
			email := users[w%len(users)].email
			_, rt, err := login(c, email)
			if err != nil {
				c.close()
				return nil, nil, err
			}
			return func() outcome {
				status, body, err := c.do(request{method: "POST", path: "/v2/auth/refresh", body: refreshBody(rt)})
				o := outcome{status: status, body: body, err: err}
				if !o.failed() {
					var t tokenPair
					if json.Unmarshal(body, &t) != nil || t.RefreshToken == "" {
						o.bad = "no refresh token"
					}
					rt = t.RefreshToken
				}
				if o.failed() {
					o.body = bytes.Clone(o.body)
					if _, next, err := login(c, email); err == nil {
						rt = next
					}
				}
				return o
			}, c.close, nil
		}}
}

// logins logs the users in, in turn (worker w starts at the w-th).
func (h *harness) logins(users []user, conns int) load {
	return h.httpLoad("POST /v2/auth/login", conns, func(w int) func() request {
		k := w
		return func() request {
			u := users[k%len(users)]
			k += conns
			return request{method: "POST", path: "/v2/auth/login", body: loginBody(u.email)}
		}
	}, nil)
}

// hashRate verifies password against the seeded hash with internal/auth's VerifyPassword (the server's own
// code and parameters) on GOMAXPROCS goroutines: the machine's raw argon2id rate.
func (h *harness) hashRate() load {
	return load{name: "raw argon2id (auth.VerifyPassword)", conns: runtime.GOMAXPROCS(0), perCall: 1, warmup: h.cfg.warmup,
		duration: h.cfg.duration, rss: h.srv.rss, cpu: h.srv.cpu,
		newJob: func(context.Context, int) (job, func(), error) {
			return func() outcome {
				if !auth.VerifyPassword(h.hash, password) {
					return outcome{status: http.StatusOK, bad: "password does not match its hash"}
				}
				return outcome{status: http.StatusOK}
			}, nil, nil
		}}
}
