// Package config turns NEXUS_* environment variables into a typed, validated Config. It is the only package that
// reads the environment.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is the effective configuration of every nexus command.
type Config struct {
	Dev bool // serve --dev: loopback-only plain HTTP, embedded database, generated secrets, demo data

	HTTPAddr       string         // NEXUS_HTTP_ADDR
	DataDir        string         // NEXUS_DATA_DIR
	DatabaseURL    string         // NEXUS_DATABASE_URL; empty selects the embedded SQLite database
	SecretKey      []byte         // NEXUS_SECRET_KEY, 32 bytes, base64; encrypts signing keys, keys refresh tokens
	Issuer         string         // NEXUS_ISSUER
	TLSCertFile    string         // NEXUS_TLS_CERT_FILE
	TLSKeyFile     string         // NEXUS_TLS_KEY_FILE
	BehindTLSProxy bool           // NEXUS_BEHIND_TLS_PROXY
	TrustedProxies []netip.Prefix // NEXUS_TRUSTED_PROXIES

	AccessTokenTTL     time.Duration // NEXUS_ACCESS_TOKEN_TTL
	RefreshIdleTTL     time.Duration // NEXUS_REFRESH_IDLE_TTL
	RefreshAbsoluteTTL time.Duration // NEXUS_REFRESH_ABSOLUTE_TTL
	RefreshGrace       time.Duration // NEXUS_REFRESH_GRACE
	KeyPublishDelay    time.Duration // NEXUS_KEY_PUBLISH_DELAY: how long a new signing key is published before it signs
	JWKSMaxAge         time.Duration // NEXUS_JWKS_MAX_AGE

	EventQueue   int           // NEXUS_EVENT_QUEUE: events waiting for the writer at most; past that, 503
	EventWriters int           // NEXUS_EVENT_WRITERS: group-commit transactions in flight; 0: 4 on PostgreSQL, 1 on SQLite
	EventLinger  time.Duration // NEXUS_EVENT_LINGER: how long a writer waits for more events to share a transaction

	// Edge protection: rate limits (each "N/window", or "off"), brute-force defence, Redis, CORS.
	RateLimitIP           Rate          // NEXUS_RATE_LIMIT_IP: requests to the API per client IP
	RateLimitAuthIP       Rate          // NEXUS_RATE_LIMIT_AUTH_IP: login and refresh requests per client IP
	RateLimitLoginAccount Rate          // NEXUS_RATE_LIMIT_LOGIN_ACCOUNT: login attempts per account (normalized email)
	RateLimitClient       Rate          // NEXUS_RATE_LIMIT_CLIENT: login and refresh requests per client_id
	RateLimitPrincipal    Rate          // NEXUS_RATE_LIMIT_PRINCIPAL: authenticated requests per user
	LoginFailures         Rate          // NEXUS_LOGIN_FAILURES: failed logins per account before the account is slowed
	RedisURL              string        // NEXUS_REDIS_URL: share the limits' state across instances; empty: in-process
	CORSOrigins           []string      // NEXUS_CORS_ORIGINS: origins allowed to call the API from a browser; empty: CORS off
	CORSMaxAge            time.Duration // NEXUS_CORS_MAX_AGE: how long a browser may cache a preflight answer

	// Faults and abuse: timeouts and sizes.
	ReadHeaderTimeout time.Duration // NEXUS_READ_HEADER_TIMEOUT: the request line and headers must arrive within this
	ReadTimeout       time.Duration // NEXUS_READ_TIMEOUT: the whole request, body included
	WriteTimeout      time.Duration // NEXUS_WRITE_TIMEOUT: from the end of the request headers to the end of the response
	IdleTimeout       time.Duration // NEXUS_IDLE_TIMEOUT: an idle keep-alive connection is closed after this
	RequestTimeout    time.Duration // NEXUS_REQUEST_TIMEOUT: a handler's deadline, database work included; past it, 503
	MaxHeaderBytes    int           // NEXUS_MAX_HEADER_BYTES: request line and headers; past it, 431
	DBMaxConns        int           // NEXUS_DB_MAX_CONNS: open database connections at most; 0: 25 on PostgreSQL, 8 on SQLite
	DatabaseListenURL string        // NEXUS_DATABASE_LISTEN_URL: PostgreSQL URL for the revocation listener; empty: NEXUS_DATABASE_URL
	AuthCacheEntries  int           // NEXUS_AUTH_CACHE_ENTRIES: verified tokens, and sessions, kept in memory at most (each); 0: no cache

	ShutdownDelay   time.Duration // NEXUS_SHUTDOWN_DELAY: after SIGTERM, /readyz fails this long before the listener closes
	ShutdownTimeout time.Duration // NEXUS_SHUTDOWN_TIMEOUT
	LogLevel        slog.Level    // NEXUS_LOG_LEVEL
	LogFormat       string        // NEXUS_LOG_FORMAT: json or text
}

