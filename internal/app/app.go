// Package app wires one Nexus node from its configuration: the store-backed domain services, the event
// pipeline, the revocation feed, the rate limiter and the HTTP handler. cmd/nexus serves what New builds, and
// the HTTP tests build their nodes with it too, so that the two cannot drift apart.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/clients"
	"github.com/nexus-cloud/nexus-core/internal/config"
	"github.com/nexus-cloud/nexus-core/internal/httpapi"
	"github.com/nexus-cloud/nexus-core/internal/ratelimit"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

// Deps are what a node needs beyond its configuration. DB and Secret are required; the rest is for tests,
// and their zero values are what cmd/nexus runs with. The previous master secret, during a rotation, is the
// configuration's SecretKeyPrevious (NEXUS_SECRET_KEY_PREVIOUS).
type Deps struct {
	DB     *store.DB
	Secret []byte       // the master secret (NEXUS_SECRET_KEY or the development key); keys are derived from it
	Logger *slog.Logger // nil: the packages' own defaults (tests)
	Now    func() time.Time

	// Limiter replaces the limiter New builds from the configuration (in this process, or in Redis at
	// NEXUS_REDIS_URL); New does not close it. NoRateLimits runs the node without any limiter.
	Limiter      httpapi.RateLimiter
	NoRateLimits bool

	WrapEvents    func(analytics.Store) analytics.Store // wraps the events store the pipeline and the service use
	CommitTimeout time.Duration                         // an event transaction's deadline; 0: the writer's default
	ProcessorPoll time.Duration                         // how often the processor looks for work; 0: its default
	AdjustAuth    func(*auth.Options)                   // changes the auth service's options last

	// TracerProvider, when set, traces requests, the event writer's commits and the processor's batches (the
	// database's statements are traced by the store.DB opened with the same provider); nil: tracing off.
	TracerProvider trace.TracerProvider
}

// App is a wired node. Close it after its HTTP server has drained.
type App struct {
	Auth      *auth.Service
	Users     *users.Service
	Clients   *clients.Service
	Analytics *analytics.Service
	Pipeline  *analytics.Pipeline
	API       *httpapi.Server
	Handler   http.Handler

	closers []func() // in reverse order of Close
}

// New builds a node and starts its background work: the event pipeline and the revocation feed, which keeps
// the auth service's session cache current with every node's revocations (reading sessions from the database
// until it is). It does not create signing keys: the caller runs Auth.EnsureSigningKey.
func New(ctx context.Context, cfg config.Config, deps Deps) (a *App, err error) {
	if deps.DB == nil || deps.Secret == nil {
		return nil, errors.New("app: Deps.DB and Deps.Secret are required")
	}
	a = &App{}
	defer func() {
		if err != nil {
			a.Close()
			a = nil
		}
	}()
	db := deps.DB
	if cfg.DatabaseReplicaURL != "" {
		if err := db.OpenReplica(ctx, store.ReplicaOptions{URL: cfg.DatabaseReplicaURL, MaxLag: cfg.ReplicaMaxLag, Logger: deps.Logger}); err != nil {
			return a, fmt.Errorf("read replica: %w", err)
		}
		a.closers = append(a.closers, db.CloseReplica)
	}

	o := AuthOptions(cfg, db, deps.Secret, deps.Logger)
	o.Now = deps.Now
	if deps.AdjustAuth != nil {
		deps.AdjustAuth(&o)
	}
	if a.Auth, err = auth.NewService(o); err != nil {
		return a, err
	}
	feedCtx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		db.FollowRevocations(feedCtx, a.Auth, cfg.DatabaseListenURL, 0, deps.Logger)
	}()
	a.closers = append(a.closers, func() { stopFeed(); <-feedDone })

	if a.Users, err = UsersService(o.RefreshIdleTTL, db, deps.Now); err != nil {
		return a, err
	}
	if a.Clients, err = ClientsService(db, deps.Secret, cfg.SecretKeyPrevious, deps.Now, deps.Logger); err != nil {
		return a, err
	}

	writers := cfg.EventWriters
	if writers == 0 {
		writers = 1
		if db.Dialect() == store.Postgres {
			writers = 4
		}
	}
	var events analytics.Store = store.NewEvents(db)
	if deps.WrapEvents != nil {
		events = deps.WrapEvents(events)
	}
	a.Pipeline = analytics.NewPipeline(events, deps.Logger,
		analytics.WriterOptions{Workers: writers, Linger: cfg.EventLinger, QueueEvents: cfg.EventQueue, CommitTimeout: deps.CommitTimeout,
			TracerProvider: deps.TracerProvider},
		analytics.ProcessorOptions{Poll: deps.ProcessorPoll, Now: deps.Now, TracerProvider: deps.TracerProvider,
			Retention: cfg.EventRetention.Duration()})
	a.closers = append(a.closers, a.Pipeline.Close)
	if a.Analytics, err = analytics.NewService(analytics.Options{Store: events, Writer: a.Pipeline.Writer, Now: deps.Now}); err != nil {
		return a, err
	}

	limiter := deps.Limiter
	if limiter == nil && !deps.NoRateLimits {
		if deps.Logger != nil {
			ratelimit.SetRedisLogger(deps.Logger)
		}
		l, err := ratelimit.New(ratelimit.Options{RedisURL: cfg.RedisURL, Secret: DerivedKey(deps.Secret, "nexus rate-limit keys"), Logger: deps.Logger})
		if err != nil {
			return a, fmt.Errorf("rate limiter: %w", err)
		}
		a.closers = append(a.closers, func() { _ = l.Close() })
		limiter = l
	}

	a.API, a.Handler, err = httpapi.New(httpapi.Options{
		Auth: a.Auth, Users: a.Users, Clients: a.Clients, Analytics: a.Analytics, Pipeline: a.Pipeline, DBPool: db.Pool(), Ready: db.Ping,
		Replica: replicaStatus(db), ReplicaPool: db.ReplicaPool(), Logger: deps.Logger,
		TrustedProxies: cfg.TrustedProxies, HTTPS: cfg.HTTPS(), JWKSMaxAge: cfg.JWKSMaxAge,
		Limiter: limiter, Limits: Limits(cfg), CORSOrigins: cfg.CORSOrigins, CORSMaxAge: cfg.CORSMaxAge,
		MaxHeaderBytes: cfg.MaxHeaderBytes, RequestTimeout: cfg.RequestTimeout, TracerProvider: deps.TracerProvider,
	})
	return a, err
}

