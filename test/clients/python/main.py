"""The Nexus Core API from Python, through a client generated from openapi.yaml.

    openapi-python-client generate --path openapi.yaml --meta none --output-path nexus_client

Logs in, lists the users and reads its own with its permissions, records analytics events (one, a duplicate, a
batch of two), lists them and reads their summary, refreshes, logs out, then handles the API's errors as typed
Problem values.
Needs NEXUS_API (the base URL, ending in /v2), NEXUS_EMAIL, NEXUS_PASSWORD and NEXUS_CLIENT_ID.
"""

import datetime
import os
import sys
import time
import uuid
from typing import Any, NoReturn

import httpx
from nexus_client import AuthenticatedClient, Client, errors
from nexus_client.api.analytics import get_analytics_summary, list_events, track_event, track_event_batch
from nexus_client.api.auth import login, logout, refresh_token
from nexus_client.api.users import get_user, list_users
from nexus_client.models import (
    AnalyticsSummary,
    EventAccepted,
    EventAcceptedStatus,
    EventBatch,
    EventBatchResult,
    EventList,
    EventProperties,
    EventRequest,
    EventResultStatus,
    LoginRequest,
    Permission,
    Problem,
    RefreshRequest,
    Role,
    TokenResponse,
    TokenResponseTokenType,
    User,
    UserList,
)
from nexus_client.types import Response, Unset