// Defaults.
const (
	DefaultHTTPAddr    = "127.0.0.1:8080"
	DefaultDataDir     = "data"
	DefaultIssuer      = "https://api.nexus-cloud.com"
	MaxRefreshGrace    = 60 * time.Second
	secretKeyBytes     = 32
	defaultAccessTTL   = 15 * time.Minute
	defaultIdleTTL     = 30 * 24 * time.Hour
	defaultAbsoluteTTL = 90 * 24 * time.Hour
)

// Load reads the configuration from getenv. dev selects the development defaults of `serve --dev`.
// Every error names the variable at fault.
func Load(getenv func(string) string, dev bool) (Config, error) {
	c := Config{
		Dev:                dev,
		HTTPAddr:           DefaultHTTPAddr,
		DataDir:            DefaultDataDir,
		Issuer:             DefaultIssuer,
		AccessTokenTTL:     defaultAccessTTL,
		RefreshIdleTTL:     defaultIdleTTL,
		RefreshAbsoluteTTL: defaultAbsoluteTTL,
		RefreshGrace:       10 * time.Second,
		KeyPublishDelay:    10 * time.Minute,
		JWKSMaxAge:         5 * time.Minute,
		ShutdownTimeout:    20 * time.Second,

		RateLimitIP:           Rate{Limit: 1200, Window: time.Minute},
		RateLimitAuthIP:       Rate{Limit: 60, Window: time.Minute},
		RateLimitLoginAccount: Rate{Limit: 20, Window: time.Minute},
		RateLimitClient:       Rate{Limit: 6000, Window: time.Minute},
		RateLimitPrincipal:    Rate{Limit: 6000, Window: time.Minute},
		LoginFailures:         Rate{Limit: 10, Window: 15 * time.Minute},
		CORSMaxAge:            10 * time.Minute,

		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		RequestTimeout:    10 * time.Second,
		MaxHeaderBytes:    32 << 10,
		EventQueue:        50_000,
		AuthCacheEntries:  50_000,
		EventLinger:       time.Millisecond,
		LogLevel:          slog.LevelInfo,
		LogFormat:         "json",
	}
	if dev {
		c.LogFormat = "text"
		c.KeyPublishDelay = 0
	}
	var errs []error
	str := func(name string, dst *string) {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			*dst = v
		}
	}
	dur := func(name string, dst *time.Duration) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s: want a non-negative duration such as 15m or 720h, got %q", name, v))
			return
		}
		*dst = d
	}
	boolean := func(name string, dst *bool) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: want true or false, got %q", name, v))
			return
		}
		*dst = b
	}

	str("NEXUS_HTTP_ADDR", &c.HTTPAddr)
	str("NEXUS_DATA_DIR", &c.DataDir)
	str("NEXUS_DATABASE_URL", &c.DatabaseURL)
	str("NEXUS_ISSUER", &c.Issuer)
	str("NEXUS_TLS_CERT_FILE", &c.TLSCertFile)
	str("NEXUS_TLS_KEY_FILE", &c.TLSKeyFile)
	str("NEXUS_LOG_FORMAT", &c.LogFormat)
	boolean("NEXUS_BEHIND_TLS_PROXY", &c.BehindTLSProxy)
	dur("NEXUS_ACCESS_TOKEN_TTL", &c.AccessTokenTTL)
	dur("NEXUS_REFRESH_IDLE_TTL", &c.RefreshIdleTTL)
	dur("NEXUS_REFRESH_ABSOLUTE_TTL", &c.RefreshAbsoluteTTL)
	dur("NEXUS_REFRESH_GRACE", &c.RefreshGrace)
	dur("NEXUS_KEY_PUBLISH_DELAY", &c.KeyPublishDelay)
	dur("NEXUS_JWKS_MAX_AGE", &c.JWKSMaxAge)
	dur("NEXUS_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	dur("NEXUS_EVENT_LINGER", &c.EventLinger)
	integer := func(name string, dst *int, lo, hi int) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs = append(errs, fmt.Errorf("%s: want an integer from %d to %d, got %q", name, lo, hi, v))
			return
		}
		*dst = n
	}
	integer("NEXUS_EVENT_QUEUE", &c.EventQueue, 1000, 10_000_000)
	integer("NEXUS_EVENT_WRITERS", &c.EventWriters, 0, 64)
	integer("NEXUS_MAX_HEADER_BYTES", &c.MaxHeaderBytes, 4<<10, 1<<20)
	integer("NEXUS_DB_MAX_CONNS", &c.DBMaxConns, 0, 1000)
	integer("NEXUS_AUTH_CACHE_ENTRIES", &c.AuthCacheEntries, 0, 10_000_000)
	str("NEXUS_DATABASE_LISTEN_URL", &c.DatabaseListenURL)
	dur("NEXUS_READ_HEADER_TIMEOUT", &c.ReadHeaderTimeout)
	dur("NEXUS_READ_TIMEOUT", &c.ReadTimeout)
	dur("NEXUS_WRITE_TIMEOUT", &c.WriteTimeout)
	dur("NEXUS_IDLE_TIMEOUT", &c.IdleTimeout)
	dur("NEXUS_REQUEST_TIMEOUT", &c.RequestTimeout)
	dur("NEXUS_SHUTDOWN_DELAY", &c.ShutdownDelay)
	dur("NEXUS_CORS_MAX_AGE", &c.CORSMaxAge)
	rate := func(name string, dst *Rate) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		r, err := ParseRate(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			return
		}
		*dst = r
	}
	rate("NEXUS_RATE_LIMIT_IP", &c.RateLimitIP)
	rate("NEXUS_RATE_LIMIT_AUTH_IP", &c.RateLimitAuthIP)
	rate("NEXUS_RATE_LIMIT_LOGIN_ACCOUNT", &c.RateLimitLoginAccount)
	rate("NEXUS_RATE_LIMIT_CLIENT", &c.RateLimitClient)
	rate("NEXUS_RATE_LIMIT_PRINCIPAL", &c.RateLimitPrincipal)
	rate("NEXUS_LOGIN_FAILURES", &c.LoginFailures)
	str("NEXUS_REDIS_URL", &c.RedisURL)
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			errs = append(errs, errors.New("NEXUS_REDIS_URL: want a URL of the form redis://[:password@]host:6379/0 (rediss:// for TLS)"))
		}
	}
	if v := strings.TrimSpace(getenv("NEXUS_CORS_ORIGINS")); v != "" {
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			if o == "*" {
				c.CORSOrigins = append(c.CORSOrigins, o)
				continue
			}
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				errs = append(errs, fmt.Errorf("NEXUS_CORS_ORIGINS: %q is not an origin such as https://app.example.com (or *)", o))
				continue
			}
			c.CORSOrigins = append(c.CORSOrigins, u.Scheme+"://"+strings.ToLower(u.Host))
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
	} {
		if t.v < t.lo || t.v > t.hi {
			errs = append(errs, fmt.Errorf("%s: want from %s to %s, got %s", t.name, t.lo, t.hi, t.v))
		}
	}
	if c.RequestTimeout >= c.WriteTimeout {
		errs = append(errs, fmt.Errorf("NEXUS_REQUEST_TIMEOUT: want less than NEXUS_WRITE_TIMEOUT (%s), so that a timed-out request still gets its answer", c.WriteTimeout))
	}

	if v := strings.TrimSpace(getenv("NEXUS_SECRET_KEY")); v != "" {
		key, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(key) != secretKeyBytes {
			errs = append(errs, fmt.Errorf("NEXUS_SECRET_KEY: want %d random bytes in standard base64 (openssl rand -base64 32)", secretKeyBytes))
		} else {
			c.SecretKey = key
		}
	}
	if v := strings.TrimSpace(getenv("NEXUS_LOG_LEVEL")); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			errs = append(errs, fmt.Errorf("NEXUS_LOG_LEVEL: want debug, info, warn or error, got %q", v))
		}
	}
	if v := strings.TrimSpace(getenv("NEXUS_TRUSTED_PROXIES")); v != "" {
		for _, s := range strings.Split(v, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				errs = append(errs, fmt.Errorf("NEXUS_TRUSTED_PROXIES: %q is not a CIDR prefix such as 10.0.0.0/8", strings.TrimSpace(s)))
				continue
			}
			c.TrustedProxies = append(c.TrustedProxies, p.Masked())
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
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("NEXUS_HTTP_ADDR: want host:port such as 127.0.0.1:8080, got %q", c.HTTPAddr))
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
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("NEXUS_TLS_CERT_FILE and NEXUS_TLS_KEY_FILE: set both or neither"))
	}
	return c, errors.Join(errs...)
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

