package httpapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/config"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/apitest"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/ratelimit"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/store/storetest"
)

// clock is a settable clock shared by every instance of one test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var testSecret = []byte("0123456789abcdef0123456789abcdef")

const (
	testIssuer    = "https://issuer.nexus.test"
	adminEmail    = "ada@example.com"
	adminPassword = "correct horse battery staple"
	webClient     = "nexus-web"
	orgAClient    = "org-a-portal"
	orgBClient    = "org-b-portal"
	offClient     = "retired-app"
)

// env is one server instance over a real database, with seeded organizations, users and clients.
type env struct {
	t       testing.TB
	db      *store.DB
	dir     *store.Directory
	audit   *store.Auth
	svc     *auth.Service
	h       http.Handler
	metrics http.Handler // /metrics, as cmd/nexus serves it on NEXUS_METRICS_ADDR
	clock   *clock
	signKey *ecdsa.PrivateKey // the private half of the first signing key
	kid     string
	orgA    store.Organization
	orgB    store.Organization
	admin   nexus.User // active admin of org A, password adminPassword
	idle    nexus.User // inactive member of org A, password adminPassword
	bob     nexus.User // active analyst of org B, password adminPassword
	pipe    *analytics.Pipeline
	queue   int // the event writer's queue size; 0 for the default
	// wrapEvents, when set, wraps the events store the pipeline and the analytics service use (to hold or fail
	// its calls in tests).
	wrapEvents func(analytics.Store) analytics.Store
	// limiter, limits and trusted configure rate limiting and the trusted proxies (off and none by default).
	limiter RateLimiter
	limits  Limits
	trusted []netip.Prefix
	cors    []string
	// requestTimeout is the handler's request deadline; 0 for the default.
	requestTimeout time.Duration
	// retention is NEXUS_EVENT_RETENTION; 0 keeps raw events forever.
	retention time.Duration
	// listenURL is where the revocation feed's listener connects; "" for the database's URL.
	listenURL string
	// logger and tracer are the node's logger (nil: none) and tracer provider (nil: tracing off).
	logger *slog.Logger
	tracer trace.TracerProvider
}

type option func(*auth.Options)

func newEnv(t testing.TB, db *store.DB, opts ...option) *env {
	t.Helper()
	return newEnvWith(t, db, nil, opts...)
}

// newEnvWith is newEnv with configure changing the env's settings before its node starts.
func newEnvWith(t testing.TB, db *store.DB, configure func(*env), opts ...option) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, db: db, dir: store.NewDirectory(db), audit: store.NewAuth(db),
		clock: &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}}
	if configure != nil {
		configure(e)
	}
	e.start(opts...)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	k, err := e.svc.ImportSigningKey(ctx, key, e.clock.Now().Add(-time.Hour))
	must(t, err)
	e.signKey, e.kid = key, k.ID
	must(t, e.svc.EnsureSigningKey(ctx))

	hash, err := auth.HashPassword(adminPassword)
	must(t, err)
	e.orgA, err = e.dir.CreateOrganization(ctx, "Org A")
	must(t, err)
	e.orgB, err = e.dir.CreateOrganization(ctx, "Org B")
	must(t, err)
	e.admin = e.user(e.orgA.ID, adminEmail, nexus.RoleAdmin, hash)
	e.idle = e.user(e.orgA.ID, "idle@example.com", nexus.RoleMember, hash)
	must(t, e.dir.SetUserStatus(ctx, e.idle.ID, nexus.UserInactive))
	e.bob = e.user(e.orgB.ID, "bob@example.org", nexus.RoleAnalyst, hash)
	for _, c := range []store.NewClient{
		{ClientID: webClient, Name: "Web"},
		{ClientID: orgAClient, Name: "A portal", OrganizationID: e.orgA.ID},
		{ClientID: orgBClient, Name: "B portal", OrganizationID: e.orgB.ID},
		{ClientID: offClient, Name: "Retired"},
	} {
		_, err := e.dir.CreateClient(ctx, c)
		must(t, err)
	}
	must(t, e.dir.SetClientDisabled(ctx, offClient, true))
	return e
}

func (e *env) user(org, email string, role nexus.Role, hash string) nexus.User {
	u, err := e.dir.CreateUser(context.Background(), nexus.User{OrganizationID: org, Email: email, Name: "User " + email,
		Role: role, Status: nexus.UserActive}, hash)
	must(e.t, err)
	return u
}

// start builds the node's services and handler with internal/app's New, the constructor cmd/nexus uses, from
// the configuration below (cmd/nexus's defaults, but for the test's settings) and the shared clock.
func (e *env) start(opts ...option) {
	rate := func(q ratelimit.Quota) config.Rate { return config.Rate{Limit: q.Limit, Window: q.Window} }
	cfg := config.Config{
		Issuer: testIssuer, AccessTokenTTL: 15 * time.Minute, RefreshIdleTTL: 30 * 24 * time.Hour,
		RefreshAbsoluteTTL: 90 * 24 * time.Hour, RefreshGrace: 10 * time.Second, KeyPublishDelay: 10 * time.Minute,
		AuthCacheEntries: 10_000, DatabaseListenURL: e.listenURL,
		EventWriters: 2, EventLinger: time.Millisecond, EventQueue: e.queue,
		JWKSMaxAge: 5 * time.Minute, TrustedProxies: e.trusted, CORSOrigins: e.cors, CORSMaxAge: 10 * time.Minute,
		RequestTimeout: e.requestTimeout, EventRetention: config.Retention(e.retention),
		RateLimitIP: rate(e.limits.IP), RateLimitAuthIP: rate(e.limits.AuthIP), RateLimitClient: rate(e.limits.Client),
		RateLimitLoginAccount: rate(e.limits.LoginAccount), LoginFailures: rate(e.limits.LoginFailures),
		RateLimitPrincipal: rate(e.limits.Principal),
	}
	n, err := NewNode(context.Background(), cfg, NodeDeps{
		DB: e.db, Secret: testSecret, Now: e.clock.Now, Limiter: e.limiter, NoRateLimits: e.limiter == nil,
		WrapEvents: e.wrapEvents, CommitTimeout: testCommitTimeout, ProcessorPoll: 50 * time.Millisecond,
		Logger: e.logger, TracerProvider: e.tracer,
		AdjustAuth: func(o *auth.Options) {
			for _, opt := range opts {
				opt(o)
			}
		},
	})
	must(e.t, err)
	e.t.Cleanup(n.Close)
	e.svc, e.h, e.pipe, e.metrics = n.Auth, n.Handler, n.Pipeline, n.Metrics
}

