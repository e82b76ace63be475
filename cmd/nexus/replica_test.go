package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// replicaState is the replica block of /readyz, and /readyz's status code.
func (s *server) replicaState(t *testing.T) (code int, status, reason string) {
	t.Helper()
	code, body := s.getJSON(t, "/readyz", "")
	r, _ := body["replica"].(map[string]any)
	if r == nil {
		t.Fatalf("/readyz without a replica block: %d %v", code, body)
	}
	status, _ = r["status"].(string)
	reason, _ = r["reason"].(string)
	return code, status, reason
}

// awaitReplica waits until /readyz reports the replica in status (and, when reason is set, for that reason),
// checking on the way that /readyz never fails because of the replica.
func (s *server) awaitReplica(t *testing.T, status, reason string) {
	t.Helper()
	eventually(t, "the replica is "+status+" "+reason, func() bool {
		code, st, why := s.replicaState(t)
		if code != http.StatusOK {
			t.Fatalf("/readyz answered %d with the replica %s (%s): the primary alone is enough", code, st, why)
		}
		return st == status && (reason == "" || why == reason)
	})
}

// patch sends a PATCH with a JSON body.
func (s *server) patch(t *testing.T, path, token string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPatch, s.url+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return s.do(t, req)
}

// replicaReads returns nexus_db_reads_total{target} from the metrics listener.
func replicaReads(t *testing.T, s *server, metricsURL, target string) float64 {
	t.Helper()
	for _, m := range scrapeFamilies(t, s, metricsURL)["nexus_db_reads_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "target" && l.GetValue() == target {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no nexus_db_reads_total{target=%q}", target)
	return 0
}

// gauge returns the value of a gauge without labels from the metrics listener (-1 when absent).
func gauge(t *testing.T, s *server, metricsURL, name string) float64 {
	t.Helper()
	f := scrapeFamilies(t, s, metricsURL)[name]
	if f == nil || len(f.GetMetric()) == 0 {
		return -1
	}
	return f.GetMetric()[0].GetGauge().GetValue()
}

