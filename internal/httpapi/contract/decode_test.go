package contract

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

const base = "/v2"

// eventOps returns the operations of the contract that take events: trackEvent and trackEventBatch.
func eventOps(t testing.TB) (*openapi3.T, *Operation, *Operation) {
	t.Helper()
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	ops, err := Index(spec, base)
	if err != nil {
		t.Fatal(err)
	}
	single, batch := ops["POST "+base+"/analytics/events"], ops["POST "+base+"/analytics/events/batch"]
	if single == nil || batch == nil {
		t.Fatal("the contract has no trackEvent or trackEventBatch")
	}
	return spec, single, batch
}

// TestOnePassServes checks that a rule with Bind gets the one-pass decoder for exactly the operations whose
// body or items name it, single and batch alike: a change of the contract that the pass does not understand
// turns it off silently (every request still validated, by kin-openapi), so this test says so.
func TestOnePassServes(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	bind := func(m []Member) (any, bool) { return m, true }
	k, err := New(spec, Config{Base: base, Rules: map[string]Rule{"event": {Bind: bind, Batch: func(items []any) any { return items }}}})
	if err != nil {
		t.Fatal(err)
	}
	for key, op := range k.Operations() {
		if want := op.ruleName == "event"; op.OnePass() != want {
			t.Errorf("%s (x-nexus-rules %q): one pass %v", key, op.ruleName, op.OnePass())
		}
	}
	for _, id := range []string{"trackEvent", "trackEventBatch"} {
		found := false
		for _, op := range k.Operations() {
			found = found || op.ID() == id && op.OnePass()
		}
		if !found {
			t.Errorf("%s is not decoded in one pass", id)
		}
	}
	if _, err := New(spec, Config{Base: base}); err == nil {
		t.Error("New accepted a contract whose x-nexus-rules names a rule it was not given")
	}
}

// TestAcceptedTexts checks the memo of accepted texts: a text is found only once added, and the memo is
// per member (a name accepted is not thereby an accepted category).
func TestAcceptedTexts(t *testing.T) {
	spec, single, _ := eventOps(t)
	dec := flatDecoder(spec, single)
	name := dec.members[dec.byName["event_name"]]
	if name.accepted == nil || dec.members[dec.byName["event_id"]].accepted != nil {
		t.Fatal("event_name has no memo, or event_id (a uuid) has one")
	}
	if name.accepted.has("signup") {
		t.Fatal("an empty memo has a text")
	}
	vals := dec.newMembers()
	if !dec.decode([]byte(`{"event_name":"signup","event_category":"onboarding"}`), vals) {
		t.Fatal("a valid event refused")
	}
	if !name.accepted.has("signup") || name.accepted.has("onboarding") {
		t.Error("the memo of event_name does not have exactly the name accepted")
	}
	// A category the schema refuses stays refused, whatever the names accepted.
	if dec.decode([]byte(`{"event_name":"signup","event_category":""}`), vals) {
		t.Error("an empty category accepted")
	}
}