// NodeDeps is app.Deps field for field: app_test.go converts one into the other, so the compiler keeps the two
// alike.
type NodeDeps struct {
	DB            *store.DB
	Secret        []byte
	Logger        *slog.Logger
	Now           func() time.Time
	Limiter       RateLimiter
	NoRateLimits  bool
	WrapEvents    func(analytics.Store) analytics.Store
	CommitTimeout time.Duration
	ProcessorPoll time.Duration
	AdjustAuth    func(*auth.Options)

	TracerProvider trace.TracerProvider
}

// Node is what the tests use of a node that app.New built.
type Node struct {
	Auth     *auth.Service
	Pipeline *analytics.Pipeline
	Handler  http.Handler
	Metrics  http.Handler // the server's MetricsHandler
	Close    func()
}

// NewNode is app.New for this package's tests, which cannot import internal/app (it imports this package, and
// Go forbids the cycle): app_test.go, in package httpapi_test, sets it in TestMain.
var NewNode func(ctx context.Context, cfg config.Config, deps NodeDeps) (Node, error)

// instance returns a second server instance that shares the database and the clock, as a second node would.
func (e *env) instance(opts ...option) *env {
	n := *e
	n.start(opts...)
	must(e.t, n.svc.EnsureSigningKey(context.Background()))
	return &n
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// resp is a recorded response.
type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (r resp) str(t testing.TB, key string) string {
	t.Helper()
	s, _ := r.obj(t)[key].(string)
	return s
}

// do sends a request through the real handler and checks the response against openapi.yaml.
func (e *env) do(method, path string, body any, header ...string) resp {
	e.t.Helper()
	return send(e.t, e.h, method, path, body, header...)
}

func send(t testing.TB, h http.Handler, method, path string, body any, header ...string) resp {
	t.Helper()
	req, r := exchange(t, h, method, path, body, header...)
	checkResponse(t, req, r)
	return r
}

// exchange sends a request through h and records the response, without checking it.
func exchange(t testing.TB, h http.Handler, method, path string, body any, header ...string) (*http.Request, resp) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		must(t, err)
		rd = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return req, resp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// login logs in and returns the token response.
func (e *env) login(email, password, client string) resp {
	e.t.Helper()
	return e.do("POST", "/v2/auth/login", map[string]any{"email": email, "password": password, "client_id": client})
}

// tokens logs the admin in through client and returns the access and refresh tokens.
func (e *env) tokens(client string) (access, refresh string) {
	e.t.Helper()
	r := e.login(adminEmail, adminPassword, client)
	if r.status != http.StatusOK {
		e.t.Fatalf("login: %d %s", r.status, r.body)
	}
	return r.str(e.t, "access_token"), r.str(e.t, "refresh_token")
}

func (e *env) refresh(token, client string, extra ...string) resp {
	e.t.Helper()
	b := map[string]any{"refresh_token": token, "client_id": client}
	if len(extra) > 0 {
		b["device_id"] = extra[0]
	}
	return e.do("POST", "/v2/auth/refresh", b)
}

func (e *env) logout(access string) resp {
	e.t.Helper()
	return e.do("POST", "/v2/auth/logout", nil, "Authorization", "Bearer "+access)
}

// expectProblem fails unless r is a problem of the given status and code.
func expectProblem(t testing.TB, r resp, status int, code string) {
	t.Helper()
	if r.status != status || r.str(t, "code") != code {
		t.Fatalf("got %d %s, want %d %s", r.status, r.body, status, code)
	}
	if ct := r.header.Get("Content-Type"); ct != problemContentType {
		t.Fatalf("problem Content-Type = %q", ct)
	}
}

// withoutRequestID returns a problem body with request_id removed, for comparing bodies byte for byte.
func withoutRequestID(t testing.TB, r resp) string {
	t.Helper()
	id := r.str(t, "request_id")
	if id == "" || id != r.header.Get("X-Request-Id") {
		t.Fatalf("request_id %q does not match X-Request-Id %q", id, r.header.Get("X-Request-Id"))
	}
	return strings.Replace(string(r.body), id, "", 1)
}

// The contract, as tests read it: openapi.yaml with every response object schema closed, so that a field the
// spec does not document fails the test.
var (
	strictOnce sync.Once
	strictSpec *openapi3.T
	strictOps  map[string]*contract.Operation
	strictErr  error
)

func loadStrictSpec() { strictSpec, strictOps, strictErr = apitest.Spec() }

// checkResponse validates a response against openapi.yaml (apitest.Validate says what it checks).
func checkResponse(t testing.TB, req *http.Request, r resp) {
	t.Helper()
	apitest.Check(t, req, r.status, r.header, r.body)
}

// forEachDB runs fn on a fresh environment per database.
func forEachDB(t *testing.T, fn func(t *testing.T, e *env), opts ...option) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		fn(t, newEnv(t, db, opts...))
	})
}
