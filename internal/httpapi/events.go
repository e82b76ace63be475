package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/nexus-cloud/nexus-core/gen"
	"github.com/nexus-cloud/nexus-core/internal/analytics"
	"github.com/nexus-cloud/nexus-core/internal/httpapi/contract"
	"github.com/nexus-cloud/nexus-core/internal/nexus"
)

// AnalyticsService is what the HTTP layer needs from the analytics domain.
type AnalyticsService interface {
	Track(ctx context.Context, p nexus.Principal, in analytics.Input) (analytics.Receipt, error)
	TrackBatch(ctx context.Context, p nexus.Principal, ins []analytics.Input) ([]analytics.Result, error)
	List(ctx context.Context, p nexus.Principal, q analytics.ListQuery) (analytics.Page, error)
	Summary(ctx context.Context, p nexus.Principal, q analytics.SummaryQuery) (analytics.Summary, error)
	// CheckRaw applies the event rules beyond the schema to a raw event that failed its schema.
	CheckRaw(raw []byte) []nexus.FieldError
}

var _ AnalyticsService = (*analytics.Service)(nil)

// TrackEvent implements gen.StrictServerInterface.
func (s *Server) TrackEvent(ctx context.Context, req gen.TrackEventRequestObject) (gen.TrackEventResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.analytics.Track(ctx, p, toInput(*req.Body))
	if err != nil {
		return nil, err
	}
	return gen.TrackEvent202JSONResponse{Body: gen.EventAccepted{
		Id: uuid.MustParse(r.ID), EventId: uuid.MustParse(r.EventID), Status: gen.EventAcceptedStatusAccepted, Duplicate: r.Duplicate,
		ReceivedAt: r.ReceivedAt, Timestamp: r.Timestamp,
	}}, nil
}

// TrackEventBatch implements gen.StrictServerInterface. Items the validator refused are rejected with its
// fields; the others go to the service, and each gets its own result.
func (s *Server) TrackEventBatch(ctx context.Context, req gen.TrackEventBatchRequestObject) (gen.TrackEventBatchResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	invalid := contract.ItemErrors(ctx)
	events := req.Body.Events
	ins := make([]analytics.Input, 0, len(events))
	at := make([]int, 0, len(events))
	for i, ev := range events {
		if _, bad := invalid[i]; bad {
			continue
		}
		ins = append(ins, toInput(ev))
		at = append(at, i)
	}
	results, err := s.analytics.TrackBatch(ctx, p, ins)
	if err != nil {
		return nil, err
	}
	body := gen.EventBatchResult{Results: make([]gen.EventResult, len(events))}
	for i, fields := range invalid {
		body.Results[i] = rejected(i, nexus.Invalid(fields...), "")
	}
	for k, r := range results {
		i := at[k]
		if r.Err != nil {
			body.Results[i] = rejected(i, r.Err, "/events/"+strconv.Itoa(i))
			continue
		}
		status := gen.EventResultStatusAccepted
		if r.Receipt.Duplicate {
			status = gen.EventResultStatusDuplicate
		}
		id, eventID := uuid.MustParse(r.Receipt.ID), uuid.MustParse(r.Receipt.EventID)
		received, ts := r.Receipt.ReceivedAt, r.Receipt.Timestamp
		body.Results[i] = gen.EventResult{Index: i, Status: status, Id: &id, EventId: &eventID, ReceivedAt: &received, Timestamp: &ts}
	}
	for _, r := range body.Results {
		switch r.Status {
		case gen.EventResultStatusAccepted:
			body.Accepted++
		case gen.EventResultStatusDuplicate:
			body.Duplicates++
		default:
			body.Rejected++
		}
	}
	return gen.TrackEventBatch202JSONResponse{Body: body}, nil
}

// rejected is the result of a refused batch item. Field pointers relative to the event get prefix.
func rejected(i int, err error, prefix string) gen.EventResult {
	var ne *nexus.Error
	if !errors.As(err, &ne) {
		ne = nexus.Internal(err)
	}
	e := gen.EventError{Code: gen.EventErrorCode(ne.Code), Detail: ne.Message}
	if ne.Code == nexus.CodeValidationFailed {
		e.Detail = "The event has 1 invalid field."
		if len(ne.Fields) != 1 {
			e.Detail = fmt.Sprintf("The event has %d invalid fields.", len(ne.Fields))
		}
	}
	if len(ne.Fields) > 0 {
		fields := make([]nexus.FieldError, len(ne.Fields))
		for k, f := range ne.Fields {
			if f.In == nexus.InBody {
				f.Name = prefix + f.Name
			}
			fields[k] = f
		}
		e.Errors = toFieldErrors(fields)
	}
	return gen.EventResult{Index: i, Status: gen.EventResultStatusRejected, Error: &e}
}

