package config_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nexus-cloud/nexus-core/internal/config"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(name string) string { return m[name] }
}

var equalPrefixes = cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

// secret is a valid NEXUS_SECRET_KEY and the bytes it encodes.
var (
	secretBytes = []byte("0123456789abcdef0123456789abcdef")
	secret      = base64.StdEncoding.EncodeToString(secretBytes)
)

func defaults(dev bool) config.Config {
	c := config.Config{
		Dev:                   dev,
		HTTPAddr:              "127.0.0.1:8080",
		DataDir:               "data",
		Issuer:                "https://api.nexus-cloud.com",
		AccessTokenTTL:        15 * time.Minute,
		RefreshIdleTTL:        30 * 24 * time.Hour,
		RefreshAbsoluteTTL:    90 * 24 * time.Hour,
		RefreshGrace:          10 * time.Second,
		KeyPublishDelay:       10 * time.Minute,
		JWKSMaxAge:            5 * time.Minute,
		ShutdownTimeout:       20 * time.Second,
		EventQueue:            50_000,
		EventLinger:           time.Millisecond,
		AuthCacheEntries:      50_000,
		ReplicaMaxLag:         5 * time.Second,
		RateLimitIP:           config.Rate{Limit: 1200, Window: time.Minute},
		RateLimitAuthIP:       config.Rate{Limit: 60, Window: time.Minute},
		RateLimitLoginAccount: config.Rate{Limit: 20, Window: time.Minute},
		RateLimitClient:       config.Rate{Limit: 6000, Window: time.Minute},
		RateLimitPrincipal:    config.Rate{Limit: 6000, Window: time.Minute},
		LoginFailures:         config.Rate{Limit: 10, Window: 15 * time.Minute},
		CORSMaxAge:            10 * time.Minute,
		ReadHeaderTimeout:     5 * time.Second,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           120 * time.Second,
		RequestTimeout:        10 * time.Second,
		MaxHeaderBytes:        32 << 10,
		LogLevel:              slog.LevelInfo,
		LogFormat:             "json",
	}
	if dev {
		c.Issuer = "http://127.0.0.1:8080" // the development server's own URL (NEXUS_ISSUER unset)
		c.LogFormat, c.KeyPublishDelay = "text", 0
	}
	return c
}

