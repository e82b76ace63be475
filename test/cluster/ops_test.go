//go:build linux

package cluster

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/google/uuid"
)

func newEventBody(rng *rand.Rand, name string) (string, []byte) {
	id := uuid.Must(uuid.NewRandomFromReader(rngReader{rng})).String()
	b, _ := json.Marshal(map[string]any{"event_id": id, "event_name": name, "event_category": "cluster",
		"properties": map[string]any{"n": rng.IntN(1000)}})
	return id, b
}

// rngReader reads random bytes from a seeded generator: event_ids differ between workers and runs (the seed
// includes the time) but come from the worker's own generator.
type rngReader struct{ r *rand.Rand }

func (g rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(g.r.Uint32())
	}
	return len(p), nil
}

// eventAck is the part of EventAccepted the workload checks.
type eventAck struct {
	EventID   string `json:"event_id"`
	Duplicate bool   `json:"duplicate"`
}

func (w *worker) trackEvent() bool {
	id, body := newEventBody(w.rng, fmt.Sprintf("op_%d", w.rng.IntN(4)))
	w.rec.mu.Lock()
	w.rec.sent[id] = true
	w.rec.mu.Unlock()
	a, ok := w.do("trackEvent", "POST", "/v2/analytics/events", func() []byte { return body }, w.bearer, 202)
	if !ok {
		return false
	}
	var ack eventAck
	if err := json.Unmarshal(a.body, &ack); err != nil || ack.EventID != id {
		w.err = fmt.Errorf("trackEvent: answer %.200s for event_id %s", a.body, id)
		return false
	}
	w.rec.mu.Lock()
	w.rec.acked[id]++
	w.rec.mu.Unlock()
	if len(w.events) < 200 {
		w.events = append(w.events, body)
	}
	return true
}

func (w *worker) trackBatch() bool {
	const n = 10
	ids := make([]string, n)
	events := make([]json.RawMessage, n)
	w.rec.mu.Lock()
	for i := range events {
		ids[i], events[i] = newEventBody(w.rng, "batch_op")
		w.rec.sent[ids[i]] = true
	}
	w.rec.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"events": events})
	a, ok := w.do("trackEventBatch", "POST", "/v2/analytics/events/batch", func() []byte { return body }, w.bearer, 202)
	if !ok {
		return false
	}
	var res struct {
		Accepted, Duplicates, Rejected int
		Results                        []struct {
			Status  string `json:"status"`
			EventID string `json:"event_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(a.body, &res); err != nil || res.Rejected != 0 || len(res.Results) != n {
		w.err = fmt.Errorf("trackEventBatch: answer %.300s", a.body)
		return false
	}
	w.rec.mu.Lock()
	for i, r := range res.Results {
		if r.EventID == ids[i] && (r.Status == "accepted" || r.Status == "duplicate") {
			w.rec.acked[ids[i]]++
		}
	}
	w.rec.mu.Unlock()
	return true
}

// resend sends an acknowledged event again: 202 with duplicate true, nothing new stored.
func (w *worker) resend() bool {
	if len(w.events) == 0 {
		return w.trackEvent()
	}
	body := w.events[w.rng.IntN(len(w.events))]
	a, ok := w.do("trackEvent (duplicate)", "POST", "/v2/analytics/events", func() []byte { return body }, w.bearer, 202)
	if !ok {
		return false
	}
	var ack eventAck
	if err := json.Unmarshal(a.body, &ack); err != nil || !ack.Duplicate {
		w.err = fmt.Errorf("a resent event was not answered as a duplicate: %.200s", a.body)
		return false
	}
	return true
}

// conflict sends an acknowledged event_id with another event: 409.
func (w *worker) conflict() bool {
	if len(w.events) == 0 {
		return w.trackEvent()
	}
	var ev map[string]any
	_ = json.Unmarshal(w.events[w.rng.IntN(len(w.events))], &ev)
	ev["event_name"] = "conflicting"
	body, _ := json.Marshal(ev)
	_, ok := w.do("trackEvent (conflict)", "POST", "/v2/analytics/events", func() []byte { return body }, w.bearer, 409)
	return ok
}
