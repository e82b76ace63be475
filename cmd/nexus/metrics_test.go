package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// The metrics listener of `nexus serve`, and the dashboard and alert rules of deploy/ that read it.

const (
	dashboardFile = "../../deploy/grafana/nexus-dashboard.json"
	alertsFile    = "../../deploy/prometheus/alerts.yaml"
)

var metricsAt = regexp.MustCompile(`metrics on (http://[^\s]+)/metrics`)

// TestServeMetrics runs `serve --dev` with a metrics listener, sends traffic (a login, a call answered 4xx, an
// event), and scrapes /metrics there: every series and label that the Grafana dashboard and the Prometheus
// alert rules query is served, the request series count the traffic, and the API's listener answers 404 for
// /metrics and /debug/pprof/. With NEXUS_PPROF=true (the SQLite run) the profiles are on the metrics listener;
// without it (the PostgreSQL run) they are not.
func TestServeMetrics(t *testing.T) {
	queries := promQueries(t)
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			pprofOn := db == "sqlite"
			vars := map[string]string{"NEXUS_DATA_DIR": t.TempDir(), "NEXUS_HTTP_ADDR": "127.0.0.1:0", "NEXUS_LOG_LEVEL": "warn",
				"NEXUS_METRICS_ADDR": "127.0.0.1:0", "NEXUS_PPROF": fmt.Sprint(pprofOn)}
			if db == "postgres" {
				vars["NEXUS_DATABASE_URL"] = testdb.PostgresURL(t)
			}
			s := start(t, vars, "serve", "--dev")
			m := metricsAt.FindStringSubmatch(s.stdout.String())
			creds := seeded.FindStringSubmatch(s.stdout.String())
			if m == nil || creds == nil {
				t.Fatalf("no metrics address or demo credentials printed:\n%s", s.stdout)
			}
			metricsURL := m[1]

			status, tokens, _ := s.post(t, "/v2/auth/login", "", map[string]any{"email": creds[1], "password": creds[2], "client_id": creds[3]})
			if status != http.StatusOK {
				t.Fatalf("login: %d %v", status, tokens)
			}
			access := tokens["access_token"].(string)
			if status, body := s.fetch(t, s.url+"/v2/users/"+uuid.NewString(), access); status != http.StatusNotFound {
				t.Fatalf("an unknown user: %d %s", status, body)
			}
			if status, body, _ := s.post(t, "/v2/analytics/events", access, map[string]any{"event_id": uuid.NewString(),
				"event_name": "metered", "event_category": "test"}); status != http.StatusAccepted {
				t.Fatalf("an event: %d %v", status, body)
			}
			// The API's listener serves neither the metrics nor the profiles: the normal 404 problem.
			for _, path := range []string{"/metrics", "/debug/pprof/"} {
				status, body := s.fetch(t, s.url+path, "")
				if status != http.StatusNotFound || !strings.Contains(body, `"code":"not_found"`) {
					t.Errorf("GET %s on the API's listener: %d %s, want the 404 problem", path, status, body)
				}
			}
			// The profiles are on the metrics listener only when NEXUS_PPROF asks for them.
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap?debug=1"} {
				want := http.StatusNotFound
				if pprofOn {
					want = http.StatusOK
				}
				if status, body := s.fetch(t, metricsURL+path, ""); status != want {
					t.Errorf("GET %s on the metrics listener with NEXUS_PPROF=%v: %d, want %d: %.200s", path, pprofOn, status, want, body)
				}
			}

			fams := scrapeFamilies(t, s, metricsURL)
			for _, c := range []struct{ operation, class string }{{"login", "2xx"}, {"getUser", "4xx"}, {"trackEvent", "2xx"}} {
				if !hasSeries(fams["nexus_http_requests_total"], map[string]string{"operation": c.operation, "code_class": c.class}) {
					t.Errorf("no nexus_http_requests_total{operation=%q,code_class=%q} after the traffic", c.operation, c.class)
				}
			}
			for _, q := range queries {
				for _, err := range checkQuery(q, fams) {
					t.Errorf("%s: %v\n  %s", q.where, err, q.expr)
				}
			}
		})
	}
}