func TestLoad(t *testing.T) {
	every := map[string]string{
		"NEXUS_HTTP_ADDR":            " 0.0.0.0:9443 ",
		"NEXUS_DATA_DIR":             "/var/lib/nexus",
		"NEXUS_DATABASE_URL":         "postgres://nexus:pw@db.internal:5432/nexus?sslmode=require",
		"NEXUS_SECRET_KEY":           " " + secret + "\n",
		"NEXUS_ISSUER":               "https://auth.example.com",
		"NEXUS_TLS_CERT_FILE":        "/etc/nexus/tls.crt",
		"NEXUS_TLS_KEY_FILE":         "/etc/nexus/tls.key",
		"NEXUS_BEHIND_TLS_PROXY":     "false",
		"NEXUS_TRUSTED_PROXIES":      "10.0.0.0/8, 192.168.1.7/24,2001:db8::1/32",
		"NEXUS_ACCESS_TOKEN_TTL":     "5m",
		"NEXUS_REFRESH_IDLE_TTL":     "24h",
		"NEXUS_REFRESH_ABSOLUTE_TTL": "168h",
		"NEXUS_REFRESH_GRACE":        "60s",
		"NEXUS_KEY_PUBLISH_DELAY":    "1h30m",
		"NEXUS_JWKS_MAX_AGE":         "90s",
		"NEXUS_SHUTDOWN_TIMEOUT":     "3s",
		"NEXUS_LOG_LEVEL":            "DEBUG",
		"NEXUS_LOG_FORMAT":           "text",

		"NEXUS_RATE_LIMIT_IP":            "100/1s",
		"NEXUS_RATE_LIMIT_AUTH_IP":       " off ",
		"NEXUS_RATE_LIMIT_LOGIN_ACCOUNT": "5/30s",
		"NEXUS_RATE_LIMIT_CLIENT":        "OFF",
		"NEXUS_RATE_LIMIT_PRINCIPAL":     "100000/1h",
		"NEXUS_LOGIN_FAILURES":           "3/1h",
		"NEXUS_REDIS_URL":                "redis://:pw@cache.internal:6379/2",
		"NEXUS_CORS_ORIGINS":             "https://App.Example.com, http://localhost:3000/",
		"NEXUS_CORS_MAX_AGE":             "1h",
		"NEXUS_READ_HEADER_TIMEOUT":      "2s",
		"NEXUS_READ_TIMEOUT":             "10s",
		"NEXUS_WRITE_TIMEOUT":            "15s",
		"NEXUS_IDLE_TIMEOUT":             "1m",
		"NEXUS_REQUEST_TIMEOUT":          "5s",
		"NEXUS_MAX_HEADER_BYTES":         "16384",
		"NEXUS_DB_MAX_CONNS":             "50",
		"NEXUS_SHUTDOWN_DELAY":           "5s",
		"NEXUS_METRICS_ADDR":             "10.1.2.3:9090",
		"NEXUS_PPROF":                    "true",
		"NEXUS_DATABASE_REPLICA_URL":     "postgres://nexus:pw@replica.internal:5432/nexus",
		"NEXUS_REPLICA_MAX_LAG":          "750ms",
	}
	everyWant := config.Config{
		HTTPAddr:           "0.0.0.0:9443",
		DataDir:            "/var/lib/nexus",
		DatabaseURL:        "postgres://nexus:pw@db.internal:5432/nexus?sslmode=require",
		SecretKey:          secretBytes,
		Issuer:             "https://auth.example.com",
		TLSCertFile:        "/etc/nexus/tls.crt",
		TLSKeyFile:         "/etc/nexus/tls.key",
		TrustedProxies:     []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.0/24"), netip.MustParsePrefix("2001:db8::/32")},
		MetricsAddr:        "10.1.2.3:9090",
		Pprof:              true,
		AccessTokenTTL:     5 * time.Minute,
		RefreshIdleTTL:     24 * time.Hour,
		RefreshAbsoluteTTL: 7 * 24 * time.Hour,
		RefreshGrace:       time.Minute,
		KeyPublishDelay:    90 * time.Minute,
		JWKSMaxAge:         90 * time.Second,
		ShutdownTimeout:    3 * time.Second,
		ShutdownDelay:      5 * time.Second,
		EventQueue:         50_000,
		EventLinger:        time.Millisecond,
		AuthCacheEntries:   50_000,
		DatabaseReplicaURL: "postgres://nexus:pw@replica.internal:5432/nexus",
		ReplicaMaxLag:      750 * time.Millisecond,

		RateLimitIP:           config.Rate{Limit: 100, Window: time.Second},
		RateLimitLoginAccount: config.Rate{Limit: 5, Window: 30 * time.Second},
		RateLimitPrincipal:    config.Rate{Limit: 100000, Window: time.Hour},
		LoginFailures:         config.Rate{Limit: 3, Window: time.Hour},
		RedisURL:              "redis://:pw@cache.internal:6379/2",
		CORSOrigins:           []string{"https://app.example.com", "http://localhost:3000"},
		CORSMaxAge:            time.Hour,
		ReadHeaderTimeout:     2 * time.Second,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          15 * time.Second,
		IdleTimeout:           time.Minute,
		RequestTimeout:        5 * time.Second,
		MaxHeaderBytes:        16384,
		DBMaxConns:            50,
		LogLevel:              slog.LevelDebug,
		LogFormat:             "text",
	}
	with := func(dev bool, f func(*config.Config)) config.Config {
		c := defaults(dev)
		f(&c)
		return c
	}
	tests := []struct {
		name string
		env  map[string]string
		dev  bool
		want config.Config
	}{
		{"defaults", nil, false, defaults(false)},
		{"dev defaults", nil, true, defaults(true)},
		{"blank values keep defaults", map[string]string{"NEXUS_HTTP_ADDR": "  ", "NEXUS_ACCESS_TOKEN_TTL": " ", "NEXUS_LOG_FORMAT": ""}, false, defaults(false)},
		{"every variable", every, false, everyWant},
		{"dev keeps explicit values", map[string]string{"NEXUS_LOG_FORMAT": "json", "NEXUS_KEY_PUBLISH_DELAY": "1m"}, true,
			with(true, func(c *config.Config) { c.LogFormat, c.KeyPublishDelay = "json", time.Minute })},
		{"behind proxy, numeric true", map[string]string{"NEXUS_BEHIND_TLS_PROXY": "1"}, false,
			with(false, func(c *config.Config) { c.BehindTLSProxy = true })},
		{"behind proxy, TRUE", map[string]string{"NEXUS_BEHIND_TLS_PROXY": "TRUE"}, false,
			with(false, func(c *config.Config) { c.BehindTLSProxy = true })},
		{"single IPv6 proxy", map[string]string{"NEXUS_TRUSTED_PROXIES": "::1/128"}, false,
			with(false, func(c *config.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("::1/128")} })},
		{"zero grace", map[string]string{"NEXUS_REFRESH_GRACE": "0s"}, false,
			with(false, func(c *config.Config) { c.RefreshGrace = 0 })},
		{"postgresql scheme", map[string]string{"NEXUS_DATABASE_URL": "postgresql://u@h/db"}, false,
			with(false, func(c *config.Config) { c.DatabaseURL = "postgresql://u@h/db" })},
		{"log level warn", map[string]string{"NEXUS_LOG_LEVEL": "warn"}, false,
			with(false, func(c *config.Config) { c.LogLevel = slog.LevelWarn })},
		{"loopback IPv6 address", map[string]string{"NEXUS_HTTP_ADDR": "[::1]:8080"}, true,
			with(true, func(c *config.Config) { c.HTTPAddr, c.Issuer = "[::1]:8080", "http://[::1]:8080" })},
		{"dev issuer follows the address", map[string]string{"NEXUS_HTTP_ADDR": "0.0.0.0:9000"}, true,
			with(true, func(c *config.Config) { c.HTTPAddr, c.Issuer = "0.0.0.0:9000", "http://127.0.0.1:9000" })},
		{"dev keeps an explicit issuer", map[string]string{"NEXUS_ISSUER": "https://auth.example.com"}, true,
			with(true, func(c *config.Config) { c.Issuer = "https://auth.example.com" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Load(env(tt.env), tt.dev)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, equalPrefixes); diff != "" {
				t.Errorf("Load (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantVars []string // variables the error must name
	}{
		{"duration without unit", map[string]string{"NEXUS_ACCESS_TOKEN_TTL": "15"}, []string{"NEXUS_ACCESS_TOKEN_TTL"}},
		{"negative duration", map[string]string{"NEXUS_KEY_PUBLISH_DELAY": "-5m"}, []string{"NEXUS_KEY_PUBLISH_DELAY"}},
		{"access TTL too short", map[string]string{"NEXUS_ACCESS_TOKEN_TTL": "30s"}, []string{"NEXUS_ACCESS_TOKEN_TTL"}},
		{"access TTL too long", map[string]string{"NEXUS_ACCESS_TOKEN_TTL": "25h"}, []string{"NEXUS_ACCESS_TOKEN_TTL"}},
		{"idle TTL not a duration", map[string]string{"NEXUS_REFRESH_IDLE_TTL": "a month"}, []string{"NEXUS_REFRESH_IDLE_TTL"}},
		{"idle TTL too short", map[string]string{"NEXUS_REFRESH_IDLE_TTL": "59s"}, []string{"NEXUS_REFRESH_IDLE_TTL"}},
		{"absolute TTL not a duration", map[string]string{"NEXUS_REFRESH_ABSOLUTE_TTL": "90d"}, []string{"NEXUS_REFRESH_ABSOLUTE_TTL"}},
		{"absolute TTL below idle TTL", map[string]string{"NEXUS_REFRESH_ABSOLUTE_TTL": "24h"}, []string{"NEXUS_REFRESH_ABSOLUTE_TTL"}},
		{"idle TTL above default absolute TTL", map[string]string{"NEXUS_REFRESH_IDLE_TTL": "2400h"}, []string{"NEXUS_REFRESH_ABSOLUTE_TTL"}},
		{"grace not a duration", map[string]string{"NEXUS_REFRESH_GRACE": "ten seconds"}, []string{"NEXUS_REFRESH_GRACE"}},
		{"grace over 60s", map[string]string{"NEXUS_REFRESH_GRACE": "61s"}, []string{"NEXUS_REFRESH_GRACE"}},
		{"grace of minutes", map[string]string{"NEXUS_REFRESH_GRACE": "2m"}, []string{"NEXUS_REFRESH_GRACE"}},
		{"JWKS max age", map[string]string{"NEXUS_JWKS_MAX_AGE": "5 minutes"}, []string{"NEXUS_JWKS_MAX_AGE"}},
		{"shutdown timeout", map[string]string{"NEXUS_SHUTDOWN_TIMEOUT": "-1s"}, []string{"NEXUS_SHUTDOWN_TIMEOUT"}},
		{"proxy flag not a bool", map[string]string{"NEXUS_BEHIND_TLS_PROXY": "yes"}, []string{"NEXUS_BEHIND_TLS_PROXY"}},
		{"secret not base64", map[string]string{"NEXUS_SECRET_KEY": "not base64!"}, []string{"NEXUS_SECRET_KEY"}},
		{"secret of 16 bytes", map[string]string{"NEXUS_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 16))}, []string{"NEXUS_SECRET_KEY"}},
		{"secret of 33 bytes", map[string]string{"NEXUS_SECRET_KEY": base64.StdEncoding.EncodeToString(make([]byte, 33))}, []string{"NEXUS_SECRET_KEY"}},
		{"secret in URL-safe base64", map[string]string{"NEXUS_SECRET_KEY": base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))}, []string{"NEXUS_SECRET_KEY"}},
		{"previous secret not base64", map[string]string{"NEXUS_SECRET_KEY_PREVIOUS": "not base64!"}, []string{"NEXUS_SECRET_KEY_PREVIOUS"}},
		{"previous secret of 16 bytes", map[string]string{"NEXUS_SECRET_KEY_PREVIOUS": base64.StdEncoding.EncodeToString(make([]byte, 16))}, []string{"NEXUS_SECRET_KEY_PREVIOUS"}},
		{"previous secret is the secret", map[string]string{"NEXUS_SECRET_KEY": secret, "NEXUS_SECRET_KEY_PREVIOUS": secret}, []string{"NEXUS_SECRET_KEY_PREVIOUS"}},
		{"log level", map[string]string{"NEXUS_LOG_LEVEL": "verbose"}, []string{"NEXUS_LOG_LEVEL"}},
		{"log format", map[string]string{"NEXUS_LOG_FORMAT": "xml"}, []string{"NEXUS_LOG_FORMAT"}},
		{"proxy not a prefix", map[string]string{"NEXUS_TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"}, []string{"NEXUS_TRUSTED_PROXIES"}},
		{"proxy without a length", map[string]string{"NEXUS_TRUSTED_PROXIES": "10.0.0.1"}, []string{"NEXUS_TRUSTED_PROXIES"}},
		{"proxy list with an empty item", map[string]string{"NEXUS_TRUSTED_PROXIES": "10.0.0.0/8,"}, []string{"NEXUS_TRUSTED_PROXIES"}},
		{"database URL of another scheme", map[string]string{"NEXUS_DATABASE_URL": "mysql://u:pw@h/db"}, []string{"NEXUS_DATABASE_URL"}},
		{"database URL without a scheme", map[string]string{"NEXUS_DATABASE_URL": "host=h user=u"}, []string{"NEXUS_DATABASE_URL"}},
		{"database URL unparsable", map[string]string{"NEXUS_DATABASE_URL": "postgres://u:pw@h:port/db"}, []string{"NEXUS_DATABASE_URL"}},
		{"listen URL without a database URL", map[string]string{"NEXUS_DATABASE_LISTEN_URL": "postgres://u:pw@h/db"}, []string{"NEXUS_DATABASE_LISTEN_URL"}},
		{"listen URL of another scheme", map[string]string{"NEXUS_DATABASE_URL": "postgres://u:pw@h/db", "NEXUS_DATABASE_LISTEN_URL": "mysql://u:pw@h/db"}, []string{"NEXUS_DATABASE_LISTEN_URL"}},
		{"replica URL without a database URL", map[string]string{"NEXUS_DATABASE_REPLICA_URL": "postgres://u:pw@replica/db"}, []string{"NEXUS_DATABASE_REPLICA_URL"}},
		{"replica URL of another scheme", map[string]string{"NEXUS_DATABASE_URL": "postgres://u:pw@h/db", "NEXUS_DATABASE_REPLICA_URL": "mysql://u:pw@replica/db"}, []string{"NEXUS_DATABASE_REPLICA_URL"}},
		{"replica URL without a scheme", map[string]string{"NEXUS_DATABASE_URL": "postgres://u:pw@h/db", "NEXUS_DATABASE_REPLICA_URL": "host=replica user=u"}, []string{"NEXUS_DATABASE_REPLICA_URL"}},
		{"replica lag not a duration", map[string]string{"NEXUS_REPLICA_MAX_LAG": "5"}, []string{"NEXUS_REPLICA_MAX_LAG"}},
		{"replica lag too small", map[string]string{"NEXUS_REPLICA_MAX_LAG": "10ms"}, []string{"NEXUS_REPLICA_MAX_LAG"}},
		{"replica lag too large", map[string]string{"NEXUS_REPLICA_MAX_LAG": "2h"}, []string{"NEXUS_REPLICA_MAX_LAG"}},
		{"retention under a day", map[string]string{"NEXUS_EVENT_RETENTION": "23h"}, []string{"NEXUS_EVENT_RETENTION"}},
		{"retention in weeks", map[string]string{"NEXUS_EVENT_RETENTION": "2w"}, []string{"NEXUS_EVENT_RETENTION"}},
		{"retention of fractional days", map[string]string{"NEXUS_EVENT_RETENTION": "1.5d"}, []string{"NEXUS_EVENT_RETENTION"}},
		{"retention negative", map[string]string{"NEXUS_EVENT_RETENTION": "-90d"}, []string{"NEXUS_EVENT_RETENTION"}},
		{"auth cache negative", map[string]string{"NEXUS_AUTH_CACHE_ENTRIES": "-1"}, []string{"NEXUS_AUTH_CACHE_ENTRIES"}},
		{"address without a port", map[string]string{"NEXUS_HTTP_ADDR": "localhost"}, []string{"NEXUS_HTTP_ADDR"}},
		{"address without a host separator", map[string]string{"NEXUS_HTTP_ADDR": "8080"}, []string{"NEXUS_HTTP_ADDR"}},
		{"issuer without a scheme", map[string]string{"NEXUS_ISSUER": "auth.example.com"}, []string{"NEXUS_ISSUER"}},
		{"issuer is a path", map[string]string{"NEXUS_ISSUER": "/issuer"}, []string{"NEXUS_ISSUER"}},
		{"certificate without key", map[string]string{"NEXUS_TLS_CERT_FILE": "c.pem"}, []string{"NEXUS_TLS_KEY_FILE"}},
		{"key without certificate", map[string]string{"NEXUS_TLS_KEY_FILE": "k.pem"}, []string{"NEXUS_TLS_CERT_FILE"}},
		{"rate without a window", map[string]string{"NEXUS_RATE_LIMIT_IP": "100"}, []string{"NEXUS_RATE_LIMIT_IP"}},
		{"rate of zero", map[string]string{"NEXUS_RATE_LIMIT_PRINCIPAL": "0/1m"}, []string{"NEXUS_RATE_LIMIT_PRINCIPAL"}},
		{"rate window under 1s", map[string]string{"NEXUS_LOGIN_FAILURES": "10/500ms"}, []string{"NEXUS_LOGIN_FAILURES"}},
		{"rate window over 24h", map[string]string{"NEXUS_RATE_LIMIT_CLIENT": "10/25h"}, []string{"NEXUS_RATE_LIMIT_CLIENT"}},
		{"rate not a number", map[string]string{"NEXUS_RATE_LIMIT_AUTH_IP": "many/1m"}, []string{"NEXUS_RATE_LIMIT_AUTH_IP"}},
		{"rate of another unit", map[string]string{"NEXUS_RATE_LIMIT_LOGIN_ACCOUNT": "10/minute"}, []string{"NEXUS_RATE_LIMIT_LOGIN_ACCOUNT"}},
		{"redis URL of another scheme", map[string]string{"NEXUS_REDIS_URL": "http://cache:6379"}, []string{"NEXUS_REDIS_URL"}},
		{"redis URL without a host", map[string]string{"NEXUS_REDIS_URL": "redis://"}, []string{"NEXUS_REDIS_URL"}},
		{"CORS origin with a path", map[string]string{"NEXUS_CORS_ORIGINS": "https://app.example.com/login"}, []string{"NEXUS_CORS_ORIGINS"}},
		{"CORS origin without a scheme", map[string]string{"NEXUS_CORS_ORIGINS": "app.example.com"}, []string{"NEXUS_CORS_ORIGINS"}},
		{"read header timeout too short", map[string]string{"NEXUS_READ_HEADER_TIMEOUT": "10ms"}, []string{"NEXUS_READ_HEADER_TIMEOUT"}},
		{"idle timeout too long", map[string]string{"NEXUS_IDLE_TIMEOUT": "2h"}, []string{"NEXUS_IDLE_TIMEOUT"}},
		{"request timeout not below write timeout", map[string]string{"NEXUS_REQUEST_TIMEOUT": "30s"}, []string{"NEXUS_REQUEST_TIMEOUT"}},
		{"header limit too small", map[string]string{"NEXUS_MAX_HEADER_BYTES": "1024"}, []string{"NEXUS_MAX_HEADER_BYTES"}},
		{"pool size negative", map[string]string{"NEXUS_DB_MAX_CONNS": "-1"}, []string{"NEXUS_DB_MAX_CONNS"}},
		{"shutdown delay too long", map[string]string{"NEXUS_SHUTDOWN_DELAY": "1h"}, []string{"NEXUS_SHUTDOWN_DELAY"}},
		{"metrics address without a port", map[string]string{"NEXUS_METRICS_ADDR": "localhost"}, []string{"NEXUS_METRICS_ADDR"}},
		{"metrics address of the API", map[string]string{"NEXUS_METRICS_ADDR": "127.0.0.1:8080"}, []string{"NEXUS_METRICS_ADDR"}},
		{"pprof without a metrics listener", map[string]string{"NEXUS_PPROF": "true"}, []string{"NEXUS_PPROF"}},
		{"pprof not a bool", map[string]string{"NEXUS_PPROF": "on", "NEXUS_METRICS_ADDR": "127.0.0.1:9090"}, []string{"NEXUS_PPROF"}},
		{"every error is reported", map[string]string{"NEXUS_LOG_FORMAT": "xml", "NEXUS_REFRESH_GRACE": "5m", "NEXUS_HTTP_ADDR": "x"},
			[]string{"NEXUS_LOG_FORMAT", "NEXUS_REFRESH_GRACE", "NEXUS_HTTP_ADDR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, dev := range []bool{false, true} {
				_, err := config.Load(env(tt.env), dev)
				if err == nil {
					t.Errorf("dev %v: Load succeeded, want an error naming %v", dev, tt.wantVars)
					continue
				}
				for _, v := range tt.wantVars {
					if !strings.Contains(err.Error(), v) {
						t.Errorf("dev %v: error %q does not name %s", dev, err, v)
					}
				}
			}
		})
	}
}

// TestLoadErrorsHideSecrets checks that rejected values that may be secret are not repeated in the error.
func TestLoadErrorsHideSecrets(t *testing.T) {
	tests := []struct {
		name, value, secret string
	}{
		{"NEXUS_SECRET_KEY", "s3cr3tpw-not-base64", "s3cr3tpw"},
		{"NEXUS_SECRET_KEY", base64.StdEncoding.EncodeToString([]byte("s3cr3tpw-too-short")), base64.StdEncoding.EncodeToString([]byte("s3cr3tpw-too-short"))},
		{"NEXUS_SECRET_KEY_PREVIOUS", "s3cr3tpw-not-base64", "s3cr3tpw"},
		{"NEXUS_SECRET_KEY_PREVIOUS", base64.StdEncoding.EncodeToString([]byte("s3cr3tpw-too-short")), base64.StdEncoding.EncodeToString([]byte("s3cr3tpw-too-short"))},
		{"NEXUS_DATABASE_URL", "mysql://u:s3cr3tpw@h/db", "s3cr3tpw"},
		{"NEXUS_DATABASE_URL", "postgres://u:s3cr3tpw@h:port/db", "s3cr3tpw"},
		{"NEXUS_DATABASE_REPLICA_URL", "mysql://u:s3cr3tpw@replica/db", "s3cr3tpw"},
	}
	for _, tt := range tests {
		_, err := config.Load(env(map[string]string{tt.name: tt.value}), false)
		if err == nil {
			t.Errorf("%s=%q: Load succeeded", tt.name, tt.value)
			continue
		}
		if strings.Contains(err.Error(), tt.secret) {
			t.Errorf("%s: error %q repeats the secret", tt.name, err)
		}
	}
}

func TestValidateServe(t *testing.T) {
	tests := []struct {
		name    string
		dev     bool
		env     map[string]string
		wantVar string // "" when accepted
	}{
		{"dev on 127.0.0.1 port 0", true, map[string]string{"NEXUS_HTTP_ADDR": "127.0.0.1:0"}, ""},
		{"dev on [::1]", true, map[string]string{"NEXUS_HTTP_ADDR": "[::1]:8080"}, ""},
		{"dev on localhost", true, map[string]string{"NEXUS_HTTP_ADDR": "localhost:8080"}, ""},
		{"dev on 127.0.0.2", true, map[string]string{"NEXUS_HTTP_ADDR": "127.0.0.2:8080"}, ""},
		{"dev on the default address", true, nil, ""},
		{"dev needs no secret or TLS", true, map[string]string{"NEXUS_SECRET_KEY": secret}, ""},
		{"dev on every interface", true, map[string]string{"NEXUS_HTTP_ADDR": "0.0.0.0:8080"}, "NEXUS_HTTP_ADDR"},
		{"dev on an empty host", true, map[string]string{"NEXUS_HTTP_ADDR": ":8080"}, "NEXUS_HTTP_ADDR"},
		{"dev on [::]", true, map[string]string{"NEXUS_HTTP_ADDR": "[::]:8080"}, "NEXUS_HTTP_ADDR"},
		{"dev on a LAN address", true, map[string]string{"NEXUS_HTTP_ADDR": "192.168.1.10:8080"}, "NEXUS_HTTP_ADDR"},
		{"dev on a host name", true, map[string]string{"NEXUS_HTTP_ADDR": "example.com:8080"}, "NEXUS_HTTP_ADDR"},
		{"dev on a name that starts with localhost", true, map[string]string{"NEXUS_HTTP_ADDR": "localhost.example.com:8080"}, "NEXUS_HTTP_ADDR"},
		{"dev with metrics on loopback", true, map[string]string{"NEXUS_METRICS_ADDR": "127.0.0.1:0", "NEXUS_PPROF": "true"}, ""},
		{"dev with metrics on every interface", true, map[string]string{"NEXUS_METRICS_ADDR": ":9090"}, "NEXUS_METRICS_ADDR"},
		{"metrics on every interface outside dev", false, map[string]string{"NEXUS_SECRET_KEY": secret, "NEXUS_BEHIND_TLS_PROXY": "true",
			"NEXUS_METRICS_ADDR": ":9090"}, ""},
		{"dev with TLS", true, map[string]string{"NEXUS_TLS_CERT_FILE": "c.pem", "NEXUS_TLS_KEY_FILE": "k.pem"}, "NEXUS_TLS_CERT_FILE"},
		{"no TLS, not behind a proxy", false, map[string]string{"NEXUS_SECRET_KEY": secret}, "NEXUS_TLS_CERT_FILE"},
		{"no TLS, not behind a proxy, on loopback", false, map[string]string{"NEXUS_SECRET_KEY": secret, "NEXUS_HTTP_ADDR": "127.0.0.1:8080"}, "NEXUS_TLS_CERT_FILE"},
		{"no secret", false, map[string]string{"NEXUS_BEHIND_TLS_PROXY": "true"}, "NEXUS_SECRET_KEY"},
		{"no secret with TLS", false, map[string]string{"NEXUS_TLS_CERT_FILE": "c.pem", "NEXUS_TLS_KEY_FILE": "k.pem"}, "NEXUS_SECRET_KEY"},
		{"TLS and behind a proxy", false, map[string]string{"NEXUS_SECRET_KEY": secret, "NEXUS_BEHIND_TLS_PROXY": "true",
			"NEXUS_TLS_CERT_FILE": "c.pem", "NEXUS_TLS_KEY_FILE": "k.pem"}, "NEXUS_BEHIND_TLS_PROXY"},
		{"behind a proxy with a secret", false, map[string]string{"NEXUS_SECRET_KEY": secret, "NEXUS_BEHIND_TLS_PROXY": "true",
			"NEXUS_HTTP_ADDR": "0.0.0.0:8080"}, ""},
		{"TLS with a secret", false, map[string]string{"NEXUS_SECRET_KEY": secret, "NEXUS_HTTP_ADDR": ":8443",
			"NEXUS_TLS_CERT_FILE": "c.pem", "NEXUS_TLS_KEY_FILE": "k.pem"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(env(tt.env), tt.dev)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			err = c.ValidateServe()
			switch {
			case tt.wantVar == "" && err != nil:
				t.Errorf("ValidateServe: %v", err)
			case tt.wantVar != "" && err == nil:
				t.Errorf("ValidateServe succeeded, want an error naming %s", tt.wantVar)
			case tt.wantVar != "" && !strings.Contains(err.Error(), tt.wantVar):
				t.Errorf("ValidateServe error %q does not name %s", err, tt.wantVar)
			}
		})
	}
}

func TestTLSAndHTTPS(t *testing.T) {
	tests := []struct {
		env             map[string]string
		tls, wantsHTTPS bool
	}{
		{nil, false, false},
		{map[string]string{"NEXUS_BEHIND_TLS_PROXY": "true"}, false, true},
		{map[string]string{"NEXUS_TLS_CERT_FILE": "c.pem", "NEXUS_TLS_KEY_FILE": "k.pem"}, true, true},
	}
	for _, tt := range tests {
		c, err := config.Load(env(tt.env), false)
		if err != nil {
			t.Fatalf("Load(%v): %v", tt.env, err)
		}
		if c.TLS() != tt.tls || c.HTTPS() != tt.wantsHTTPS {
			t.Errorf("Load(%v): TLS() = %v, HTTPS() = %v; want %v, %v", tt.env, c.TLS(), c.HTTPS(), tt.tls, tt.wantsHTTPS)
		}
	}
}

func TestLogValueMasksSecrets(t *testing.T) {
	tests := []struct {
		name   string
		url    string
		hidden []string // must not appear in the log
		shown  []string // must appear, so that the test sees the configuration was logged
	}{
		{"password in userinfo", "postgres://u:s3cr3tpw@h/db", []string{"s3cr3tpw"}, []string{"postgres://u:xxxxx@h/db"}},
		{"password in query", "postgres://u@h/db?sslmode=disable&password=s3cr3tpw", []string{"s3cr3tpw"}, []string{"password=xxxxx", "sslmode=disable"}},
		{"encoded password", "postgres://u:s3cr3%74pw@h/db", []string{"s3cr3tpw", "s3cr3%74pw"}, []string{"xxxxx"}},
		{"no password", "postgres://u@h:5432/db", nil, []string{"postgres://u@h:5432/db"}},
		{"embedded database", "", nil, []string{"sqlite (embedded, in data)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.Load(env(map[string]string{
				"NEXUS_DATABASE_URL": tt.url, "NEXUS_SECRET_KEY": secret, "NEXUS_BEHIND_TLS_PROXY": "true",
				"NEXUS_TRUSTED_PROXIES": "10.0.0.0/8", "NEXUS_REDIS_URL": "redis://:r3d1spw@cache:6379/0",
				"NEXUS_DATABASE_REPLICA_URL": replicaURL(tt.url),
			}), false)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			for _, newHandler := range []func(*bytes.Buffer) slog.Handler{
				func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
				func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
			} {
				var buf bytes.Buffer
				slog.New(newHandler(&buf)).Info("configuration", "config", c)
				out := buf.String()
				hidden := append([]string{secret, string(secretBytes), "r3d1spw", "r3pl1capw"}, tt.hidden...)
				for _, s := range hidden {
					if strings.Contains(out, s) {
						t.Errorf("log contains %q:\n%s", s, out)
					}
				}
				shown := append([]string{"set (masked)", "10.0.0.0/8", "redis://:xxxxx@cache:6379/0", "1200/1m", "metrics_addr", "off"}, tt.shown...)
				if tt.url != "" {
					shown = append(shown, "postgres://u:xxxxx@replica/db", "replica_max_lag")
				} else {
					shown = append(shown, "off (every read goes to the primary)")
				}
				for _, s := range shown {
					if !strings.Contains(out, s) {
						t.Errorf("log lacks %q:\n%s", s, out)
					}
				}
			}
		})
	}
}

