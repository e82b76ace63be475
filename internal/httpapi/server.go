// Package httpapi is the HTTP face of the service: the strict handlers that implement the generated interface,
// the converters between generated and domain types, the server's wiring (Echo, the transport middleware, the
// contract's pipeline from package contract) and the one function that turns errors into problem+json.
package httpapi

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// AuthService is what the HTTP layer needs from the auth domain.
type AuthService interface {
	Login(ctx context.Context, in auth.LoginInput) (auth.Tokens, error)
	Refresh(ctx context.Context, in auth.RefreshInput) (auth.Tokens, error)
	Logout(ctx context.Context, p nexus.Principal, meta auth.Meta) error
	Authenticate(ctx context.Context, bearer string) (nexus.Principal, error)
	// Remembered returns the principal of a token verified before, unchecked: for the rate limits.
	Remembered(bearer string) (nexus.Principal, bool)
	PublicKeys(ctx context.Context) ([]auth.PublicKey, error)
	ClientToken(ctx context.Context, in auth.ClientTokenInput) (auth.ServiceToken, error)
	RevokeToken(ctx context.Context, clientID, token string, meta auth.Meta) error
	Introspect(ctx context.Context, orgID, token string) (auth.Introspection, error)
	Issuer() string
}

var _ AuthService = (*auth.Service)(nil)

// Options configures the handler.
type Options struct {
	Auth           AuthService
	Users          UsersService
	Clients        ClientsService
	Analytics      AnalyticsService
	Pipeline       PipelineStats                   // the event pipeline's state, for /readyz and the metrics; may be nil
	DBPool         *sql.DB                         // the database's connection pool, for its statistics in the metrics; may be nil
	Ready          func(ctx context.Context) error // nil error when the database answers
	Replica        func() ReplicaStatus            // the read replica's state, for /readyz and the metrics; nil: no replica
	ReplicaPool    *sql.DB                         // the read replica's pool, for its statistics in the metrics; may be nil
	Logger         *slog.Logger
	TrustedProxies []netip.Prefix // peers whose X-Forwarded-For and X-Forwarded-Proto are believed
	HTTPS          bool           // clients reach the server over HTTPS: send HSTS
	JWKSMaxAge     time.Duration
	Limiter        contract.RateLimiter // nil: no rate limits
	Limits         contract.Limits
	CORSOrigins    []string      // origins allowed to call the API from a browser; empty: CORS off; "*": any
	CORSMaxAge     time.Duration // how long a browser may cache a preflight answer
	MaxHeaderBytes int           // request line and headers; beyond it 431 (0: DefaultMaxHeaderBytes); see HeaderHardLimit
	RequestTimeout time.Duration // every request's deadline, database work included; past it, 503 (0: 10 s)
	// TracerProvider, when set, traces every request as a server span (see tracing); Propagator reads the
	// incoming trace context (nil: W3C traceparent and tracestate).
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// Server implements the generated strict server interface.
type Server struct {
	auth       AuthService
	users      UsersService
	clients    ClientsService
	analytics  AnalyticsService
	pipeline   PipelineStats
	ready      func(ctx context.Context) error
	replica    func() ReplicaStatus // nil: no read replica
	log        *slog.Logger
	https      bool
	jwksMaxAge time.Duration
	contract   *contract.Contract
	specJSON   gen.OpenAPIDocument
	docsHTML   []byte
	draining   atomic.Bool
	requests   *requestMetrics      // nil: no request metrics (a benchmark's server)
	registry   *prometheus.Registry // what MetricsHandler serves

	requestTimeout time.Duration // every request's deadline (see requestDeadline)
}

var _ gen.StrictServerInterface = (*Server)(nil)

// New builds the server and its Echo handler, the one used by production and tests alike.
func New(o Options) (*Server, *echo.Echo, error) {
	spec, err := contract.LoadSpec()
	if err != nil {
		return nil, nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{auth: o.Auth, users: o.Users, clients: o.Clients, analytics: o.Analytics, pipeline: o.Pipeline, ready: o.Ready, replica: o.Replica, log: log, https: o.HTTPS, jwksMaxAge: o.JWKSMaxAge}
	if withRequestMetrics {
		s.requests = newRequestMetrics()
	}
	if s.requestTimeout = o.RequestTimeout; s.requestTimeout <= 0 {
		s.requestTimeout = defaultRequestTimeout
	}
	s.contract, err = contract.New(spec, contract.Config{Auth: o.Auth, Limiter: o.Limiter, Limits: o.Limits, Base: BasePath,
		Rules: map[string]contract.Rule{"event": eventRule(o.Analytics)}})
	if err != nil {
		return nil, nil, err
	}
	if s.specJSON, err = specDocument(spec); err != nil {
		return nil, nil, err
	}
	if s.docsHTML, err = renderDocs(spec); err != nil {
		return nil, nil, err
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Binder = &contract.Binder{}
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor, e.SchemeExtractor = extractors(o.TrustedProxies)

	e.Pre(s.requestID)
	if o.TracerProvider != nil {
		prop := o.Propagator
		if prop == nil {
			prop = propagation.TraceContext{}
		}
		// Outermost after the routing: the span covers every answer, and the access log sees it.
		e.Use(s.tracing(o.TracerProvider, prop))
	}
	e.Use(s.measure) // outermost but the span: the request metrics see every answer and its whole duration
	// The request deadline bounds everything after it, the rate limiter's Redis calls and all database work
	// included. The header limit and the framing and path checks come after the access log and the security
	// headers, so that their 4xx answers are logged and carry them like any other answer.
	e.Use(s.accessLog, headAsGet, s.recoverPanics, s.requestDeadline, s.securityHeaders, headerLimit(o.MaxHeaderBytes), s.framing,
		canonicalPaths)
	if len(o.CORSOrigins) > 0 {
		e.Use(cors(o.CORSOrigins, o.CORSMaxAge))
	}
	e.Use(allowedMethods, s.requestMeta, s.contract.Middleware)
	routes := headRoutes{e}
	routes.GET("/healthz", s.healthz)
	routes.GET("/readyz", s.readyz)
	routes.GET("/docs", s.docs)
	routes.GET("/docs/style.css", s.docsStyle)
	routes.GET(BasePath+"/openapi.yaml", s.openAPIYAML)
	routes.GET("/.well-known/oauth-authorization-server", s.rootMetadata)
	gen.RegisterHandlersWithBaseURL(routes, gen.NewStrictHandler(s, nil), BasePath)
	s.initMetrics(e, o.DBPool, o.ReplicaPool)
	return s, e, nil
}

// BasePath is where the API is served; the spec's servers end in it.
const BasePath = "/v2"

// SetDraining makes /readyz fail, so that load balancers stop sending new requests before shutdown.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Draining reports whether SetDraining was called: the server is shutting down.
func (s *Server) Draining() bool { return s.draining.Load() }

// extractors returns Echo's client IP and scheme extractors: the socket peer and the connection itself, unless
// the peer is one of the trusted proxies, whose forwarding headers are then believed. Echo's defaults would
// believe any private or loopback peer.
func extractors(trusted []netip.Prefix) (echo.IPExtractor, echo.SchemeExtractor) {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect(), echo.ExtractSchemeDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		_, n, err := net.ParseCIDR(p.String())
		if err != nil {
			panic(fmt.Sprintf("trusted proxy %s: %v", p, err)) // unreachable: p is a valid prefix
		}
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...), echo.ExtractSchemeFromHeaders(opts...)
}