// metricsClient asks the metrics listener, which is not the API: its answers are not checked against openapi.yaml.
var metricsClient = &http.Client{Timeout: 10 * time.Second}

// fetch answers a GET of url with the bearer token (if any): the status and the body. Answers of the API's
// listener are checked against openapi.yaml (s.client), those of the metrics listener are not.
func (s *server) fetch(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := s.client
	if !strings.HasPrefix(url, s.url+"/") {
		client = metricsClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrapeFamilies scrapes /metrics on the metrics listener and parses the text exposition format.
func scrapeFamilies(t *testing.T, s *server, metricsURL string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := metricsClient.Get(metricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// hasSeries reports whether a series of f has the labels of want (and maybe others).
func hasSeries(f *dto.MetricFamily, want map[string]string) bool {
	if f == nil {
		return false
	}
	for _, m := range f.GetMetric() {
		n := 0
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				n++
			}
		}
		if n == len(want) {
			return true
		}
	}
	return false
}

// promQuery is one PromQL expression of the dashboard or the alert rules.
type promQuery struct {
	where string // the panel or the rule
	expr  string
}

// promQueries reads every expression of the dashboard (its panels' targets, and its template variables'
// label_values queries) and of the alert rules, and checks the files' shape on the way.
func promQueries(t *testing.T) []promQuery {
	t.Helper()
	var qs []promQuery

	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title      string      `json:"title"`
		UID        string      `json:"uid"`
		Panels     []dashPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			}
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", dashboardFile)
	}
	ids := map[int]bool{}
	var walk func(ps []dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", dashboardFile, p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && (len(p.Targets) == 0 || p.GridPos.W == 0 || p.GridPos.H == 0) {
				t.Errorf("%s: panel %q without targets or size", dashboardFile, p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" || tg.RefID == "" {
					t.Errorf("%s: panel %q: a target without expr or refId", dashboardFile, p.Title)
				}
				qs = append(qs, promQuery{"dashboard panel " + p.Title, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		lv := labelValues.FindStringSubmatch(s)
		if lv == nil {
			t.Fatalf("%s: variable %s: want label_values(metric, label), got %v", dashboardFile, v.Name, v.Query)
		}
		// label_values(m, l) asks for the label l of the series m: the selector m{l!=""} says as much.
		qs = append(qs, promQuery{"dashboard variable " + v.Name, lv[1] + `{` + lv[2] + `!=""}`})
	}

	raw, err = os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	if len(rules.Groups) == 0 {
		t.Fatalf("%s: no groups", alertsFile)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if _, err := model.ParseDuration(r.For); r.Alert == "" || r.Expr == "" || err != nil || r.Labels["severity"] == "" ||
				r.Annotations["summary"] == "" {
				t.Errorf("%s: rule %q of %s: want alert, expr, for (a duration), labels.severity and annotations.summary", alertsFile, r.Alert, g.Name)
			}
			qs = append(qs, promQuery{"alert " + r.Alert, r.Expr})
		}
	}
	return qs
}

type dashPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}

var labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// targetLabels are the labels Prometheus adds to every series it scrapes: no server serves them.
var targetLabels = map[string]bool{"job": true, "instance": true}

// checkQuery returns what q uses that the scrape fams lacks: a series, a label of a selector, a label it groups
// or matches by; and a code_class value that the server never sends.
func checkQuery(q promQuery, fams map[string]*dto.MetricFamily) []error {
	pq, err := parsePromQL(q.expr)
	if err != nil {
		return []error{err}
	}
	var errs []error
	var used []*dto.MetricFamily
	bucket := false
	for _, ref := range pq.selectors {
		f, suffix := family(fams, ref.metric)
		if f == nil {
			errs = append(errs, fmt.Errorf("series %s is not served", ref.metric))
			continue
		}
		used = append(used, f)
		bucket = bucket || suffix == "_bucket"
		for _, m := range ref.matchers {
			if !targetLabels[m.label] && !(m.label == "le" && suffix == "_bucket") && !hasLabel(f, m.label) {
				errs = append(errs, fmt.Errorf("series %s has no label %s", ref.metric, m.label))
			}
			if m.label == "code_class" {
				for _, v := range strings.Split(m.value, "|") {
					if !slices.Contains([]string{"1xx", "2xx", "3xx", "4xx", "5xx"}, v) {
						errs = append(errs, fmt.Errorf("code_class %q is never sent", v))
					}
				}
			}
		}
	}
	for _, l := range pq.grouping {
		if targetLabels[l] || l == "le" && bucket || slices.ContainsFunc(used, func(f *dto.MetricFamily) bool { return hasLabel(f, l) }) {
			continue
		}
		errs = append(errs, fmt.Errorf("no series of the expression has the label %s it groups or matches by", l))
	}
	return errs
}