// replicaURL is a replica URL with a password beside the database URL url, or none beside the embedded database.
func replicaURL(url string) string {
	if url == "" {
		return ""
	}
	return "postgres://u:r3pl1capw@replica/db"
}

func TestRateString(t *testing.T) {
	for _, v := range []string{"off", "100/1m", "10/15m", "5000/1h", "3/1s", "7/1h30m", "1/24h"} {
		r, err := config.ParseRate(v)
		if err != nil {
			t.Fatalf("ParseRate(%q): %v", v, err)
		}
		if got := r.String(); got != v {
			t.Errorf("ParseRate(%q).String() = %q", v, got)
		}
	}
	if r, _ := config.ParseRate("off"); !r.Off() {
		t.Error("off is not Off")
	}
}

// TestRetention checks NEXUS_EVENT_RETENTION's two spellings, its default (forever) and how it is logged.
func TestRetention(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 0, "90d": 90 * 24 * time.Hour, "1d": 24 * time.Hour, "36h": 36 * time.Hour, "2160h": 90 * 24 * time.Hour} {
		c, err := config.Load(env(map[string]string{"NEXUS_EVENT_RETENTION": v}), false)
		if err != nil {
			t.Fatalf("NEXUS_EVENT_RETENTION=%q: %v", v, err)
		}
		if got := c.EventRetention.Duration(); got != want {
			t.Errorf("NEXUS_EVENT_RETENTION=%q: %s, want %s", v, got, want)
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("configuration", "config", c)
		if logged := map[string]string{"": "forever", "90d": "90d", "1d": "1d", "36h": "36h0m0s", "2160h": "90d"}[v]; !strings.Contains(buf.String(), `"event_retention":"`+logged+`"`) {
			t.Errorf("NEXUS_EVENT_RETENTION=%q logged as %s, want %s", v, buf.String(), logged)
		}
	}
}

