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
		EventQueue:         50_000,
		EventLinger:        time.Millisecond,
		LogLevel:           slog.LevelInfo,
		LogFormat:          "json",
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
		slog.Duration("shutdown_timeout", c.ShutdownTimeout),
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
