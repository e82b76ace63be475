package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

const secretKeyBytes = 32

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
	reflect.TypeFor[Rate]():      func(v string) (any, error) { return ParseRate(v) },
	reflect.TypeFor[Retention](): func(v string) (any, error) { return ParseRetention(v) },
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

// Retention is how long something is kept, written as a number of days ("90d") or a duration ("2160h"); 0 is
// forever.
type Retention time.Duration

// ParseRetention reads a Retention: "Nd" (N whole days) or a non-negative duration such as 2160h.
func ParseRetention(v string) (Retention, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err == nil && days >= 0 && days <= 100*366 {
			return Retention(time.Duration(days) * 24 * time.Hour), nil
		}
	} else if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return Retention(d), nil
	}
	return 0, fmt.Errorf("want a number of days such as 90d, or a duration such as 2160h, got %q", v)
}

// Duration returns the retention as a time.Duration (0: forever).
func (r Retention) Duration() time.Duration { return time.Duration(r) }

// String returns the retention as ParseRetention reads it: whole days as "90d", "forever" for 0.
func (r Retention) String() string {
	d := time.Duration(r)
	switch {
	case d == 0:
		return "forever"
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
