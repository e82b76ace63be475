// Package config turns NEXUS_* environment variables into a typed, validated Config. It is the only package that
// reads the environment.
//
// Each variable is declared once, in a field's env tag with its default in envDefault
// (github.com/caarlos0/env/v11 reads them); the parsers of parse.go give the project's types (durations, rates,
// CIDR prefixes, origins, the secret key) their syntax, and Validate checks ranges and the rules that tie
// variables together.
package config

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Config is the effective configuration of every nexus command.
type Config struct {
	Dev bool `env:"-"` // serve --dev: loopback-only plain HTTP, embedded database, generated secrets, demo data

	HTTPAddr       string         `env:"NEXUS_HTTP_ADDR" envDefault:"127.0.0.1:8080"`
	DataDir        string         `env:"NEXUS_DATA_DIR" envDefault:"data"`
	DatabaseURL    string         `env:"NEXUS_DATABASE_URL"` // empty selects the embedded SQLite database
	SecretKey      []byte         `env:"NEXUS_SECRET_KEY"`   // 32 bytes, base64; encrypts signing keys, keys refresh tokens
	Issuer         string         `env:"NEXUS_ISSUER" envDefault:"https://api.nexus-cloud.com"`
	TLSCertFile    string         `env:"NEXUS_TLS_CERT_FILE"`
	TLSKeyFile     string         `env:"NEXUS_TLS_KEY_FILE"`
	BehindTLSProxy bool           `env:"NEXUS_BEHIND_TLS_PROXY"`
	TrustedProxies []netip.Prefix `env:"NEXUS_TRUSTED_PROXIES"` // comma-separated CIDR prefixes
	MetricsAddr    string         `env:"NEXUS_METRICS_ADDR"`    // a second listener for /metrics (Prometheus); empty: none
	Pprof          bool           `env:"NEXUS_PPROF"`           // serve /debug/pprof/ on the metrics listener too

	// SecretKeyPrevious is the secret key before a rotation: accepted beside SecretKey (never used to make
	// anything new) until nothing depends on it any more, as `nexus secret-key status` reports.
	SecretKeyPrevious []byte `env:"NEXUS_SECRET_KEY_PREVIOUS"`

	AccessTokenTTL     time.Duration `env:"NEXUS_ACCESS_TOKEN_TTL" envDefault:"15m"`
	RefreshIdleTTL     time.Duration `env:"NEXUS_REFRESH_IDLE_TTL" envDefault:"720h"`
	RefreshAbsoluteTTL time.Duration `env:"NEXUS_REFRESH_ABSOLUTE_TTL" envDefault:"2160h"`
	RefreshGrace       time.Duration `env:"NEXUS_REFRESH_GRACE" envDefault:"10s"`
	KeyPublishDelay    time.Duration `env:"NEXUS_KEY_PUBLISH_DELAY" envDefault:"10m"` // how long a new signing key is published before it signs (dev: 0)
	JWKSMaxAge         time.Duration `env:"NEXUS_JWKS_MAX_AGE" envDefault:"5m"`

	EventQueue   int           `env:"NEXUS_EVENT_QUEUE" envDefault:"50000"` // events waiting for the writer at most; past that, 503
	EventWriters int           `env:"NEXUS_EVENT_WRITERS"`                  // group-commit transactions in flight; 0: 4 on PostgreSQL, 1 on SQLite
	EventLinger  time.Duration `env:"NEXUS_EVENT_LINGER" envDefault:"1ms"`  // how long a writer waits for more events to share a transaction
	// EventRetention is how long raw events (and their event ids, for deduplication) are kept after they are
	// received; rollups are kept forever. 0 (unset): raw events are kept forever too.
	EventRetention Retention `env:"NEXUS_EVENT_RETENTION"`

	// Edge protection: rate limits (each "N/window", or "off"; see Rate for what a quota allows), brute-force
	// defence, Redis, CORS.
	RateLimitIP           Rate          `env:"NEXUS_RATE_LIMIT_IP" envDefault:"1200/1m"`          // requests to the API per client IP
	RateLimitAuthIP       Rate          `env:"NEXUS_RATE_LIMIT_AUTH_IP" envDefault:"60/1m"`       // login and refresh requests per client IP
	RateLimitLoginAccount Rate          `env:"NEXUS_RATE_LIMIT_LOGIN_ACCOUNT" envDefault:"20/1m"` // login attempts per account (normalized email)
	RateLimitClient       Rate          `env:"NEXUS_RATE_LIMIT_CLIENT" envDefault:"6000/1m"`      // login and refresh requests per client_id
	RateLimitPrincipal    Rate          `env:"NEXUS_RATE_LIMIT_PRINCIPAL" envDefault:"6000/1m"`   // authenticated requests per user
	LoginFailures         Rate          `env:"NEXUS_LOGIN_FAILURES" envDefault:"10/15m"`          // logins per account since its last success; past it, the account is slowed
	RedisURL              string        `env:"NEXUS_REDIS_URL"`                                   // share the limits' state across instances; empty: in-process
	CORSOrigins           []string      `env:"NEXUS_CORS_ORIGINS"`                                // origins allowed to call the API from a browser; empty: CORS off
	CORSMaxAge            time.Duration `env:"NEXUS_CORS_MAX_AGE" envDefault:"10m"`               // how long a browser may cache a preflight answer

	// Faults and abuse: timeouts and sizes.
	ReadHeaderTimeout time.Duration `env:"NEXUS_READ_HEADER_TIMEOUT" envDefault:"5s"`   // the request line and headers must arrive within this
	ReadTimeout       time.Duration `env:"NEXUS_READ_TIMEOUT" envDefault:"30s"`         // the whole request, body included
	WriteTimeout      time.Duration `env:"NEXUS_WRITE_TIMEOUT" envDefault:"30s"`        // from the end of the request headers to the end of the response
	IdleTimeout       time.Duration `env:"NEXUS_IDLE_TIMEOUT" envDefault:"120s"`        // an idle keep-alive connection is closed after this
	RequestTimeout    time.Duration `env:"NEXUS_REQUEST_TIMEOUT" envDefault:"10s"`      // a handler's deadline, database work included; past it, 503
	MaxHeaderBytes    int           `env:"NEXUS_MAX_HEADER_BYTES" envDefault:"32768"`   // request line and headers; past it, 431
	DBMaxConns        int           `env:"NEXUS_DB_MAX_CONNS"`                          // open database connections at most; 0: 25 on PostgreSQL, 8 on SQLite
	DatabaseListenURL string        `env:"NEXUS_DATABASE_LISTEN_URL"`                   // PostgreSQL URL for the revocation listener; empty: NEXUS_DATABASE_URL
	AuthCacheEntries  int           `env:"NEXUS_AUTH_CACHE_ENTRIES" envDefault:"50000"` // verified tokens, and sessions, kept in memory at most (each); 0: no cache

	// A read replica (PostgreSQL streaming replica) for the listings and the summary; empty: none. Reads go to
	// the primary while it is further behind than ReplicaMaxLag, unreachable, or not a standby.
	DatabaseReplicaURL string        `env:"NEXUS_DATABASE_REPLICA_URL"`
	ReplicaMaxLag      time.Duration `env:"NEXUS_REPLICA_MAX_LAG" envDefault:"5s"`

	ShutdownDelay   time.Duration `env:"NEXUS_SHUTDOWN_DELAY"` // after SIGTERM, /readyz fails this long before the listener closes
	ShutdownTimeout time.Duration `env:"NEXUS_SHUTDOWN_TIMEOUT" envDefault:"20s"`
	LogLevel        slog.Level    `env:"NEXUS_LOG_LEVEL" envDefault:"info"`
	LogFormat       string        `env:"NEXUS_LOG_FORMAT" envDefault:"json"` // json or text (dev: text)
}

