package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/app"
	"github.com/nexus-cloud/nexus-core/internal/auth"
	"github.com/nexus-cloud/nexus-core/internal/config"
	"github.com/nexus-cloud/nexus-core/internal/httpapi"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
	"github.com/nexus-cloud/nexus-core/internal/store"
	"github.com/nexus-cloud/nexus-core/internal/users"
)

func serve(ctx context.Context, cfg config.Config, getenv func(string) string, stdout, stderr io.Writer) error {
	// Validate before touching the database, so a misconfigured server changes nothing.
	if err := cfg.ValidateServe(); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	// Tracing (OTEL_*): off unless an OTLP endpoint is configured. Its spans are flushed last, after the HTTP
	// server has drained and the event pipeline has closed (deferred first, it runs last).
	tracing, err := startTracing(ctx, getenv)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	log := slog.New(slog.DiscardHandler) // until setup has made the logger
	defer func() { stopTracing(ctx, tracing, log) }()
	// Bind before touching the database too: on a busy port the server fails having changed nothing (no
	// migration, no development secret, no demo data, no password printed).
	ln, tlsConfig, err := listen(cfg)
	if err != nil {
		return err
	}
	defer ln.Close() // a no-op once the server has closed it
	metrics, err := listenMetrics(cfg)
	if err != nil {
		return err
	}
	defer metrics.close() // last: the shutdown stays observable
	e, err := setupTraced(ctx, cfg, stderr, tracing.Provider)
	if err != nil {
		return err
	}
	defer e.db.Close()
	log = e.log
	logTracingErrors(tracing, e.log)
	e.log.Info("configuration", slog.Any("config", e.cfg), slog.String("tracing", tracing.String()))
	// During the shutdown a second signal exits at once, also while the event pipeline drains: disarm, deferred
	// before the node's Close, runs after it.
	disarm := func() {}
	defer func() { disarm() }()

	secret, err := secretKey(e.cfg, e.cfg.Dev)
	if err != nil {
		return err
	}
	node, err := app.New(ctx, e.cfg, app.Deps{DB: e.db, Secret: secret, Logger: e.log, TracerProvider: tracing.Provider})
	if err != nil {
		return err
	}
	// Closed after the HTTP server has drained: every event a request is waiting for is written first.
	defer node.Close()
	if err := node.Auth.EnsureSigningKey(ctx); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	if e.cfg.Dev {
		if err := seedDemo(ctx, store.NewDirectory(e.db), stdout); err != nil {
			return fmt.Errorf("seed demo data: %w", err)
		}
	}
	metrics.serve(node.API.MetricsHandler(), e.log, stdout)
	srv := &http.Server{
		// Until the listener closes, a response during the drain ends its connection, so that clients reconnect
		// and a load balancer sends them to another instance.
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if node.API.Draining() {
				w.Header().Set("Connection", "close")
			}
			node.Handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: e.cfg.ReadHeaderTimeout,
		ReadTimeout:       e.cfg.ReadTimeout,
		WriteTimeout:      e.cfg.WriteTimeout,
		IdleTimeout:       e.cfg.IdleTimeout,
		// The middleware answers 431 problem+json past NEXUS_MAX_HEADER_BYTES; Go's own cap, well above it, only
		// stops grossly oversized headers (with a plain 431) before they are read into memory.
		MaxHeaderBytes: httpapi.HeaderHardLimit(e.cfg.MaxHeaderBytes),
		ErrorLog:       slog.NewLogLogger(e.log.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if tlsConfig != nil {
		srv.TLSConfig = tlsConfig
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
	node.API.SetDraining()
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

// listen binds NEXUS_HTTP_ADDR, with TLS when it is configured (tlsConfig is then that of the listener).
func listen(cfg config.Config) (ln net.Listener, tlsConfig *tls.Config, err error) {
	ln, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("NEXUS_HTTP_ADDR: %w", err)
	}
	if cfg.TLS() {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			_ = ln.Close()
			return nil, nil, fmt.Errorf("NEXUS_TLS_CERT_FILE/NEXUS_TLS_KEY_FILE: %w", err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, tlsConfig)
	}
	return ln, tlsConfig, nil
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
