package httpapi

import "time"

// ReplicaStatus is the state of the read replica that the listings and the summary read (app converts the
// store's): for /readyz and the metrics.
type ReplicaStatus struct {
	Healthy bool          // the listings and the summary read the replica
	Reason  string        // why they do not: starting, unreachable, not_a_standby or lagging; "" while healthy
	Lag     time.Duration // how far behind the replica was at the last check; negative while unknown
	Since   time.Time     // when the replica last became healthy or unhealthy; zero before the first check
	// ReplicaReads and PrimaryReads count the replica-eligible reads by the server that answered them;
	// Fallbacks those that failed on the replica and were run again on the primary.
	ReplicaReads, PrimaryReads, Fallbacks int64
}

// replicaReadiness is the replica block of /readyz: informative only, since the primary alone is enough to
// serve.
type replicaReadiness struct {
	Status     string   `json:"status"` // healthy or unhealthy
	Reason     string   `json:"reason,omitempty"`
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	Since      string   `json:"since,omitempty"`
}

func (s *Server) replicaReadiness() *replicaReadiness {
	if s.replica == nil {
		return nil
	}
	st := s.replica()
	r := &replicaReadiness{Status: "unhealthy", Reason: st.Reason}
	if st.Healthy {
		r.Status = "healthy"
	}
	if st.Lag >= 0 {
		lag := st.Lag.Seconds()
		r.LagSeconds = &lag
	}
	if !st.Since.IsZero() {
		r.Since = st.Since.UTC().Format(time.RFC3339Nano)
	}
	return r
}