// Close stops the node's background work: the limiter it built, then the event pipeline (every event a
// request waits for is written first), then the revocation feed.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// replicaStatus returns the HTTP layer's view of db's read replica, or nil when it has none.
func replicaStatus(db *store.DB) func() httpapi.ReplicaStatus {
	if db.ReplicaPool() == nil {
		return nil
	}
	return func() httpapi.ReplicaStatus {
		st := db.ReplicaStatus()
		return httpapi.ReplicaStatus{Healthy: st.Healthy, Reason: st.Reason, Lag: st.Lag, Since: st.Since,
			ReplicaReads: st.ReplicaReads, PrimaryReads: st.PrimaryReads, Fallbacks: st.Fallbacks}
	}
}

// Limits turns the configured rates into the HTTP layer's quotas.
func Limits(c config.Config) httpapi.Limits {
	q := func(r config.Rate) ratelimit.Quota { return ratelimit.Quota{Limit: r.Limit, Window: r.Window} }
	return httpapi.Limits{IP: q(c.RateLimitIP), AuthIP: q(c.RateLimitAuthIP), Client: q(c.RateLimitClient),
		LoginAccount: q(c.RateLimitLoginAccount), LoginFailures: q(c.LoginFailures), Principal: q(c.RateLimitPrincipal)}
}

// DerivedKey derives a key for one purpose from the master secret, so that no two uses share a key.
func DerivedKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// AuthOptions are the auth service's options over db, from the configuration (the previous secret key included):
// what New builds the service with, and what the command line's key commands use.
func AuthOptions(cfg config.Config, db *store.DB, secret []byte, log *slog.Logger) auth.Options {
	return auth.Options{
		Store:              store.NewAuth(db),
		Secret:             secret,
		PreviousSecret:     cfg.SecretKeyPrevious,
		Issuer:             cfg.Issuer,
		AccessTTL:          cfg.AccessTokenTTL,
		RefreshIdleTTL:     cfg.RefreshIdleTTL,
		RefreshAbsoluteTTL: cfg.RefreshAbsoluteTTL,
		RefreshGrace:       cfg.RefreshGrace,
		KeyPublishDelay:    cfg.KeyPublishDelay,
		Logger:             log,
		CacheEntries:       cfg.AuthCacheEntries,
	}
}

// UsersService builds the users service over db: what New builds, and what the command line's admin commands
// (organizations, users) go through. now is nil for the wall clock.
func UsersService(refreshIdleTTL time.Duration, db *store.DB, now func() time.Time) (*users.Service, error) {
	return users.NewService(users.Options{Store: store.NewUsers(db), CheckPassword: auth.CheckNewPassword,
		HashPassword: auth.HashPassword, RefreshIdleTTL: refreshIdleTTL, Now: now})
}

// ClientsService builds the clients service over db, with the master secret and the previous one (nil when
// none is configured): what New builds, and what the command line's client commands go through. now is nil for
// the wall clock, log nil to discard.
func ClientsService(db *store.DB, secret, previous []byte, now func() time.Time, log *slog.Logger) (*clients.Service, error) {
	return clients.NewService(clients.Options{Store: store.NewClients(db), Secret: secret, PreviousSecret: previous, Now: now, Logger: log})
}
