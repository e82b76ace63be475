package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/config"
	"github.com/nexus-cloud/nexus-core/internal/httpapi"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/ratelimit"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.Bool("dev", false, "development mode: loopback-only plain HTTP, embedded database, demo data")
	addr := fs.String("addr", "", "listen address (overrides NEXUS_HTTP_ADDR)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	overrides := func(k string) string {
		if k == "NEXUS_HTTP_ADDR" && *addr != "" {
			return *addr
		}
		return getenv(k)
	}
	// Validate before touching the database, so a misconfigured server changes nothing.
	if e, err := setupConfigOnly(overrides, *dev); err != nil {
		return err
	} else if err := e.ValidateServe(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	e, err := setup(ctx, overrides, *dev, stderr)
	if err != nil {
		return err
	}
	defer e.db.Close()
	e.log.Info("configuration", slog.Any("config", e.cfg))
	// During the shutdown a second signal exits at once, also while the event pipeline drains: disarm, deferred
	// before pipeline.Close, runs after it.
	disarm := func() {}
	defer func() { disarm() }()

	secret, err := secretKey(e.cfg, e.cfg.Dev)
	if err != nil {
		return err
	}
	svc, err := e.authService(secret)
	if err != nil {
		return err
	}
	if err := svc.EnsureSigningKey(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	// Revocations by every node reach the session cache; until the feed is current, sessions are read from the
	// database.
	feedCtx, stopFeed := context.WithCancel(context.WithoutCancel(ctx))
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		e.db.FollowRevocations(feedCtx, svc, e.cfg.DatabaseListenURL, 0, e.log)
	}()
	defer func() { stopFeed(); <-feedDone }()
	if e.cfg.Dev {
		if err := seedDemo(ctx, store.NewDirectory(e.db), stdout); err != nil {
			return fmt.Errorf("seed demo data: %w", err)
		}
	}

	directory, err := e.usersService()
	if err != nil {
		return err
	}
	events, pipeline, err := e.analytics()
	if err != nil {
		return err
	}
	// Closed after the HTTP server has drained: every event a request is waiting for is written first.
	defer pipeline.Close()
	ratelimit.SetRedisLogger(e.log)
	limiter, err := ratelimit.New(ratelimit.Options{RedisURL: e.cfg.RedisURL, Secret: derivedKey(secret, "nexus rate-limit keys"), Logger: e.log})
	if err != nil {
		return fmt.Errorf("rate limiter: %w", err)
	}
	defer limiter.Close()
	api, handler, err := httpapi.New(httpapi.Options{
		Auth: svc, Users: directory, Analytics: events, Pipeline: pipeline, Ready: e.db.Ping, Logger: e.log, TrustedProxies: e.cfg.TrustedProxies,
		HTTPS: e.cfg.HTTPS(), JWKSMaxAge: e.cfg.JWKSMaxAge,
		Limiter: limiter, Limits: limits(e.cfg), CORSOrigins: e.cfg.CORSOrigins, CORSMaxAge: e.cfg.CORSMaxAge,
		MaxHeaderBytes: e.cfg.MaxHeaderBytes, RequestTimeout: e.cfg.RequestTimeout,
	})
	if err != nil {
		return err
	}
	// Until the listener closes, a response during the drain ends its connection, so that clients reconnect and
	// a load balancer sends them to another instance.
	var draining atomic.Bool
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if draining.Load() {
				w.Header().Set("Connection", "close")
			}
			handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: e.cfg.ReadHeaderTimeout,
		ReadTimeout:       e.cfg.ReadTimeout,
		WriteTimeout:      e.cfg.WriteTimeout,
		IdleTimeout:       e.cfg.IdleTimeout,
		// The middleware answers 431 problem+json past NEXUS_MAX_HEADER_BYTES; Go's own cap, well above it, only
		// stops grossly oversized headers (with a plain 431) before they are read into memory.
		MaxHeaderBytes: 2*e.cfg.MaxHeaderBytes + 4096,
		ErrorLog:       slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", e.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("NEXUS_HTTP_ADDR: %w", err)
	}
	scheme := "http"
	if e.cfg.TLS() {
		cert, err := tls.LoadX509KeyPair(e.cfg.TLSCertFile, e.cfg.TLSKeyFile)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("NEXUS_TLS_CERT_FILE/NEXUS_TLS_KEY_FILE: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	// Requests with both Transfer-Encoding and Content-Length are answered 400 and their connections closed.
	ln = httpapi.GuardFraming(srv, ln)
	fmt.Fprintf(stdout, "nexus: listening on %s://%s\n", scheme, ln.Addr())
	e.log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("scheme", scheme),
		slog.Duration("read_header_timeout", srv.ReadHeaderTimeout), slog.Duration("read_timeout", srv.ReadTimeout),
		slog.Duration("write_timeout", srv.WriteTimeout), slog.Duration("idle_timeout", srv.IdleTimeout),
		slog.Int("max_header_bytes", e.cfg.MaxHeaderBytes), slog.Int("max_header_bytes_hard", srv.MaxHeaderBytes),
		slog.Duration("shutdown_delay", e.cfg.ShutdownDelay), slog.Duration("shutdown_timeout", e.cfg.ShutdownTimeout))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	// The first SIGTERM or SIGINT: /readyz fails at once; the listener serves on for NEXUS_SHUTDOWN_DELAY, so that
	// load balancers notice, then closes, and in-flight requests get up to NEXUS_SHUTDOWN_TIMEOUT; the event
	// pipeline drains last (deferred above). A second signal exits at once.
	disarm = exitOnSecondSignal(e.log, os.Exit)
	api.SetDraining()
	draining.Store(true)
	e.log.Info("shutting down: /readyz fails; serving on until the delay is over, then draining in-flight requests",
		slog.Duration("shutdown_delay", e.cfg.ShutdownDelay), slog.Duration("shutdown_timeout", e.cfg.ShutdownTimeout))
	if e.cfg.ShutdownDelay > 0 {
		select {
		case <-time.After(e.cfg.ShutdownDelay):
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		}
	}
	e.log.Info("shutting down: the listener is closed; draining in-flight requests", slog.Duration("timeout", e.cfg.ShutdownTimeout))
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: requests still in flight after NEXUS_SHUTDOWN_TIMEOUT (%s) were cut off: %w", e.cfg.ShutdownTimeout, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	e.log.Info("stopped")
	return nil
}

