// Command clientcheck uses the Nexus Core API through a Go client generated from openapi.yaml by oapi-codegen
// (see oapi-codegen.yaml; test/clients/run.sh writes it to nexusclient/). It logs in, lists the users and reads its
// own with its permissions, records analytics events (one, a duplicate, a batch of two), lists them and reads their
// summary, refreshes, logs out, then handles the API's errors as typed Problem values.
//
// It needs NEXUS_API (the base URL, ending in /v2), NEXUS_EMAIL, NEXUS_PASSWORD and NEXUS_CLIENT_ID.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"nexus-clients-test/nexusclient"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "go client: FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fail("%s is not set", name)
	}
	return v
}

// bearer adds the access token to a request.
func bearer(token string) nexusclient.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}

// expectProblem checks that a call failed the way the contract says: the HTTP status, and a problem+json body
// whose status, code and request_id agree with it. The generated response structs have one typed field per
// documented status (ApplicationproblemJSON401 and so on); the caller passes the one it expects.
func expectProblem(what string, rsp *http.Response, problem *nexusclient.Problem, status int, code string) *nexusclient.Problem {
	if rsp.StatusCode != status || problem == nil {
		fail("%s: want %d %s, got %d", what, status, code, rsp.StatusCode)
	}
	if ct := rsp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		fail("%s: Content-Type is %q", what, ct)
	}
	if problem.Status != status || problem.Code != code {
		fail("%s: want %d %s, got problem %d %s: %s", what, status, code, problem.Status, problem.Code, problem.Detail)
	}
	if problem.RequestId == "" || problem.RequestId != rsp.Header.Get("X-Request-Id") {
		fail("%s: request_id %q is not the X-Request-Id header", what, problem.RequestId)
	}
	fmt.Printf("go client: %s: %d %s (request_id %s)\n", what, problem.Status, problem.Code, problem.RequestId)
	return problem
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	email, password, clientID := env("NEXUS_EMAIL"), env("NEXUS_PASSWORD"), env("NEXUS_CLIENT_ID")
	api, err := nexusclient.NewClientWithResponses(env("NEXUS_API"))
	if err != nil {
		fail("client: %v", err)
	}

	// Log in. Every call returns a transport or decoding error, or a response with one typed field per status.
	// (The generated Email type checks the address when it is marshalled: an invalid one is an error here, before
	// any request is sent.)
	login, err := api.LoginWithResponse(ctx, nexusclient.LoginRequest{
		Email: openapi_types.Email(email), Password: password, ClientId: clientID,
	})
	if err != nil {
		fail("login: %v", err)
	}
	session := login.JSON200
	if session == nil {
		fail("login: %d %s", login.StatusCode(), login.Body)
	}
	if session.TokenType != nexusclient.Bearer || !strings.EqualFold(string(session.User.Email), email) {
		fail("login: unexpected token_type %s or user %s", session.TokenType, session.User.Email)
	}
	fmt.Printf("go client: logged in as %s (%s), access token for %ds\n", session.User.Email, session.User.Role, session.ExpiresIn)

	// The users of the organization: the seeded user is one of them, and an admin, so it may list them all and read
	// its own record with its permissions (and without its activity, which it did not ask for).
	limit := 100
	list, err := api.ListUsersWithResponse(ctx, &nexusclient.ListUsersParams{Limit: &limit}, bearer(session.AccessToken))
	if err != nil {
		fail("listUsers: %v", err)
	}
	page := list.JSON200
	if page == nil {
		fail("listUsers: %d %s", list.StatusCode(), list.Body)
	}
	listed := slices.ContainsFunc(page.Data, func(u nexusclient.User) bool { return u.Id == session.User.Id })
	if !listed || page.Pagination.Total < len(page.Data) {
		fail("listUsers: %d of %d users, without %s", len(page.Data), page.Pagination.Total, session.User.Id)
	}
	fmt.Printf("go client: listUsers: %d of %d users\n", len(page.Data), page.Pagination.Total)
	includePermissions := true
	got, err := api.GetUserWithResponse(ctx, session.User.Id,
		&nexusclient.GetUserParams{IncludePermissions: &includePermissions}, bearer(session.AccessToken))
	if err != nil {
		fail("getUser: %v", err)
	}
	me := got.JSON200
	if me == nil {
		fail("getUser: %d %s", got.StatusCode(), got.Body)
	}
	if me.Permissions == nil {
		fail("getUser: no permissions with include_permissions=true")
	}
	permissions := *me.Permissions
	if me.Id != session.User.Id || me.Role != nexusclient.Admin || !slices.Contains(permissions, nexusclient.UsersWrite) ||
		me.Activity != nil {
		fail("getUser: unexpected user %s (%s) with permissions %v", me.Id, me.Role, permissions)
	}
	fmt.Printf("go client: getUser: %s (%s) has %d permissions\n", me.Email, me.Role, len(permissions))

	analytics(ctx, api, bearer(session.AccessToken))

	// Refresh: a new access token and a new refresh token; the old refresh token is spent.
	device := "contract-check-go"
	refresh, err := api.RefreshTokenWithResponse(ctx, nexusclient.RefreshRequest{
		RefreshToken: session.RefreshToken, ClientId: clientID, DeviceId: &device,
	})
	if err != nil {
		fail("refresh: %v", err)
	}
	tokens := refresh.JSON200
	if tokens == nil {
		fail("refresh: %d %s", refresh.StatusCode(), refresh.Body)
	}
	if tokens.RefreshToken == session.RefreshToken {
		fail("refresh: the refresh token did not rotate")
	}
	fmt.Println("go client: refreshed; the refresh token rotated")

	// Log out with the new access token: 204, no body.
	logout, err := api.LogoutWithResponse(ctx, bearer(tokens.AccessToken))
	if err != nil {
		fail("logout: %v", err)
	}
	if logout.StatusCode() != http.StatusNoContent {
		fail("logout: want 204, got %d %s", logout.StatusCode(), logout.Body)
	}
	fmt.Println("go client: logged out (204)")

	// The session is revoked, so its access token no longer works.
	again, err := api.LogoutWithResponse(ctx, bearer(tokens.AccessToken))
	if err != nil {
		fail("logout again: %v", err)
	}
	expectProblem("logout again with the revoked token", again.HTTPResponse, again.ApplicationproblemJSON401, 401, "unauthenticated")
	// The headers the contract declares for a response are parsed into a typed struct too.
	if h := again.Headers401; h == nil || h.WWWAuthenticate == nil || !strings.HasPrefix(*h.WWWAuthenticate, "Bearer ") {
		fail("logout again: want a WWW-Authenticate: Bearer header, got %+v", h)
	}
	fmt.Printf("go client: WWW-Authenticate: %s\n", *again.Headers401.WWWAuthenticate)

	// A wrong password.
	wrong, err := api.LoginWithResponse(ctx, nexusclient.LoginRequest{
		Email: openapi_types.Email(email), Password: password + "-wrong", ClientId: clientID,
	})
	if err != nil {
		fail("login with a wrong password: %v", err)
	}
	expectProblem("login with a wrong password", wrong.HTTPResponse, wrong.ApplicationproblemJSON401, 401, "invalid_credentials")

	// A request the contract rejects: errors names the failing field with a JSON Pointer into the body. (An email
	// that Go's net/mail accepts but the contract does not: a domain needs a dot.)
	bad, err := api.LoginWithResponse(ctx, nexusclient.LoginRequest{
		Email: openapi_types.Email("ada@localhost"), Password: password, ClientId: clientID,
	})
	if err != nil {
		fail("login with an invalid email: %v", err)
	}
	invalid := expectProblem("login with an invalid email", bad.HTTPResponse, bad.ApplicationproblemJSON400, 400, "validation_failed")
	if invalid.Errors == nil || len(*invalid.Errors) != 1 {
		fail("login with an invalid email: want one error, got %+v", invalid.Errors)
	}
	fieldErr := (*invalid.Errors)[0]
	if fieldErr.Pointer == nil || *fieldErr.Pointer != "/email" {
		fail("login with an invalid email: want pointer /email, got %+v", fieldErr)
	}
	fmt.Printf("go client: errors: %s: %s\n", *fieldErr.Pointer, fieldErr.Detail)

	fmt.Println("go client: OK")
}