// TLS reports whether the server terminates TLS itself.
func (c Config) TLS() bool { return c.TLSCertFile != "" }

// HTTPS reports whether clients reach the server over HTTPS (directly or through the trusted proxy).
func (c Config) HTTPS() bool { return c.TLS() || c.BehindTLSProxy }

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

// LogValue logs the effective configuration with secrets masked.
func (c Config) LogValue() slog.Value {
	proxies := make([]string, len(c.TrustedProxies))
	for i, p := range c.TrustedProxies {
		proxies[i] = p.String()
	}
	database := "sqlite (embedded, in " + c.DataDir + ")"
	if c.DatabaseURL != "" {
		database = MaskURL(c.DatabaseURL)
	}
	redis := "off (limits are kept in this process)"
	if c.RedisURL != "" {
		redis = MaskURL(c.RedisURL)
	}
	secret := "unset"
	if c.SecretKey != nil {
		secret = "set (masked)"
	}
	return slog.GroupValue(
		slog.Bool("dev", c.Dev),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("data_dir", c.DataDir),
		slog.String("database", database),
		slog.String("secret_key", secret),
		slog.String("issuer", c.Issuer),
		slog.Bool("tls", c.TLS()),
		slog.Bool("behind_tls_proxy", c.BehindTLSProxy),
		slog.String("trusted_proxies", strings.Join(proxies, ",")),
		slog.Duration("access_token_ttl", c.AccessTokenTTL),
		slog.Duration("refresh_idle_ttl", c.RefreshIdleTTL),
		slog.Duration("refresh_absolute_ttl", c.RefreshAbsoluteTTL),
		slog.Duration("refresh_grace", c.RefreshGrace),
		slog.Duration("key_publish_delay", c.KeyPublishDelay),
		slog.Duration("jwks_max_age", c.JWKSMaxAge),
		slog.Duration("shutdown_delay", c.ShutdownDelay),
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
		slog.String("rate_limit_ip", c.RateLimitIP.String()),
		slog.String("rate_limit_auth_ip", c.RateLimitAuthIP.String()),
		slog.String("rate_limit_login_account", c.RateLimitLoginAccount.String()),
		slog.String("rate_limit_client", c.RateLimitClient.String()),
		slog.String("rate_limit_principal", c.RateLimitPrincipal.String()),
		slog.String("login_failures", c.LoginFailures.String()),
		slog.String("redis", redis),
		slog.String("cors_origins", strings.Join(c.CORSOrigins, ",")),
		slog.Duration("read_header_timeout", c.ReadHeaderTimeout),
		slog.Duration("read_timeout", c.ReadTimeout),
		slog.Duration("write_timeout", c.WriteTimeout),
		slog.Duration("idle_timeout", c.IdleTimeout),
		slog.Duration("request_timeout", c.RequestTimeout),
		slog.Int("max_header_bytes", c.MaxHeaderBytes),
		slog.Int("db_max_conns", c.DBMaxConns),
		slog.Int("auth_cache_entries", c.AuthCacheEntries),
		slog.Int("event_queue", c.EventQueue),
		slog.Int("event_writers", c.EventWriters),
		slog.Duration("event_linger", c.EventLinger),
	)
}

