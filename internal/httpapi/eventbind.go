package httpapi

import (
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
)

// eventRule is the contract's rule of events (x-nexus-rules: event on EventRequest): the analytics rules beyond
// the schema, reported with the schema's failures, and the one-pass decoding of events into the bodies the event
// handlers bind.
func eventRule(a AnalyticsService) contract.Rule {
	r := contract.Rule{Bind: toEventRequest, Batch: toEventBatch}
	if a != nil {
		r.Check = a.CheckRaw
	}
	return r
}

// toEventRequest makes the event of a flat object's members; false if one does not convert as the binder would
// convert it (which a value the schema accepts always does), or is not a member of gen.EventRequest.
func toEventRequest(members []contract.Member) (any, bool) {
	var ev gen.EventRequest
	id := func(text string) (*openapi_types.UUID, bool) {
		u, err := uuid.Parse(text)
		return &u, err == nil
	}
	for _, m := range members {
		if !m.Set {
			continue
		}
		ok := true
		switch m.Name {
		case "event_id":
			ev.EventId, ok = id(m.Text)
		case "user_id":
			ev.UserId, ok = id(m.Text)
		case "event_name":
			ev.EventName = m.Text
		case "event_category":
			ev.EventCategory = m.Text
		case "source":
			src := m.Text
			ev.Source = &src
		case "timestamp":
			var t time.Time
			ok = t.UnmarshalText([]byte(m.Text)) == nil
			ev.Timestamp = &t
		case "properties":
			props := gen.EventProperties(m.Raw)
			ev.Properties = &props
		default:
			ok = false
		}
		if !ok {
			return nil, false
		}
	}
	return &ev, true
}

// toEventBatch makes the batch body of its events' values (nil for the items the validator refused, which the
// handler skips: their failing fields come from contract.ItemErrors).
func toEventBatch(items []any) any {
	batch := &gen.EventBatch{Events: make([]gen.EventRequest, len(items))}
	for i, v := range items {
		if ev, ok := v.(*gen.EventRequest); ok {
			batch.Events[i] = *ev
		}
	}
	return batch
}