// family returns the family of the series name: its own, or a histogram's or summary's for its _bucket, _sum
// and _count series (with that suffix).
func family(fams map[string]*dto.MetricFamily, name string) (*dto.MetricFamily, string) {
	if f := fams[name]; f != nil {
		return f, ""
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f := fams[base]; f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY && suffix != "_bucket") {
			return f, suffix
		}
	}
	return nil, ""
}

func hasLabel(f *dto.MetricFamily, label string) bool {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				return true
			}
		}
	}
	return false
}

// A small reader of PromQL, enough for the names an expression uses: the series of its selectors with the
// labels they match, and the labels of its by, without, on, ignoring, group_left and group_right clauses.
// Grafana's variables ($job, $__rate_interval) may stand where a string or a duration would.

type promMatcher struct{ label, op, value string }

type promSelector struct {
	metric   string
	matchers []promMatcher
}

type parsedPromQL struct {
	selectors []promSelector
	grouping  []string
}

type promToken struct {
	kind byte // 'i' identifier, 's' string, 'n' number or variable, 'o' operator or punctuation
	text string
}

// promKeywords are the identifiers that name neither a series nor a function.
var promKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true, "topk": true,
	"bottomk": true, "quantile": true, "count_values": true, "group": true, "limitk": true, "limit_ratio": true,
}

// promGrouping are the keywords followed by a parenthesized list of labels.
var promGrouping = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

func lexPromQL(s string) ([]promToken, error) {
	var toks []promToken
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			var b strings.Builder
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && c != '`' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			toks = append(toks, promToken{'s', b.String()})
			i = j + 1
		case isIdent(c, true):
			j := i
			for j < len(s) && isIdent(s[j], false) {
				j++
			}
			toks = append(toks, promToken{'i', s[i:j]})
			i = j
		case c >= '0' && c <= '9' || c == '.' || c == '$':
			j := i + 1
			if c == '$' && j < len(s) && s[j] == '{' {
				j = strings.IndexByte(s[i:], '}') + i + 1
				if j <= i {
					return nil, fmt.Errorf("unterminated variable at %d", i)
				}
			} else {
				for j < len(s) && (isIdent(s[j], false) || s[j] == '.') {
					j++
				}
			}
			toks = append(toks, promToken{'n', s[i:j]})
			i = j
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("unterminated range at %d", i)
			}
			toks = append(toks, promToken{'n', s[i : i+j+1]})
			i += j + 1
		default:
			op := string(c)
			if i+1 < len(s) && strings.Contains("=~ != !~ == >= <=", s[i:i+2]) {
				op = s[i : i+2]
			}
			toks = append(toks, promToken{'o', op})
			i += len(op)
		}
	}
	return toks, nil
}