// MaskURL returns a database URL with its password (and any password query parameter) replaced by "xxxxx".
func MaskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Rate is a rate limit: at most Limit requests in any Window, all of which may come at once. The zero Rate is off.
type Rate struct {
	Limit  int
	Window time.Duration
}

// Off reports whether the limit is disabled.
func (r Rate) Off() bool { return r.Limit == 0 }

// String returns the rate in the syntax ParseRate reads.
func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.Itoa(r.Limit) + "/" + shortDuration(r.Window)
}

// ParseRate reads "N/window" (such as 100/1m, 10/15m or 5000/1h), or "off".
func ParseRate(v string) (Rate, error) {
	if strings.EqualFold(v, "off") {
		return Rate{}, nil
	}
	n, w, ok := strings.Cut(v, "/")
	limit, err := strconv.Atoi(strings.TrimSpace(n))
	var window time.Duration
	if ok {
		window, err = time.ParseDuration(strings.TrimSpace(w))
	}
	if !ok || err != nil || limit < 1 || limit > 1_000_000 || window < time.Second || window > 24*time.Hour {
		return Rate{}, fmt.Errorf("want N/window such as 100/1m (N from 1 to 1000000, window from 1s to 24h) or off, got %q", v)
	}
	return Rate{Limit: limit, Window: window}, nil
}

// shortDuration prints 1m rather than 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