def fail(message: str) -> NoReturn:
    print(f"python client: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def env(name: str) -> str:
    return os.environ.get(name) or fail(f"{name} is not set")


def summary(problem: Problem | None) -> str:
    return f"{problem.status} {problem.code}: {problem.detail}" if problem else "no response"


def expect_problem(what: str, response: Response[Any], status: int, code: str) -> Problem:
    """Checks that a call failed the way the contract says: the HTTP status, and a problem+json body whose
    `status`, `code` and `request_id` agree with it."""
    problem = response.parsed
    if response.status_code != status or not isinstance(problem, Problem):
        fail(f"{what}: want {status} {code}, got {response.status_code}: {response.content!r}")
    if not response.headers.get("Content-Type", "").startswith("application/problem+json"):
        fail(f"{what}: Content-Type is {response.headers.get('Content-Type')}")
    if problem.status != status or problem.code != code:
        fail(f"{what}: want {status} {code}, got problem {problem.status} {problem.code}: {problem.detail}")
    if not problem.request_id or problem.request_id != response.headers.get("X-Request-Id"):
        fail(f"{what}: request_id {problem.request_id} is not the X-Request-Id header")
    print(f"python client: {what}: {problem.status} {problem.code} (request_id {problem.request_id})")
    return problem


def analytics(signed_in: AuthenticatedClient) -> None:
    """Records one event (202), sends it again (a duplicate: the first event's id, nothing new stored), records a
    batch of two, lists the three events and waits until the background processor has counted them in the summary,
    then sends an event from before 2000 (400, the typed Problem). Its events have a source and a name of their own,
    so that nothing else the server stores is counted with them."""
    name, category, source = "contract_check_python", "contract", "contract-check-python"
    properties = EventProperties.from_dict({"client": "python", "attempt": 1})
    event = EventRequest(
        event_id=uuid.uuid4(), event_name=name, event_category=category, source=source, properties=properties
    )
    accepted = track_event.sync(client=signed_in, body=event)
    if not isinstance(accepted, EventAccepted):
        fail(f"trackEvent: {summary(accepted)}")
    if accepted.duplicate or accepted.event_id != event.event_id or accepted.status != EventAcceptedStatus.ACCEPTED:
        fail(f"trackEvent: unexpected receipt {accepted.to_dict()}")
    print(f"python client: trackEvent: 202, event {accepted.event_id} stored as {accepted.id}")

    again = track_event.sync(client=signed_in, body=event)
    if not isinstance(again, EventAccepted) or not again.duplicate or again.id != accepted.id:
        fail(f"trackEvent again: want duplicate true and id {accepted.id}, got {again}")
    print(f"python client: trackEvent again: 202, duplicate of {again.id}")

    batch = track_event_batch.sync(
        client=signed_in,
        body=EventBatch(
            events=[
                EventRequest(event_id=uuid.uuid4(), event_name=name, event_category=category, source=source),
                EventRequest(event_id=uuid.uuid4(), event_name=name, event_category=category, source=source),
            ]
        ),
    )
    if not isinstance(batch, EventBatchResult):
        fail(f"trackEventBatch: {summary(batch)}")
    statuses = [(r.index, r.status) for r in batch.results]
    if (batch.accepted, batch.duplicates, batch.rejected) != (2, 0, 0) or statuses != [
        (0, EventResultStatus.ACCEPTED),
        (1, EventResultStatus.ACCEPTED),
    ]:
        fail(f"trackEventBatch: unexpected result {batch.to_dict()}")
    print(f"python client: trackEventBatch: 202, {batch.accepted} accepted")

    page = list_events.sync(client=signed_in, source=source, limit=10)
    if not isinstance(page, EventList):
        fail(f"listEvents: {summary(page)}")
    listed = [e for e in page.data if e.id == accepted.id]
    times = [e.timestamp for e in page.data]
    newest_first = times == sorted(times, reverse=True)
    if len(page.data) != 3 or page.has_more or page.next_cursor is not None or not newest_first or not listed:
        fail(f"listEvents: want the 3 events of this program, got {page.to_dict()}")
    if listed[0].properties.to_dict() != {"client": "python", "attempt": 1}:
        fail(f"listEvents: the first event has properties {listed[0].properties.to_dict()}")
    print(f"python client: listEvents: {len(page.data)} events, newest first")

    # The summary counts what the background processor has processed: within about two seconds.
    deadline = time.monotonic() + 15
    while True:
        counts = get_analytics_summary.sync(client=signed_in, event_name=name)
        if not isinstance(counts, AnalyticsSummary):
            fail(f"getAnalyticsSummary: {summary(counts)}")
        if counts.total == 3 and [c.event_category for c in counts.data] == [category]:
            print(f"python client: getAnalyticsSummary: {counts.total} events from {counts.from_} to {counts.to}")
            break
        if time.monotonic() > deadline:
            fail(f"getAnalyticsSummary: want 3 events of {name} counted, got {counts.to_dict()}")
        time.sleep(0.2)

    # A rule JSON Schema cannot express: no timestamp before 2000. The 400 names the field.
    early = datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
    invalid = expect_problem(
        "trackEvent from 1999",
        track_event.sync_detailed(
            client=signed_in, body=EventRequest(event_name=name, event_category=category, timestamp=early)
        ),
        400,
        "validation_failed",
    )
    pointers = [e.pointer for e in invalid.errors or []]
    if pointers != ["/timestamp"]:
        fail(f"trackEvent from 1999: errors point at {pointers}, want ['/timestamp']")
    print(f"python client: errors: /timestamp: {(invalid.errors or [])[0].detail}")


def main() -> None:
    email, password, client_id = env("NEXUS_EMAIL"), env("NEXUS_PASSWORD"), env("NEXUS_CLIENT_ID")
    # raise_on_unexpected_status: a status that the contract does not list raises errors.UnexpectedStatus.
    api = Client(base_url=env("NEXUS_API"), raise_on_unexpected_status=True)

    # Log in.
    session = login.sync(client=api, body=LoginRequest(email=email, password=password, client_id=client_id))
    if not isinstance(session, TokenResponse):
        fail(f"login: {summary(session)}")
    if session.token_type != TokenResponseTokenType.BEARER or session.user.email.lower() != email.lower():
        fail(f"login: unexpected token_type {session.token_type} or user {session.user.email}")
    print(
        f"python client: logged in as {session.user.email} ({session.user.role}), "
        f"access token for {session.expires_in}s"
    )

    # The users of the organization: the seeded user is one of them, and an admin, so it may list them all and read
    # its own record with its permissions (and without its activity, which it did not ask for).
    signed_in = AuthenticatedClient(
        base_url=env("NEXUS_API"), token=session.access_token, raise_on_unexpected_status=True
    )
    page = list_users.sync(client=signed_in, limit=100)
    if not isinstance(page, UserList):
        fail(f"listUsers: {summary(page)}")
    if session.user.id not in [u.id for u in page.data] or page.pagination.total < len(page.data):
        fail(f"listUsers: {len(page.data)} of {page.pagination.total} users, without {session.user.id}")
    print(f"python client: listUsers: {len(page.data)} of {page.pagination.total} users")
    me = get_user.sync(session.user.id, client=signed_in, include_permissions=True)
    if not isinstance(me, User):
        fail(f"getUser: {summary(me)}")
    if isinstance(me.permissions, Unset):
        fail("getUser: no permissions with include_permissions=true")
    permissions: list[Permission] = me.permissions
    if (
        me.id != session.user.id
        or me.role != Role.ADMIN
        or Permission.USERSWRITE not in permissions
        or not isinstance(me.activity, Unset)
    ):
        fail(f"getUser: unexpected user {me.id} ({me.role}) with permissions {', '.join(permissions)}")
    print(f"python client: getUser: {me.email} ({me.role}) has {len(permissions)} permissions")

    analytics(signed_in)

    # Refresh: a new access token and a new refresh token; the old refresh token is spent.
    tokens = refresh_token.sync(
        client=api,
        body=RefreshRequest(
            refresh_token=session.refresh_token, client_id=client_id, device_id="contract-check-python"
        ),
    )
    if not isinstance(tokens, TokenResponse):
        fail(f"refresh: {summary(tokens)}")
    if tokens.refresh_token == session.refresh_token:
        fail("refresh: the refresh token did not rotate")
    print("python client: refreshed; the refresh token rotated")

    # Log out with the new access token: 204, no body. Authenticated operations take an AuthenticatedClient.
    authed = AuthenticatedClient(base_url=env("NEXUS_API"), token=tokens.access_token, raise_on_unexpected_status=True)
    response = logout.sync_detailed(client=authed)
    if response.status_code != 204:
        fail(f"logout: want 204, got {response.status_code}")
    print("python client: logged out (204)")

    # The session is revoked, so its access token no longer works.
    again = logout.sync_detailed(client=authed)
    expect_problem("logout again with the revoked token", again, 401, "unauthenticated")
    challenge = again.headers.get("WWW-Authenticate", "")
    if not challenge.startswith("Bearer "):
        fail(f"logout again: want a WWW-Authenticate: Bearer header, got {challenge!r}")
    print(f"python client: WWW-Authenticate: {challenge}")

    # A wrong password.
    expect_problem(
        "login with a wrong password",
        login.sync_detailed(
            client=api, body=LoginRequest(email=email, password=password + "-wrong", client_id=client_id)
        ),
        401,
        "invalid_credentials",
    )

    # A request the contract rejects: `errors` names the failing field with a JSON Pointer into the body.
    invalid = expect_problem(
        "login with an invalid email",
        login.sync_detailed(
            client=api, body=LoginRequest(email="not-an-email", password=password, client_id=client_id)
        ),
        400,
        "validation_failed",
    )
    field_errors = invalid.errors or []
    pointers = [e.pointer for e in field_errors]
    if pointers != ["/email"]:
        fail(f"login with an invalid email: errors point at {pointers}, want ['/email']")
    print(f"python client: errors: {field_errors[0].pointer}: {field_errors[0].detail}")

    print("python client: OK")


if __name__ == "__main__":
    try:
        main()
    except (httpx.HTTPError, errors.UnexpectedStatus) as err:
        fail(f"unexpected error: {err!r}")
