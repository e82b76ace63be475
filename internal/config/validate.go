package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// Validate checks what one variable's syntax cannot: ranges, URL schemes, and the rules that tie variables
// together. Load calls it; every error names the variable at fault.
func (c Config) Validate() error {
	var errs []error
	for _, r := range []struct {
		name   string
		v      int
		lo, hi int
	}{
		{"NEXUS_EVENT_QUEUE", c.EventQueue, 1000, 10_000_000},
		{"NEXUS_EVENT_WRITERS", c.EventWriters, 0, 64},
		{"NEXUS_MAX_HEADER_BYTES", c.MaxHeaderBytes, 4 << 10, 1 << 20},
		{"NEXUS_DB_MAX_CONNS", c.DBMaxConns, 0, 1000},
		{"NEXUS_AUTH_CACHE_ENTRIES", c.AuthCacheEntries, 0, 10_000_000},
	} {
		if r.v < r.lo || r.v > r.hi {
			errs = append(errs, fmt.Errorf("%s: want an integer from %d to %d, got %d", r.name, r.lo, r.hi, r.v))
		}
	}
	for _, t := range []struct {
		name   string
		v      time.Duration
		lo, hi time.Duration
	}{
		{"NEXUS_READ_HEADER_TIMEOUT", c.ReadHeaderTimeout, 100 * time.Millisecond, time.Minute},
		{"NEXUS_READ_TIMEOUT", c.ReadTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"NEXUS_WRITE_TIMEOUT", c.WriteTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"NEXUS_IDLE_TIMEOUT", c.IdleTimeout, time.Second, time.Hour},
		{"NEXUS_REQUEST_TIMEOUT", c.RequestTimeout, 100 * time.Millisecond, 10 * time.Minute},
		{"NEXUS_SHUTDOWN_DELAY", c.ShutdownDelay, 0, 5 * time.Minute},
		{"NEXUS_REPLICA_MAX_LAG", c.ReplicaMaxLag, 100 * time.Millisecond, time.Hour},
	} {
		if t.v < t.lo || t.v > t.hi {
			errs = append(errs, fmt.Errorf("%s: want from %s to %s, got %s", t.name, t.lo, t.hi, t.v))
		}
	}
	if r := c.EventRetention.Duration(); r != 0 && r < 24*time.Hour {
		errs = append(errs, fmt.Errorf("NEXUS_EVENT_RETENTION: want at least 1d (24h), or unset to keep raw events forever, got %s", r))
	}
	if c.RequestTimeout >= c.WriteTimeout {
		errs = append(errs, fmt.Errorf("NEXUS_REQUEST_TIMEOUT: want less than NEXUS_WRITE_TIMEOUT (%s), so that a timed-out request still gets its answer", c.WriteTimeout))
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			errs = append(errs, errors.New("NEXUS_REDIS_URL: want a URL of the form redis://[:password@]host:6379/0 (rediss:// for TLS)"))
		}
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("NEXUS_LOG_FORMAT: want json or text, got %q", c.LogFormat))
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, errors.New("NEXUS_DATABASE_URL: want a URL of the form postgres://user:password@host:5432/dbname"))
		}
	}
	if c.DatabaseListenURL != "" {
		u, err := url.Parse(c.DatabaseListenURL)
		switch {
		case c.DatabaseURL == "":
			errs = append(errs, errors.New("NEXUS_DATABASE_LISTEN_URL: only with NEXUS_DATABASE_URL (PostgreSQL)"))
		case err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql"):
			errs = append(errs, errors.New("NEXUS_DATABASE_LISTEN_URL: want a URL of the form postgres://user:password@host:5432/dbname"))
		}
	}
	if c.DatabaseReplicaURL != "" {
		u, err := url.Parse(c.DatabaseReplicaURL)
		switch {
		case c.DatabaseURL == "":
			errs = append(errs, errors.New("NEXUS_DATABASE_REPLICA_URL: only with NEXUS_DATABASE_URL (a PostgreSQL primary); the embedded SQLite database has no replicas"))
		case err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql"):
			errs = append(errs, errors.New("NEXUS_DATABASE_REPLICA_URL: want a URL of the form postgres://user:password@replica-host:5432/dbname"))
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("NEXUS_HTTP_ADDR: want host:port such as 127.0.0.1:8080, got %q", c.HTTPAddr))
	}
	if c.MetricsAddr != "" {
		_, port, err := net.SplitHostPort(c.MetricsAddr)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("NEXUS_METRICS_ADDR: want host:port such as 127.0.0.1:9090, or empty for no metrics listener, got %q", c.MetricsAddr))
		case c.MetricsAddr == c.HTTPAddr && port != "0":
			errs = append(errs, errors.New("NEXUS_METRICS_ADDR: want another address than NEXUS_HTTP_ADDR"))
		}
	}
	if c.Pprof && c.MetricsAddr == "" {
		errs = append(errs, errors.New("NEXUS_PPROF: profiles are served on the metrics listener only; set NEXUS_METRICS_ADDR too"))
	}
	if u, err := url.Parse(c.Issuer); err != nil || u.Scheme == "" || u.Host == "" {
		errs = append(errs, fmt.Errorf("NEXUS_ISSUER: want an absolute URL, got %q", c.Issuer))
	}
	if c.AccessTokenTTL < time.Minute || c.AccessTokenTTL > 24*time.Hour {
		errs = append(errs, errors.New("NEXUS_ACCESS_TOKEN_TTL: want between 1m and 24h"))
	}
	if c.RefreshIdleTTL < time.Minute {
		errs = append(errs, errors.New("NEXUS_REFRESH_IDLE_TTL: want at least 1m"))
	}
	if c.RefreshAbsoluteTTL < c.RefreshIdleTTL {
		errs = append(errs, errors.New("NEXUS_REFRESH_ABSOLUTE_TTL: want at least NEXUS_REFRESH_IDLE_TTL"))
	}
	if c.RefreshGrace > MaxRefreshGrace {
		errs = append(errs, fmt.Errorf("NEXUS_REFRESH_GRACE: want at most %s", MaxRefreshGrace))
	}
	if c.EventLinger > 100*time.Millisecond {
		errs = append(errs, errors.New("NEXUS_EVENT_LINGER: want at most 100ms"))
	}
	if c.SecretKeyPrevious != nil && bytes.Equal(c.SecretKeyPrevious, c.SecretKey) {
		errs = append(errs, errors.New("NEXUS_SECRET_KEY_PREVIOUS: must differ from NEXUS_SECRET_KEY (it is the key before the rotation)"))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("NEXUS_TLS_CERT_FILE and NEXUS_TLS_KEY_FILE: set both or neither"))
	}
	return errors.Join(errs...)
}