func toInput(ev gen.EventRequest) analytics.Input {
	in := analytics.Input{Name: ev.EventName, Category: ev.EventCategory, Timestamp: ev.Timestamp}
	if ev.EventId != nil {
		in.EventID = ev.EventId.String()
	}
	if ev.Properties != nil {
		in.Properties = *ev.Properties
	}
	if ev.UserId != nil {
		in.UserID = ev.UserId.String()
	}
	if ev.Source != nil {
		in.Source = *ev.Source
	}
	return in
}

// ListEvents implements gen.StrictServerInterface.
func (s *Server) ListEvents(ctx context.Context, req gen.ListEventsRequestObject) (gen.ListEventsResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	prm := req.Params
	q := analytics.ListQuery{From: prm.From, To: prm.To}
	if prm.EventName != nil {
		q.Name = *prm.EventName
	}
	if prm.EventCategory != nil {
		q.Category = *prm.EventCategory
	}
	if prm.UserId != nil {
		q.UserID = prm.UserId.String()
	}
	if prm.Source != nil {
		q.Source = *prm.Source
	}
	if prm.Limit != nil {
		q.Limit = *prm.Limit
	}
	if prm.Cursor != nil {
		c, err := analytics.DecodeCursor(*prm.Cursor)
		if err != nil {
			return nil, err
		}
		q.After = &c
	}
	page, err := s.analytics.List(ctx, p, q)
	if err != nil {
		return nil, err
	}
	body := gen.EventList{Data: make([]gen.Event, len(page.Events)), HasMore: page.HasMore}
	for i, ev := range page.Events {
		body.Data[i] = gen.Event{
			Id: uuid.MustParse(ev.ID), EventId: uuid.MustParse(ev.EventID), EventName: ev.Name, EventCategory: ev.Category,
			Timestamp: ev.Timestamp, ReceivedAt: ev.ReceivedAt, UserId: uuid.MustParse(ev.UserID), Properties: ev.Properties,
		}
		if ev.Source != "" {
			src := ev.Source
			body.Data[i].Source = &src
		}
	}
	if page.Next != nil {
		c := analytics.EncodeCursor(*page.Next)
		body.NextCursor = &c
	}
	return gen.ListEvents200JSONResponse{Body: body, Headers: gen.ListEvents200ResponseHeaders{CacheControl: &privateNoStore}}, nil
}

// GetAnalyticsSummary implements gen.StrictServerInterface.
func (s *Server) GetAnalyticsSummary(ctx context.Context, req gen.GetAnalyticsSummaryRequestObject) (gen.GetAnalyticsSummaryResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	prm := req.Params
	var q analytics.SummaryQuery
	if prm.From != nil {
		q.From = prm.From.Format(time.DateOnly)
	}
	if prm.To != nil {
		q.To = prm.To.Format(time.DateOnly)
	}
	if prm.EventName != nil {
		q.Name = *prm.EventName
	}
	if prm.EventCategory != nil {
		q.Category = *prm.EventCategory
	}
	sum, err := s.analytics.Summary(ctx, p, q)
	if err != nil {
		return nil, err
	}
	body := gen.AnalyticsSummary{From: toDate(sum.From), To: toDate(sum.To), Total: int(sum.Total), Data: make([]gen.EventCount, len(sum.Counts))}
	for i, c := range sum.Counts {
		body.Data[i] = gen.EventCount{Date: toDate(c.Day), EventName: c.Name, EventCategory: c.Category, Count: int(c.Count)}
	}
	return gen.GetAnalyticsSummary200JSONResponse{Body: body, Headers: gen.GetAnalyticsSummary200ResponseHeaders{CacheControl: &privateNoStore}}, nil
}

func toDate(day string) openapi_types.Date {
	t, _ := time.Parse(time.DateOnly, day)
	return openapi_types.Date{Time: t}
}
