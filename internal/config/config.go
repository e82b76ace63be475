// Package config turns NEXUS_* environment variables into a typed, validated Config. It is the only package that
// reads the environment.
//
// Each variable is declared once, in a field's env tag with its default in envDefault
// (github.com/caarlos0/env/v11 reads them); the parsers below give the project's types (durations, rates,
// CIDR prefixes, origins, the secret key) their syntax, and Validate checks ranges and the rules that tie
// variables together.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
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

	AccessTokenTTL     time.Duration `env:"NEXUS_ACCESS_TOKEN_TTL" envDefault:"15m"`
	RefreshIdleTTL     time.Duration `env:"NEXUS_REFRESH_IDLE_TTL" envDefault:"720h"`
	RefreshAbsoluteTTL time.Duration `env:"NEXUS_REFRESH_ABSOLUTE_TTL" envDefault:"2160h"`
	RefreshGrace       time.Duration `env:"NEXUS_REFRESH_GRACE" envDefault:"10s"`
	KeyPublishDelay    time.Duration `env:"NEXUS_KEY_PUBLISH_DELAY" envDefault:"10m"` // how long a new signing key is published before it signs (dev: 0)
	JWKSMaxAge         time.Duration `env:"NEXUS_JWKS_MAX_AGE" envDefault:"5m"`

	EventQueue   int           `env:"NEXUS_EVENT_QUEUE" envDefault:"50000"` // events waiting for the writer at most; past that, 503
	EventWriters int           `env:"NEXUS_EVENT_WRITERS"`                  // group-commit transactions in flight; 0: 4 on PostgreSQL, 1 on SQLite
	EventLinger  time.Duration `env:"NEXUS_EVENT_LINGER" envDefault:"1ms"`  // how long a writer waits for more events to share a transaction

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

	ShutdownDelay   time.Duration `env:"NEXUS_SHUTDOWN_DELAY"` // after SIGTERM, /readyz fails this long before the listener closes
	ShutdownTimeout time.Duration `env:"NEXUS_SHUTDOWN_TIMEOUT" envDefault:"20s"`
	LogLevel        slog.Level    `env:"NEXUS_LOG_LEVEL" envDefault:"info"`
	LogFormat       string        `env:"NEXUS_LOG_FORMAT" envDefault:"json"` // json or text (dev: text)
}

// devDefaults are the defaults of `serve --dev` that differ from the others; a variable that is set wins.
var devDefaults = map[string]string{"NEXUS_LOG_FORMAT": "text", "NEXUS_KEY_PUBLISH_DELAY": "0s"}

// MaxRefreshGrace is the longest NEXUS_REFRESH_GRACE.
const MaxRefreshGrace = 60 * time.Second

const secretKeyBytes = 32

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
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// parsers give the project's types their syntax. Each error says what is wanted in plain words; plainErrors
// puts the variable's name in front. A value that may be secret is never repeated.
var parsers = map[reflect.Type]env.ParserFunc{
	reflect.TypeFor[bool](): func(v string) (any, error) {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("want true or false, got %q", v)
		}
		return b, nil
	},
	reflect.TypeFor[int](): func(v string) (any, error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("want an integer, got %q", v)
		}
		return n, nil
	},
	reflect.TypeFor[time.Duration](): func(v string) (any, error) {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("want a non-negative duration such as 15m or 720h, got %q", v)
		}
		return d, nil
	},
	reflect.TypeFor[Rate](): func(v string) (any, error) { return ParseRate(v) },
	reflect.TypeFor[[]byte](): func(v string) (any, error) { // the secret key
		key, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(key) != secretKeyBytes {
			return nil, fmt.Errorf("want %d random bytes in standard base64 (openssl rand -base64 32)", secretKeyBytes)
		}
		return key, nil
	},
	reflect.TypeFor[[]netip.Prefix](): func(v string) (any, error) {
		var out []netip.Prefix
		var bad []error
		for _, s := range strings.Split(v, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				bad = append(bad, fmt.Errorf("%q is not a CIDR prefix such as 10.0.0.0/8", strings.TrimSpace(s)))
				continue
			}
			out = append(out, p.Masked())
		}
		return out, errors.Join(bad...)
	},
	reflect.TypeFor[[]string](): func(v string) (any, error) { // CORS origins, normalized
		var out []string
		var bad []error
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			if o == "*" {
				out = append(out, o)
				continue
			}
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				bad = append(bad, fmt.Errorf("%q is not an origin such as https://app.example.com (or *)", o))
				continue
			}
			out = append(out, u.Scheme+"://"+strings.ToLower(u.Host))
		}
		return out, errors.Join(bad...)
	},
}

// textWants says what a type that parses itself (encoding.TextUnmarshaler, which the library prefers to the
// parsers above) wants, in place of the type's own error.
var textWants = map[reflect.Type]string{
	reflect.TypeFor[slog.Level](): "want debug, info, warn or error",
}

// plainErrors turns the library's errors into "VARIABLE: what is wanted" (one per bad item of a list) and
// returns the variables at fault.
func plainErrors(err error, environ map[string]string) (errs []error, failed []string) {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []error{err}, nil
	}
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			errs = append(errs, e)
			continue
		}
		f, _ := reflect.TypeFor[Config]().FieldByName(pe.Name)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		failed = append(failed, name)
		if want, ok := textWants[pe.Type]; ok {
			errs = append(errs, fmt.Errorf("%s: %s, got %q", name, want, environ[name]))
			continue
		}
		var multi interface{ Unwrap() []error }
		if errors.As(pe.Err, &multi) {
			for _, item := range multi.Unwrap() {
				errs = append(errs, fmt.Errorf("%s: %w", name, item))
			}
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %w", name, pe.Err))
	}
	return errs, failed
}

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
	} {
		if t.v < t.lo || t.v > t.hi {
			errs = append(errs, fmt.Errorf("%s: want from %s to %s, got %s", t.name, t.lo, t.hi, t.v))
		}
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

// Rate is a rate-limit quota, "N/window", which internal/ratelimit enforces with GCRA (see its Quota): Limit
// requests may come at once, and the budget comes back evenly at Limit per Window, one request every
// Window/Limit. A client that keeps sending is held to Limit requests per Window; one that was idle for a Window
// may send Limit at once, so one interval of a Window may see up to 2×Limit−1 requests (a full burst, then the
// refill). The zero Rate is off.
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