// devDefaults are the defaults of `serve --dev` that differ from the others; a variable that is set wins.
var devDefaults = map[string]string{"NEXUS_LOG_FORMAT": "text", "NEXUS_KEY_PUBLISH_DELAY": "0s"}

// MaxRefreshGrace is the longest NEXUS_REFRESH_GRACE.
const MaxRefreshGrace = 60 * time.Second

// Load reads the configuration from getenv: values are trimmed, and a blank value is as good as unset. dev
// selects the development defaults of `serve --dev`. The error names every variable at fault, one per line.
func Load(getenv func(string) string, dev bool) (Config, error) {
	c := Config{Dev: dev}
	opts := env.Options{Environment: map[string]string{}, FuncMap: parsers}
	fields, err := env.GetFieldParamsWithOptions(&c, opts)
	if err != nil {
		return c, err // a mistake in the tags above
	}
	for _, f := range fields {
		if v := strings.TrimSpace(getenv(f.Key)); v != "" {
			opts.Environment[f.Key] = v
		} else if d, ok := devDefaults[f.Key]; ok && dev {
			opts.Environment[f.Key] = d
		}
	}
	var errs []error
	if err := env.ParseWithOptions(&c, opts); err != nil {
		var failed []string
		errs, failed = plainErrors(err, opts.Environment)
		// The variables at fault take their defaults, so that Validate judges only the others.
		for _, name := range failed {
			delete(opts.Environment, name)
		}
		c = Config{Dev: dev}
		if err := env.ParseWithOptions(&c, opts); err != nil {
			return c, errors.Join(append(errs, err)...)
		}
	}
	if dev && strings.TrimSpace(getenv("NEXUS_ISSUER")) == "" {
		c.Issuer = devIssuer(c.HTTPAddr)
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// devIssuer is the issuer of `serve --dev` when NEXUS_ISSUER is unset: the server's own loopback URL, so that
// the OAuth metadata document (whose endpoints are under the issuer) points at the development server.
func devIssuer(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://127.0.0.1:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// TLS reports whether the server terminates TLS itself.
func (c Config) TLS() bool { return c.TLSCertFile != "" }

// HTTPS reports whether clients reach the server over HTTPS (directly or through the trusted proxy).
func (c Config) HTTPS() bool { return c.TLS() || c.BehindTLSProxy }

// LogValue logs the effective configuration with secrets masked and durations in words ("15m0s").
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
	replica := "off (every read goes to the primary)"
	if c.DatabaseReplicaURL != "" {
		replica = MaskURL(c.DatabaseReplicaURL)
	}
	metrics := "off"
	if c.MetricsAddr != "" {
		metrics = c.MetricsAddr
	}
	secret := "unset"
	if c.SecretKey != nil {
		secret = "set (masked)"
	}
	previous := "unset"
	if c.SecretKeyPrevious != nil {
		previous = "set (masked)"
	}
	return slog.GroupValue(
		slog.Bool("dev", c.Dev),
		slog.String("http_addr", c.HTTPAddr),
		slog.String("data_dir", c.DataDir),
		slog.String("database", database),
		slog.String("database_replica", replica),
		duration("replica_max_lag", c.ReplicaMaxLag),
		slog.String("secret_key", secret),
		slog.String("secret_key_previous", previous),
		slog.String("issuer", c.Issuer),
		slog.Bool("tls", c.TLS()),
		slog.Bool("behind_tls_proxy", c.BehindTLSProxy),
		slog.String("trusted_proxies", strings.Join(proxies, ",")),
		slog.String("metrics_addr", metrics),
		slog.Bool("pprof", c.Pprof),
		duration("access_token_ttl", c.AccessTokenTTL),
		duration("refresh_idle_ttl", c.RefreshIdleTTL),
		duration("refresh_absolute_ttl", c.RefreshAbsoluteTTL),
		duration("refresh_grace", c.RefreshGrace),
		duration("key_publish_delay", c.KeyPublishDelay),
		duration("jwks_max_age", c.JWKSMaxAge),
		duration("shutdown_delay", c.ShutdownDelay),
		duration("shutdown_timeout", c.ShutdownTimeout),
		slog.String("rate_limit_ip", c.RateLimitIP.String()),
		slog.String("rate_limit_auth_ip", c.RateLimitAuthIP.String()),
		slog.String("rate_limit_login_account", c.RateLimitLoginAccount.String()),
		slog.String("rate_limit_client", c.RateLimitClient.String()),
		slog.String("rate_limit_principal", c.RateLimitPrincipal.String()),
		slog.String("login_failures", c.LoginFailures.String()),
		slog.String("redis", redis),
		slog.String("cors_origins", strings.Join(c.CORSOrigins, ",")),
		duration("read_header_timeout", c.ReadHeaderTimeout),
		duration("read_timeout", c.ReadTimeout),
		duration("write_timeout", c.WriteTimeout),
		duration("idle_timeout", c.IdleTimeout),
		duration("request_timeout", c.RequestTimeout),
		slog.Int("max_header_bytes", c.MaxHeaderBytes),
		slog.Int("db_max_conns", c.DBMaxConns),
		slog.Int("auth_cache_entries", c.AuthCacheEntries),
		slog.Int("event_queue", c.EventQueue),
		slog.Int("event_writers", c.EventWriters),
		duration("event_linger", c.EventLinger),
		slog.String("event_retention", c.EventRetention.String()),
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
