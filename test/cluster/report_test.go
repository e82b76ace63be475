//go:build linux

package cluster

import (
	"fmt"
	"os"
	"strings"
	"time"
)

type restartTiming struct {
	node    string
	out     time.Duration // from the signal until HAProxy took it out of the rotation
	stopped time.Duration // from the signal to the exit
	back    time.Duration // from the new start to HAProxy's UP
	how     string
}

// report is what the summary table shows besides the recorder's counts.
type report struct {
	restarts         []restartTiming
	acked, stored    int
	lost, duplicated int
	summaryTotal     int
	pgRecovery       time.Duration // from PostgreSQL's start to the first 2xx of the load
	pgOutage         time.Duration // stop and start
	redisDegraded    time.Duration // from Redis's kill until every node reports degraded limits
	redisRecovery    time.Duration // from Redis's start until no node does
	revocationWorst  time.Duration
	revocationTrials int
	rotation         string
	budget           string
	noNode           string // HAProxy's answer with every node down
	lines            []string
}

// print writes the Markdown summary to standard output.
func (r *report) print(c *cluster) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Cluster test: %d nodes behind HAProxy, %d workers\n\n", nodeCount, workerCount)
	fmt.Fprintf(&b, "| phase | requests |")
	for o := range outcomes {
		fmt.Fprintf(&b, " %s |", outcomeNames[o])
	}
	fmt.Fprintf(&b, "\n|---|---:|%s\n", strings.Repeat("---:|", int(outcomes)))
	for p := range phases {
		var total int64
		for o := range outcomes {
			total += c.rec.counts[p][o].Load()
		}
		if total == 0 {
			continue
		}
		fmt.Fprintf(&b, "| %s | %d |", phaseNames[p], total)
		for o := range outcomes {
			fmt.Fprintf(&b, " %d |", c.rec.counts[p][o].Load())
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\n| measure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| events acknowledged (202) / stored | %d / %d |\n", r.acked, r.stored)
	fmt.Fprintf(&b, "| lost / duplicated | %d / %d |\n", r.lost, r.duplicated)
	fmt.Fprintf(&b, "| getAnalyticsSummary total | %d |\n", r.summaryTotal)
	for _, rt := range r.restarts {
		fmt.Fprintf(&b, "| %s %s: out of HAProxy's rotation / exit / back in rotation after restart | %v / %v / %v |\n",
			rt.node, rt.how, round(rt.out), round(rt.stopped), round(rt.back))
	}
	if r.pgOutage > 0 {
		fmt.Fprintf(&b, "| PostgreSQL restart: stop+start / first 2xx after start | %v / %v |\n", round(r.pgOutage), round(r.pgRecovery))
	}
	if r.redisRecovery > 0 {
		fmt.Fprintf(&b, "| Redis killed: every node degraded after / shared again after restart | %v / %v |\n", round(r.redisDegraded), round(r.redisRecovery))
	}
	if r.revocationTrials > 0 {
		fmt.Fprintf(&b, "| worst revocation lag (logout on one node → 401 on the others, %d logouts) | %v |\n", r.revocationTrials, round(r.revocationWorst))
	}
	if r.rotation != "" {
		fmt.Fprintf(&b, "| signing key rotation | %s |\n", r.rotation)
	}
	if r.noNode != "" {
		fmt.Fprintf(&b, "| HAProxy with every node down | %s |\n", r.noNode)
	}
	if r.budget != "" {
		fmt.Fprintf(&b, "| one rate-limit budget across the nodes | %s |\n", r.budget)
	}
	for _, l := range r.lines {
		fmt.Fprintf(&b, "| %s |\n", l)
	}
	fmt.Fprint(os.Stdout, b.String())
}

func round(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