// TestLoadErrorsArePlain checks that errors read "VARIABLE: what is wanted", one per line, in the project's words
// rather than the parsing library's, and that a value that failed to parse is not judged again at its zero value.
func TestLoadErrorsArePlain(t *testing.T) {
	_, err := config.Load(env(map[string]string{
		"NEXUS_BEHIND_TLS_PROXY": "yes",
		"NEXUS_EVENT_QUEUE":      "many",
		"NEXUS_DB_MAX_CONNS":     "-1",
		"NEXUS_LOG_LEVEL":        "verbose",
		"NEXUS_TRUSTED_PROXIES":  "x, 10.0.0.0/8, y",
		"NEXUS_READ_TIMEOUT":     "soon",
	}), false)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	want := []string{
		`NEXUS_BEHIND_TLS_PROXY: want true or false, got "yes"`,
		`NEXUS_TRUSTED_PROXIES: "x" is not a CIDR prefix such as 10.0.0.0/8`,
		`NEXUS_TRUSTED_PROXIES: "y" is not a CIDR prefix such as 10.0.0.0/8`,
		`NEXUS_EVENT_QUEUE: want an integer, got "many"`,
		`NEXUS_READ_TIMEOUT: want a non-negative duration such as 15m or 720h, got "soon"`,
		`NEXUS_LOG_LEVEL: want debug, info, warn or error, got "verbose"`,
		`NEXUS_DB_MAX_CONNS: want an integer from 0 to 1000, got -1`,
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("Load error (-want +got):\n%s", diff)
	}
}