// TestServeReadReplica runs `nexus serve` on a primary with a real streaming replica (pg_basebackup) and
// checks, through the HTTP API, what reads the replica and what never does:
//   - within the lag bound, listUsers and listEvents read the replica (with its replay paused, a user or an
//     event just written on the primary is not listed), while logins, refreshes after a role change and getUser
//     read the primary;
//   - a replica killed outright costs no request a 5xx, /readyz stays 200, and once the replica is back the
//     listings read it again;
//   - a replica further behind than NEXUS_REPLICA_MAX_LAG sends the listings and the summary to the primary,
//     until it has caught up.
func TestServeReadReplica(t *testing.T) {
	primary := testdb.NewDedicated(t)
	replica := primary.NewReplica()
	rng := rand.New(rand.NewPCG(7, 17))
	vars := map[string]string{"NEXUS_DATA_DIR": t.TempDir(), "NEXUS_HTTP_ADDR": "127.0.0.1:0", "NEXUS_LOG_LEVEL": "warn",
		"NEXUS_METRICS_ADDR": "127.0.0.1:0", "NEXUS_DATABASE_URL": primary.URL(), "NEXUS_DATABASE_REPLICA_URL": replica.URL(),
		"NEXUS_REPLICA_MAX_LAG": "1h", "NEXUS_RATE_LIMIT_AUTH_IP": "off", "NEXUS_RATE_LIMIT_IP": "off"}
	s := start(t, vars, "serve", "--dev")
	email, password, client := credentials(t, s)
	m := metricsAt.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("no metrics address printed:\n%s", s.stdout)
	}
	metricsURL := m[1]
	admin, _ := s.login(t, email, password, client)
	s.awaitReplica(t, "healthy", "")
	if up := gauge(t, s, metricsURL, "nexus_db_replica_up"); up != 1 {
		t.Errorf("nexus_db_replica_up = %v with the replica healthy", up)
	}
	if lag := gauge(t, s, metricsURL, "nexus_db_replica_lag_seconds"); lag < 0 || lag > 5 {
		t.Errorf("nexus_db_replica_lag_seconds = %v with the replica caught up", lag)
	}
	eventually(t, "the replica lists the admin", func() bool { return slices.Contains(s.userEmails(t, admin), email) })
	fams := scrapeFamilies(t, s, metricsURL)
	if fams["nexus_db_replica_fallbacks_total"] == nil || !hasSeries(fams["go_sql_open_connections"], map[string]string{"db_name": "nexus_replica"}) {
		t.Error("no nexus_db_replica_fallbacks_total, or no go_sql_* series of the replica's pool (db_name=nexus_replica)")
	}

	t.Run("within the bound the listings read the replica, auth the primary", func(t *testing.T) {
		before := replicaReads(t, s, metricsURL, "replica")
		// A user who will lose a role, logged in while the replica still replays.
		demoted := s.createUser(t, admin, "demoted@example.com")
		replica.CatchUp()
		_, demotedRefresh := s.login(t, "demoted@example.com", "a long enough password", client)

		replica.PauseReplay()
		fresh := s.createUser(t, admin, "fresh@example.com")
		eventID, body := eventBody(rng, "replica_paused")
		if status, r := s.postRaw(t, "/v2/analytics/events", admin, body); status != http.StatusAccepted {
			t.Fatalf("post event: %d %v", status, r)
		}
		// The listings do not show what the paused replica has not replayed.
		if emails := s.userEmails(t, admin); slices.Contains(emails, "fresh@example.com") {
			t.Errorf("listUsers shows a user the paused replica has not replayed: %v", emails)
		}
		if ids := s.eventIDs(t, admin); slices.Contains(ids, eventID) {
			t.Errorf("listEvents shows an event the paused replica has not replayed")
		}
		if after := replicaReads(t, s, metricsURL, "replica"); after < before+2 {
			t.Errorf("nexus_db_reads_total{target=replica} went from %v to %v over two listings", before, after)
		}
		// Auth and the single user read the primary: the new user logs in and is found at once; a role change
		// revokes the demoted user's sessions at once.
		s.login(t, "fresh@example.com", "a long enough password", client)
		if status, u := s.getJSON(t, "/v2/users/"+fresh, admin); status != http.StatusOK || u["email"] != "fresh@example.com" {
			t.Errorf("getUser of a user the replica has not replayed: %d %v", status, u)
		}
		if status, u := s.patch(t, "/v2/users/"+demoted, admin, map[string]any{"role": "analyst"}); status != http.StatusOK {
			t.Fatalf("change role: %d %v", status, u)
		}
		if status, r := s.rotate(t, demotedRefresh, client); status != http.StatusUnauthorized {
			t.Errorf("refresh after a role change, with the replica paused: %d %v, want 401", status, r)
		}
		if _, st, _ := s.replicaState(t); st != "healthy" {
			t.Errorf("a replica paused within the bound is %s", st)
		}

		replica.ResumeReplay()
		eventually(t, "the listings show the user and the event once replayed", func() bool {
			return slices.Contains(s.userEmails(t, admin), "fresh@example.com") && slices.Contains(s.eventIDs(t, admin), eventID)
		})
	})

	t.Run("a killed replica costs no request, and reads return to it", func(t *testing.T) {
		replica.Kill()
		// Listings and the summary right after the kill (before and after the check notices it) all succeed,
		// and see a user written meanwhile: they read the primary.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 15 {
					for _, path := range []string{"/v2/users?limit=100", "/v2/analytics/events?limit=10", "/v2/analytics/summary"} {
						req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
						req.Header.Set("Authorization", "Bearer "+admin)
						resp, err := s.client.Do(req)
						if err != nil {
							mu.Lock()
							failures = append(failures, fmt.Sprintf("worker %d, %d: %s: %v", w, i, path, err))
							mu.Unlock()
							continue
						}
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							mu.Lock()
							failures = append(failures, fmt.Sprintf("worker %d, %d: %s: %d", w, i, path, resp.StatusCode))
							mu.Unlock()
						}
					}
					time.Sleep(50 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		if len(failures) > 0 {
			t.Errorf("with the replica killed, %d requests failed:\n%s", len(failures), strings.Join(failures, "\n"))
		}
		s.awaitReplica(t, "unhealthy", "unreachable")
		if up := gauge(t, s, metricsURL, "nexus_db_replica_up"); up != 0 {
			t.Errorf("nexus_db_replica_up = %v with the replica down", up)
		}
		s.createUser(t, admin, "while-down@example.com")
		if emails := s.userEmails(t, admin); !slices.Contains(emails, "while-down@example.com") {
			t.Errorf("with the replica down, listUsers misses a user just created: %v", emails)
		}

		replica.Start()
		replica.CatchUp()
		s.awaitReplica(t, "healthy", "")
		replica.PauseReplay()
		s.createUser(t, admin, "back@example.com")
		if emails := s.userEmails(t, admin); slices.Contains(emails, "back@example.com") {
			t.Errorf("once the replica is back, listUsers still reads the primary: %v", emails)
		}
		replica.ResumeReplay()
		replica.CatchUp()
	})
	s.stop(t)

	t.Run("a replica behind the bound sends the reads to the primary", func(t *testing.T) {
		vars["NEXUS_REPLICA_MAX_LAG"] = "1s"
		s := start(t, vars, "serve", "--dev")
		m := metricsAt.FindStringSubmatch(s.stdout.String())
		if m == nil {
			t.Fatalf("no metrics address printed:\n%s", s.stdout)
		}
		metricsURL := m[1]
		admin, _ := s.login(t, email, password, client)
		s.awaitReplica(t, "healthy", "")

		replica.PauseReplay()
		s.createUser(t, admin, "late@example.com")
		eventID, body := eventBody(rng, "replica_lagging")
		if status, r := s.postRaw(t, "/v2/analytics/events", admin, body); status != http.StatusAccepted {
			t.Fatalf("post event: %d %v", status, r)
		}
		s.awaitReplica(t, "unhealthy", "lagging")
		if up := gauge(t, s, metricsURL, "nexus_db_replica_up"); up != 0 {
			t.Errorf("nexus_db_replica_up = %v with the replica lagging", up)
		}
		if lag := gauge(t, s, metricsURL, "nexus_db_replica_lag_seconds"); lag <= 1 {
			t.Errorf("nexus_db_replica_lag_seconds = %v with the replica lagging past 1s", lag)
		}
		if emails := s.userEmails(t, admin); !slices.Contains(emails, "late@example.com") {
			t.Errorf("with the replica lagging, listUsers misses a user just created: %v", emails)
		}
		if ids := s.eventIDs(t, admin); !slices.Contains(ids, eventID) {
			t.Errorf("with the replica lagging, listEvents misses an event just stored")
		}
		// Every event of the test so far (one per subtest), counted from the primary's rollups.
		s.summaryTotal(t, admin, "", 2)

		replica.ResumeReplay()
		s.awaitReplica(t, "healthy", "")
		if emails := s.userEmails(t, admin); !slices.Contains(emails, "late@example.com") {
			t.Errorf("the caught-up replica misses a user: %v", emails)
		}
	})
}
