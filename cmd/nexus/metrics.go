package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/config"
)

// metricsListener is the second listener of `nexus serve`, at NEXUS_METRICS_ADDR: /metrics for Prometheus, and
// with NEXUS_PPROF=true the runtime profiles under /debug/pprof/. It is unauthenticated, like the metrics of most
// services: bind it to an address only the monitoring can reach. A nil *metricsListener (NEXUS_METRICS_ADDR
// empty) does nothing.
type metricsListener struct {
	ln    net.Listener
	pprof bool
	srv   *http.Server
	done  chan struct{}
}

// listenMetrics binds NEXUS_METRICS_ADDR, or returns nil when it is empty. serve binds it before touching the
// database, as it does the API's listener, so that a busy port changes nothing.
func listenMetrics(cfg config.Config) (*metricsListener, error) {
	if cfg.MetricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("NEXUS_METRICS_ADDR: %w", err)
	}
	return &metricsListener{ln: ln, pprof: cfg.Pprof}, nil
}

// metricsHandler routes the metrics listener: /metrics, and the profiles when pprof is set; anything else is 404.
func metricsHandler(metrics http.Handler, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, block, mutex, allocs
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// serve serves metrics on the listener until close, and says where on stdout.
func (m *metricsListener) serve(metrics http.Handler, log *slog.Logger, stdout io.Writer) {
	if m == nil {
		return
	}
	m.srv = &http.Server{
		Handler:           metricsHandler(metrics, m.pprof),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: a CPU profile or an execution trace answers after the seconds it was asked for.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		// A failing metrics listener is logged, and leaves the API serving.
		if err := m.srv.Serve(m.ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", slog.Any("error", err))
		}
	}()
	fmt.Fprintf(stdout, "nexus: metrics on http://%s/metrics\n", m.ln.Addr())
	log.Info("metrics listening", slog.String("addr", m.ln.Addr().String()), slog.Bool("pprof", m.pprof))
}

// close stops the listener: last, after the API's listener has drained, so that the shutdown stays observable.
// Scrapes in progress get a few seconds.
func (m *metricsListener) close() {
	if m == nil {
		return
	}
	if m.srv == nil {
		_ = m.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil {
		_ = m.srv.Close()
	}
	<-m.done
}