// ValidateServe checks what `serve` needs beyond what every command needs: outside dev mode, a secret key and
// a TLS decision, so that plain HTTP is never served on a non-loopback address by accident; in dev mode, a
// loopback listen address.
func (c Config) ValidateServe() error {
	var errs []error
	loopback := isLoopbackAddr(c.HTTPAddr)
	if c.Dev {
		if !loopback {
			errs = append(errs, fmt.Errorf("NEXUS_HTTP_ADDR: serve --dev listens on loopback only (such as 127.0.0.1:8080), got %q", c.HTTPAddr))
		}
		if c.TLSCertFile != "" {
			errs = append(errs, errors.New("NEXUS_TLS_CERT_FILE: serve --dev serves plain HTTP; unset it or drop --dev"))
		}
		if c.MetricsAddr != "" && !isLoopbackAddr(c.MetricsAddr) {
			errs = append(errs, fmt.Errorf("NEXUS_METRICS_ADDR: serve --dev listens on loopback only (such as 127.0.0.1:9090), got %q", c.MetricsAddr))
		}
		return errors.Join(errs...)
	}
	if c.SecretKey == nil {
		errs = append(errs, errors.New("NEXUS_SECRET_KEY: required outside --dev (generate one with: openssl rand -base64 32)"))
	}
	if c.TLSCertFile == "" && !c.BehindTLSProxy {
		errs = append(errs, errors.New("NEXUS_TLS_CERT_FILE/NEXUS_TLS_KEY_FILE: required outside --dev, unless NEXUS_BEHIND_TLS_PROXY=true says a TLS-terminating proxy is in front"))
	}
	if c.TLSCertFile != "" && c.BehindTLSProxy {
		errs = append(errs, errors.New("NEXUS_BEHIND_TLS_PROXY: set it only when the server does not serve TLS itself"))
	}
	return errors.Join(errs...)
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