func parsePromQL(expr string) (parsedPromQL, error) {
	var pq parsedPromQL
	toks, err := lexPromQL(expr)
	if err != nil {
		return pq, err
	}
	at := func(k int) promToken {
		if k < len(toks) {
			return toks[k]
		}
		return promToken{}
	}
	depth := 0
	for k := 0; k < len(toks); k++ {
		t := toks[k]
		switch {
		case t.kind == 'o' && t.text == "(":
			depth++
		case t.kind == 'o' && t.text == ")":
			if depth--; depth < 0 {
				return pq, fmt.Errorf("unbalanced ) at token %d", k)
			}
		case t.kind == 'i' && promGrouping[t.text]:
			if at(k+1).text != "(" {
				return pq, fmt.Errorf("%s without (", t.text)
			}
			for k += 2; at(k).text != ")"; k++ {
				switch tk := at(k); {
				case tk.kind == 'i':
					pq.grouping = append(pq.grouping, tk.text)
				case tk.text != ",":
					return pq, fmt.Errorf("%s (...): unexpected %q", t.text, tk.text)
				}
			}
		case t.kind == 'i' && (promKeywords[t.text] || at(k+1).text == "("):
			// an aggregation, a keyword or a function
		case t.kind == 'i' || t.kind == 'o' && t.text == "{":
			sel := promSelector{}
			if t.kind == 'i' {
				sel.metric = t.text
				k++
			}
			if at(k).text == "{" {
				for k++; at(k).text != "}"; k++ {
					label, op, value := at(k), at(k+1), at(k+2)
					if label.kind != 'i' || !slices.Contains([]string{"=", "!=", "=~", "!~"}, op.text) || value.kind != 's' {
						return pq, fmt.Errorf("a matcher that is not label op \"value\" near %q", label.text)
					}
					sel.matchers = append(sel.matchers, promMatcher{label.text, op.text, value.text})
					if k += 2; at(k+1).text == "," {
						k++
					}
				}
			} else {
				k-- // the token after the name is not part of the selector
			}
			if sel.metric == "" {
				return pq, fmt.Errorf("a selector without a series name")
			}
			pq.selectors = append(pq.selectors, sel)
		}
	}
	if depth != 0 {
		return pq, fmt.Errorf("unbalanced (")
	}
	if len(pq.selectors) == 0 {
		return pq, fmt.Errorf("no series")
	}
	return pq, nil
}

// TestPromQLReader checks the reader above on expressions of the kinds the files use, and that it finds in the
// files the series and labels they are known to use (so that a reader that misses them cannot pass the scrape).
func TestPromQLReader(t *testing.T) {
	got, err := parsePromQL(`histogram_quantile(0.99, sum by (job, operation, le) (rate(a_bucket{job=~"$job", operation!="un,matched"}[$__rate_interval]))) > 1
	  and on (job) sum(rate(b_total{code_class=~"4xx|5xx"}[5m])) without (x) / ignoring(y) group_left() max(c) offset 5m`)
	if err != nil {
		t.Fatal(err)
	}
	want := parsedPromQL{
		selectors: []promSelector{
			{"a_bucket", []promMatcher{{"job", "=~", "$job"}, {"operation", "!=", "un,matched"}}},
			{"b_total", []promMatcher{{"code_class", "=~", "4xx|5xx"}}},
			{"c", nil},
		},
		grouping: []string{"job", "operation", "le", "job", "x", "y"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parsePromQL:\n got %v\nwant %v", got, want)
	}
	for _, bad := range []string{`sum(rate(x[5m])`, `x{a="b"`, `x{a=b}`, `sum by job (x)`, `rate()`} {
		if _, err := parsePromQL(bad); err == nil {
			t.Errorf("parsePromQL(%q) succeeded", bad)
		}
	}

	names, labels := map[string]bool{}, map[string]bool{}
	for _, q := range promQueries(t) {
		pq, err := parsePromQL(q.expr)
		if err != nil {
			t.Fatalf("%s: %v\n  %s", q.where, err, q.expr)
		}
		for _, s := range pq.selectors {
			names[s.metric] = true
			for _, m := range s.matchers {
				labels[m.label] = true
			}
		}
		for _, l := range pq.grouping {
			labels[l] = true
		}
	}
	for _, n := range []string{"nexus_http_requests_total", "nexus_http_request_duration_seconds_bucket", "nexus_http_requests_in_flight",
		"nexus_events_write_queue", "nexus_events_backlog", "nexus_events_processing_lag_seconds", "nexus_events_processor_failing",
		"nexus_events_refused_total", "nexus_rate_limited_total", "nexus_rate_limits_degraded", "go_sql_in_use_connections",
		"go_sql_wait_duration_seconds_total", "go_goroutines", "go_gc_duration_seconds_count", "process_cpu_seconds_total"} {
		if !names[n] {
			t.Errorf("the files' queries, as read, do not use %s", n)
		}
	}
	for _, l := range []string{"operation", "code_class", "le", "policy", "db_name", "instance", "job"} {
		if !labels[l] {
			t.Errorf("the files' queries, as read, do not use the label %s", l)
		}
	}
}