// newUUID returns a random (version 4) UUID, as a client makes the event_id of an event it may have to resend.
func newUUID() openapi_types.UUID {
	var id openapi_types.UUID
	if _, err := rand.Read(id[:]); err != nil {
		fail("event_id: %v", err)
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// analytics records one event (202), sends it again (a duplicate: the first event's id, nothing new stored), records
// a batch of two, lists the three events and waits until the background processor has counted them in the summary,
// then sends an event from before 2000 (400, the typed Problem). Its events have a source and a name of their own,
// so that nothing else the server stores is counted with them.
func analytics(ctx context.Context, api *nexusclient.ClientWithResponses, auth nexusclient.RequestEditorFn) {
	name, category, source := "contract_check_go", "contract", "contract-check-go"
	properties := nexusclient.EventProperties(json.RawMessage(`{"client":"go","attempt":1}`))
	event := nexusclient.EventRequest{
		EventId: ptr(newUUID()), EventName: name, EventCategory: category, Source: &source, Properties: &properties,
	}
	first, err := api.TrackEventWithResponse(ctx, event, auth)
	if err != nil {
		fail("trackEvent: %v", err)
	}
	accepted := first.JSON202
	if accepted == nil {
		fail("trackEvent: %d %s", first.StatusCode(), first.Body)
	}
	if accepted.Duplicate || accepted.EventId != *event.EventId || accepted.Status != nexusclient.EventAcceptedStatusAccepted {
		fail("trackEvent: unexpected receipt %+v", *accepted)
	}
	fmt.Printf("go client: trackEvent: 202, event %s stored as %s\n", accepted.EventId, accepted.Id)

	again, err := api.TrackEventWithResponse(ctx, event, auth)
	if err != nil {
		fail("trackEvent again: %v", err)
	}
	if again.JSON202 == nil || !again.JSON202.Duplicate || again.JSON202.Id != accepted.Id {
		fail("trackEvent again: want 202 with duplicate true and id %s, got %d %s", accepted.Id, again.StatusCode(), again.Body)
	}
	fmt.Printf("go client: trackEvent again: 202, duplicate of %s\n", again.JSON202.Id)

	batch, err := api.TrackEventBatchWithResponse(ctx, nexusclient.EventBatch{Events: []nexusclient.EventRequest{
		{EventId: ptr(newUUID()), EventName: name, EventCategory: category, Source: &source},
		{EventId: ptr(newUUID()), EventName: name, EventCategory: category, Source: &source},
	}}, auth)
	if err != nil {
		fail("trackEventBatch: %v", err)
	}
	result := batch.JSON202
	if result == nil {
		fail("trackEventBatch: %d %s", batch.StatusCode(), batch.Body)
	}
	if result.Accepted != 2 || result.Duplicates != 0 || result.Rejected != 0 || len(result.Results) != 2 ||
		result.Results[0].Status != nexusclient.EventResultStatusAccepted || result.Results[1].Index != 1 {
		fail("trackEventBatch: unexpected result %s", batch.Body)
	}
	fmt.Printf("go client: trackEventBatch: 202, %d accepted\n", result.Accepted)

	limit := 10
	list, err := api.ListEventsWithResponse(ctx, &nexusclient.ListEventsParams{Source: &source, Limit: &limit}, auth)
	if err != nil {
		fail("listEvents: %v", err)
	}
	page := list.JSON200
	if page == nil {
		fail("listEvents: %d %s", list.StatusCode(), list.Body)
	}
	listed := slices.ContainsFunc(page.Data, func(e nexusclient.Event) bool {
		var props map[string]any
		return e.Id == accepted.Id && json.Unmarshal(e.Properties, &props) == nil && props["client"] == "go"
	})
	newestFirst := slices.IsSortedFunc(page.Data, func(a, b nexusclient.Event) int { return b.Timestamp.Compare(a.Timestamp) })
	if len(page.Data) != 3 || page.HasMore || page.NextCursor != nil || !newestFirst || !listed {
		fail("listEvents: want the 3 events of this program, the first with its properties, got %s", list.Body)
	}
	fmt.Printf("go client: listEvents: %d events, newest first\n", len(page.Data))

	// The summary counts what the background processor has processed: within about two seconds.
	deadline := time.Now().Add(15 * time.Second)
	for {
		sum, err := api.GetAnalyticsSummaryWithResponse(ctx, &nexusclient.GetAnalyticsSummaryParams{EventName: &name}, auth)
		if err != nil {
			fail("getAnalyticsSummary: %v", err)
		}
		if sum.JSON200 == nil {
			fail("getAnalyticsSummary: %d %s", sum.StatusCode(), sum.Body)
		}
		if sum.JSON200.Total == 3 && len(sum.JSON200.Data) == 1 && sum.JSON200.Data[0].EventCategory == category {
			fmt.Printf("go client: getAnalyticsSummary: %d events from %s to %s\n", sum.JSON200.Total, sum.JSON200.From, sum.JSON200.To)
			break
		}
		if time.Now().After(deadline) {
			fail("getAnalyticsSummary: want 3 events of %s counted, got %s", name, sum.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// A rule JSON Schema cannot express: no timestamp before 2000. The 400 names the field.
	early := time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)
	old, err := api.TrackEventWithResponse(ctx,
		nexusclient.EventRequest{EventName: name, EventCategory: category, Timestamp: &early}, auth)
	if err != nil {
		fail("trackEvent from 1999: %v", err)
	}
	invalid := expectProblem("trackEvent from 1999", old.HTTPResponse, old.ApplicationproblemJSON400, 400,
		"validation_failed")
	if invalid.Errors == nil || len(*invalid.Errors) != 1 {
		fail("trackEvent from 1999: want one error, got %+v", invalid.Errors)
	}
	fieldErr := (*invalid.Errors)[0]
	if fieldErr.Pointer == nil || *fieldErr.Pointer != "/timestamp" {
		fail("trackEvent from 1999: want pointer /timestamp, got %+v", fieldErr)
	}
	fmt.Printf("go client: errors: %s: %s\n", *fieldErr.Pointer, fieldErr.Detail)
}

func ptr[T any](v T) *T { return &v }