// exitOnSecondSignal watches for a second SIGTERM or SIGINT during the shutdown (the first one cancelled the
// context) and then logs it and calls exit(1) without waiting for in-flight requests or the event pipeline. An
// event answered 202 is committed already, and the processor resumes its backlog on the next start, so nothing
// acknowledged is lost. The returned function stops the watch.
func exitOnSecondSignal(log *slog.Logger, exit func(int)) (disarm func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			log.Error("second signal during the shutdown: exiting now, cutting off in-flight requests", slog.String("signal", sig.String()))
			exit(1)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// derivedKey derives a key for one purpose from the master secret, so that no two uses share a key.
func derivedKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// limits turns the configured rates into the HTTP layer's quotas.
func limits(c config.Config) httpapi.Limits {
	q := func(r config.Rate) ratelimit.Quota { return ratelimit.Quota{Limit: r.Limit, Window: r.Window} }
	return httpapi.Limits{IP: q(c.RateLimitIP), AuthIP: q(c.RateLimitAuthIP), Client: q(c.RateLimitClient),
		LoginAccount: q(c.RateLimitLoginAccount), LoginFailures: q(c.LoginFailures), Principal: q(c.RateLimitPrincipal)}
}

// Demo data of `serve --dev`.
const (
	demoEmail    = "admin@example.com"
	demoClientID = "nexus-dev"
)

// seedDemo creates a demo organization, admin and client on the first start of an empty database, and prints
// the credentials once. The organization and the admin are created through users.Service as the system
// principal (validated and audited), in the one transaction of the seed.
func seedDemo(ctx context.Context, dir *store.Directory, stdout io.Writer) error {
	empty, err := dir.Empty(ctx)
	if err != nil || !empty {
		return err
	}
	password := randomPassword(20)
	err = dir.Seed(ctx, func(tx *store.Directory) error {
		svc, err := users.NewService(users.Options{Store: tx.Users(), CheckPassword: auth.CheckNewPassword, HashPassword: auth.HashPassword})
		if err != nil {
			return err
		}
		org, err := svc.CreateOrganization(ctx, nexus.SystemPrincipal(""), "Demo Organization")
		if err != nil {
			return err
		}
		if _, err := svc.Create(ctx, nexus.SystemPrincipal(org.ID), users.NewUser{Email: demoEmail, Name: "Demo Admin",
			Role: nexus.RoleAdmin, Status: nexus.UserActive, Password: password}); err != nil {
			return err
		}
		_, err = tx.CreateClient(ctx, store.NewClient{ClientID: demoClientID, Name: "Development client"})
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
nexus: seeded a demo organization. The password is shown only this once:

  email:     %s
  password:  %s
  client_id: %s

  export NEXUS_DEMO_PASSWORD='%s'

`, demoEmail, password, demoClientID, password)
	return nil
}

// randomPassword returns n characters that need no quoting in a shell or in JSON.
func randomPassword(n int) string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
