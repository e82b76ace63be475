"""Schemathesis hooks of the Nexus Core contract run; test/contract/schemathesis.sh loads them (SCHEMATHESIS_HOOKS).

They need what test/contract/lib.sh exports: NEXUS_API and the seeded NEXUS_EMAIL, NEXUS_PASSWORD, NEXUS_CLIENT_ID.

- Links: a link's `x-nexus-request-body` (the members of the target's body it fills, which OpenAPI 3.0 cannot say)
  becomes the object `requestBody` Schemathesis reads, in the loaded copy of the contract (`before_load_schema`).
- Authentication: operations that take a bearer token (bearerAuth, oauth2) get an access token from a real login. It is cached, except
  for operations that revoke the session of the token they are called with (`logout`): each of those requests gets
  a session of its own, so the cached token stays valid for every other request. Any 401 to an authenticated
  request makes Schemathesis drop the cached token, log in again and replay the request once (`retry_on`).
  Operations with `security: []` get no Authorization header. The `ignored_auth` check keeps its meaning: it
  replays successful authenticated requests without a token and with a corrupted one and expects 401.
- Client authentication at the OAuth endpoints (`issueToken`, `revokeToken`, `introspectToken`: `clientSecretBasic`
  or none, never a bearer token): the hooks create, once per server, a service client with every scope
  (`tokens:introspect` included) through the API as the seeded admin, and a stand-in client (below); the
  Schemathesis invocations of schemathesis.sh share them through the file NEXUS_CONTRACT_FIXTURES, since a
  secret is shown once. Positive requests authenticate as that service client: by HTTP Basic (`client_secret_basic`,
  a generated `client_id` in the body becoming its client_id: another one is `400`), or, when the generated body
  has a `client_secret`, by `client_id` and `client_secret` in the body (`client_secret_post`: with an
  Authorization header too it is `400`, two methods). A well-formed request of a client that does not exist, or
  with a wrong secret, is `401 invalid_client` (all three say so). Negative requests get the Basic header unless
  their body names a client itself (`client_id` or `client_secret`), and go out as generated otherwise.
- Positive login bodies carry the seeded credentials half of the time, so that the 200 answer of `login` (and,
  through the contract's `TokenIssued` links, of `refreshToken`) is checked against the contract, and the stateful
  phase has tokens to follow. Negative bodies are left as generated.
- Positive-data rewrites. Each one keeps positive data to a rule that the contract states, with the status it
  produces, and that no JSON Schema construct can state: a size in bytes (`maxLength` counts characters), a rule
  across fields, the database's state, or the server's clock. With all of them switched off, Schemathesis' positive
  data runs into these rules and no other (the issue 12 audit: the gate's seed and another, positive data only,
  and by hand the rules no generated case reached), so none is left that a change to the spec could fix. They run in `before_call`, so that every phase gets them, coverage included, and Schemathesis
  revalidates the case afterwards: a fixed-up case is judged by what is really sent. Negative data goes out as
  generated (apart from sparing the seeded admin, below).
  - Byte length: positive `login` and `createUser` passwords keep within 1,024 bytes of UTF-8 (`400` otherwise;
    LoginRequest and CreateUserRequest say so).
  - Database state, `createUser`: the email address becomes one never used before (a run-unique token in place of
    the first characters of the local part): an address already in use, in any organization, is `409 conflict`
    (createUser says so).
  - Database state, `getUser` and `updateUser`: requests go to users that exist: an id no response has shown yet
    (a random UUID, a contract example, a link Schemathesis could not resolve) is replaced by one that some
    response has (`after_call` collects them). A well-formed id of no user is `404` (both operations say so), so
    these operations keep the strict 2xx of positive data; the ids Schemathesis follows through links are real
    already and stay.
  - Database state, `trackEvent` and every event of `trackEventBatch`: a `user_id` that is not one of the
    organization's known users (the contract examples, random UUIDs) becomes one of them (`422 unknown_user`, or
    a rejected event in a batch; trackEvent says so); the seeded admin holds `events:write_any_user`. An
    `event_id` becomes a fresh UUID, unless the event is an exact retry of one the server accepted under that
    `event_id` in this run (the contract's `retry` link, or the same event twice in a batch): a reused `event_id`
    with a different event is `409 conflict` (trackEvent says so).
  - The server's clock, and a comparison of instants: an event's `timestamp` outside [2000-01-01T00:00:00Z, the
    server's clock + 1 hour] is replaced by one inside, derived from the generated one (`400`; EventRequest says
    so). The upper bound moves with the clock; the lower one depends on the UTC offset
    (`1999-12-31T23:30:00-01:00` is accepted, `2000-01-01T00:30:00+01:00` is not), which a pattern could say
    only by enumerating the offsets.
  - Sizes in bytes, and rules at every depth: event `properties` lose NUL characters, containers nested deeper
    than 5 levels (they become null), members beyond 255 per object and, largest first, top-level members until
    the object is at most 32 KiB as compact JSON (measured with every non-ASCII character escaped, which is never
    shorter than what the server measures, and keeps a `trackEvent` body within its 64 KiB as sent); a batch loses
    the `properties` of its largest events until the body is at most 1 MiB. Each property rule is `400` (a
    rejected event in a batch), a body over its limit `413` (EventProperties, trackEventBatch and "Conventions" say
    so). OpenAPI 3.0 has no `propertyNames` for NUL in member names, and a schema per nesting level would change
    the type every generated client gives `properties`.
  - An opaque token: a `listEvents` `cursor` that no `listEvents` answer returned (generated, or a contract
    example) becomes one that an answer did, or is left out while none did (`400`; listEvents says so). The
    pattern gives its alphabet; what a cursor encodes is not part of the contract.
  - A rule across fields, and the server's clock: in `getAnalyticsSummary`, `from` after `to`, or more than 365
    days before it (with `to` defaulting to today, UTC), is `400` (its `from` says so); such a pair is made valid
    (swapped, or `from` moved closer to `to`), and a lone `from` that today rules out gets a `to` 29 days after it.
  - The OAuth grant, `issueToken`: a positive `grant_type` other than `refresh_token` becomes
    `client_credentials` (any grant type but these two is `400 unsupported_grant_type`), and a `scope` naming
    anything but scopes the client was granted keeps the names it has that are (or becomes one of them) (`400
    invalid_scope`; issueToken and the error codes say so). Neither is left to the schema, on purpose: RFC 6749
    §5.2 gives both their own error codes, which OAuth libraries read, and an `enum` or a `pattern` would make
    them `invalid_request`; and what a client was granted is database state. A positive `refresh_token` grant
    gets what that grant needs: a refresh token of a new session of the seeded login client, which sends its
    `client_id` alone (a refresh token that was never issued is `400 invalid_grant`).
  - Database state, `getClient`, `updateClient`, `addClientSecret` and `revokeClientSecret`: requests go to
    service clients that exist: a `clientId` no response has shown yet (generated from the pattern, a contract
    example, a link Schemathesis inferred from another field, such as a secret's id) is replaced by one that
    some response has (`after_call` collects them). A well-formed client_id of no client is `404` (all four
    say so).
  - Database state, `revokeClientSecret`: the `secretId` becomes one of the client's secrets that is not revoked
    (one no other request is revoking; the hooks add one through the API when the client has none left):
    revoking a secret that is revoked, or not the client's, is `404` (revokeClientSecret says so).
  - Database state, `addClientSecret`: before a positive request that would be the client's third secret that
    is not revoked, the hooks revoke its oldest one through the API, counting the requests in flight (`409
    conflict`; addClientSecret says so).
  - The server's clock: `createClient`'s `secret_expires_at` and `addClientSecret`'s `expires_at` that are not
    at least 10 minutes in the future become an instant between a day and ten years ahead, derived from the
    generated one (`400`: "in the future", both say so).
  - Not rewritten, `createClient`: an organization holds at most 100 service clients and nothing deletes one,
    while a run creates more than that; a positive createClient is `201` until the organization is full and
    `409 conflict` afterwards (ClientConflict says so). schemathesis.toml accepts 409 for it, and the check
    `client_limits` holds each 409 to the organization holding exactly 100 clients.
- The service client these hooks authenticate with is never changed: `updateClient`, `addClientSecret` and
  `revokeClientSecret` requests aimed at it (positive or negative data) go to the stand-in client instead, and
  positive requests of those are never pointed at it. Disabling it, taking a scope away or revoking its secret
  would turn every later OAuth request into `401` or `400`. Nothing these hooks send can reach the seeded
  admin's own sessions: `revokeToken` revokes only tokens issued to the client that asks.
- The seeded admin these hooks log in as is never changed: dependency analysis infers links from `login`'s
  `user.id` and from `listUsers`' `data[].id` to `updateUser`, so an `updateUser` aimed at that user (positive or
  negative data) goes to a stand-in admin the hooks create instead. Demoting or deactivating the seeded admin
  would end the run (every later request 401/403); and with the seeded admin always an active admin, `409
  last_admin` cannot happen to positive data either.
- Checks: `analytics_receipts` holds the 2xx answers to what the contract promises beyond their schema: a fresh
  `event_id` is stored (`duplicate: false`), an exact retry is `duplicate: true` with the first event's `id`;
  every event of a batch has its result at its index, an event its schema refuses is `rejected` with
  `validation_failed` and pointers into it, and every event of a positive batch is accepted (or a duplicate of
  the same event earlier in the batch); and a `202` to a batch needs a valid envelope. With that check in place,
  `202` is an expected answer to negative `trackEventBatch` data (schemathesis.toml): the events of a batch are
  judged one by one, so a batch whose envelope is valid is `202` even when every event in it is invalid.
  `client_limits` fails a `409` to `createClient` that is not `conflict`, or while the organization holds fewer
  than 100 service clients.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import itertools
import json
import os
import re
import secrets
import threading
import urllib.parse
import uuid
from datetime import date, datetime, timedelta, timezone

import requests
import schemathesis
from hypothesis import strategies as st

# CPython before 3.13 keeps the AST constructor's recursion depth in state shared by all threads, so two threads in
# ast.parse at once can fail with "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905).
# Hypothesis parses the source of lambdas to describe strategies, and Schemathesis' workers (schemathesis.toml) do
# so at once: the coverage phase failed so, now and then. One lock around ast.parse serializes the parsing only.
_ast_lock = threading.Lock()
_ast_parse = ast.parse


def _parse_serialized(*args, **kwargs):
    with _ast_lock:
        return _ast_parse(*args, **kwargs)


ast.parse = _parse_serialized

API = os.environ["NEXUS_API"].rstrip("/")
EMAIL = os.environ["NEXUS_EMAIL"]
PASSWORD = os.environ["NEXUS_PASSWORD"]
CLIENT_ID = os.environ["NEXUS_CLIENT_ID"]

# Operations that revoke the session of the token they are called with.
REVOKING_OPERATIONS = frozenset({"logout"})

# --- links -----------------------------------------------------------------------------------------------------


# An OpenAPI 3.0 link gives the target's request body only whole (`requestBody`: one literal or one runtime
# expression), and openapi-generator refuses anything but a string there. Where a link fills members of the body,
# the contract names them in `x-nexus-request-body` instead (the TokenIssued link to refreshToken: `refresh_token`
# from the response, `client_id` from the request), each a runtime expression. Schemathesis reads exactly that from
# an object `requestBody` (each member evaluated and merged into the generated body), so the loaded copy of the
# contract gets one; the file is left as it is.
LINK_BODY_EXTENSION = "x-nexus-request-body"


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    pending = [raw_schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            links = node.get("links")
            for link in links.values() if isinstance(links, dict) else ():
                if isinstance(link, dict) and isinstance(link.get(LINK_BODY_EXTENSION), dict):
                    if "requestBody" in link:
                        raise ValueError(f"a link has both requestBody and {LINK_BODY_EXTENSION}: {link}")
                    link["requestBody"] = dict(link[LINK_BODY_EXTENSION])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    _scopes[:] = raw_schema["components"]["schemas"]["Scope"]["enum"]


# --- generated data --------------------------------------------------------------------------------------------


# LoginRequest.password: "At most 1,024 bytes", which JSON Schema cannot say (its maxLength: 1024 counts
# characters). The server answers a longer password 400, by design (TestLoginPasswords), so positive data keeps to it.
MAX_PASSWORD_BYTES = 1024


def _within_documented_limits(body):
    # A map, not a filter: the stateful phase is sensitive to the shape of the data generation.
    if isinstance(body, dict) and isinstance(body.get("password"), str):
        password = body["password"]
        while len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
            password = password[:-1]
        return {**body, "password": password}
    return body


def _with_seeded_credentials(body):
    # Positive bodies are plain objects; negative ones come wrapped with what was mutated, and stay as they are.
    if isinstance(body, dict):
        return {**body, "email": EMAIL, "password": PASSWORD, "client_id": CLIENT_ID}
    return body


@schemathesis.hook("before_generate_body").apply_to(operation_id="login")
def login_bodies(context, strategy):
    strategy = strategy.map(_within_documented_limits)
    return st.one_of(strategy, strategy.map(_with_seeded_credentials))


# --- authentication --------------------------------------------------------------------------------------------


def _login() -> dict:
    """Log in with the seeded credentials; the TokenResponse of a new session."""
    r = requests.post(
        f"{API}/auth/login",
        json={"email": EMAIL, "password": PASSWORD, "client_id": CLIENT_ID},
        timeout=30,
    )
    if r.status_code != 200:
        raise RuntimeError(f"login with the seeded credentials failed: {r.status_code} {r.text[:300]}")
    return r.json()


def login() -> str:
    """Log in with the seeded credentials and return the access token of a new session."""
    return _login()["access_token"]


def _requires_auth(ctx) -> bool:
    """Whether the operation takes a bearer access token (its own `security`, else the document's): `bearerAuth`
    or `oauth2`. The OAuth endpoints' `clientSecretBasic` is client authentication, which `before_call` sets."""
    definition = ctx.operation.definition.raw
    security = definition.get("security", ctx.operation.schema.raw_schema.get("security", []))
    return any("bearerAuth" in requirement or "oauth2" in requirement for requirement in security)


# refresh_interval: log in again every 5 minutes anyway (access tokens live 15 minutes).
@schemathesis.auth(refresh_interval=300, retry_on=[401]).apply_to(_requires_auth)
class NexusBearer:
    def get(self, case, ctx):
        return login()

    def set(self, case, data, ctx):
        token = data
        if ctx.operation.definition.raw.get("operationId") in REVOKING_OPERATIONS:
            token = login()  # a session of its own: the cached one must outlive this request
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


# --- users -----------------------------------------------------------------------------------------------------

# Ids of users known to exist: every 2xx answer that names a user names one of the seeded admin's organization (the
# only organization these hooks' tokens reach), and users are never removed. A dict, for a stable order.
_known_users: dict[str, None] = {}
_lock = threading.RLock()
_fixtures: dict[str, str] = {}  # "admin": the seeded admin's id; "stand_in": the id of its stand-in

# Email addresses of positive createUser bodies: "nx" (so never the seeded admin's), a token of this process (the
# Schemathesis invocations of schemathesis.sh share one server) and a counter. Only the addresses depend on it;
# what Schemathesis generates still depends on the seed alone.
_RUN_TOKEN = secrets.token_hex(3)
_email_counter = itertools.count(1)


def _user_id(value) -> str | None:
    """The user id a path value names as the server reads it (percent-decoded, any case), or None."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(urllib.parse.unquote(value).strip()))
    except ValueError:
        return None


def _remember(value) -> None:
    user_id = _user_id(value)
    if user_id is not None:
        with _lock:  # the workers are threads: no insertion while another one copies the ids
            _known_users.setdefault(user_id, None)


def _seeded_admin_id() -> str:
    with _lock:
        if "admin" not in _fixtures:
            _fixtures["admin"] = _user_id(_login()["user"]["id"])
            _remember(_fixtures["admin"])
        return _fixtures["admin"]


def _stand_in_id() -> str:
    """An active admin of the seeded organization, created once, that takes the updateUser requests Schemathesis
    aims at the seeded admin."""
    with _lock:
        if "stand_in" not in _fixtures:
            r = requests.post(
                f"{API}/users",
                headers={"Authorization": f"Bearer {login()}"},
                json={
                    "email": f"contract-stand-in-{_RUN_TOKEN}@example.com",
                    "name": "Contract stand-in for the seeded admin",
                    "role": "admin",
                    "password": secrets.token_urlsafe(24),
                },
                timeout=30,
            )
            if r.status_code != 201:
                raise RuntimeError(f"creating the stand-in admin failed: {r.status_code} {r.text[:300]}")
            _fixtures["stand_in"] = _user_id(r.json()["id"])
            _remember(_fixtures["stand_in"])
        return _fixtures["stand_in"]


def _unique_email(email: str) -> str:
    """`email` with a token never used before in place of the first characters of its local part (or in place of
    all of it, when it is shorter), so that the address stays valid and, where it can, keeps its length."""
    local, _, domain = email.rpartition("@")
    token = f"nx{_RUN_TOKEN}{next(_email_counter):x}"
    # The rest of a dot-atom after its first characters is empty, or starts with a dot or atext, and never ends
    # with a dot: after the token, it is a dot-atom again.
    local = token + local[len(token):]
    room = 254 - 1 - len(domain)  # Email's maxLength
    if len(local) > room:
        local = local[: max(len(token), room)].rstrip(".")
    return f"{local}@{domain}"


def _is_positive(case) -> bool:
    return case.meta is not None and case.meta.generation.mode == schemathesis.GenerationMode.POSITIVE


def _fix_up_create_user(case) -> None:
    body = case.body
    if isinstance(body, dict):
        body = _within_documented_limits(body)  # the password: at most 1,024 bytes, as for login
        if isinstance(body.get("email"), str) and "@" in body["email"]:
            body = {**body, "email": _unique_email(body["email"])}
        case.body = body


def _fix_up_user_id(case, operation_id: str) -> None:
    """Point a positive request at an existing user when its id is one no response has shown."""
    params = case.path_parameters or {}
    admin = _seeded_admin_id()
    with _lock:
        if _user_id(params.get("userId")) in _known_users:
            return
        candidates = [i for i in _known_users if not (operation_id == "updateUser" and i == admin)]
    if not candidates:
        candidates = [_stand_in_id() if operation_id == "updateUser" else _seeded_admin_id()]
    generated = _user_id(params.get("userId"))
    pick = uuid.UUID(generated).int if generated else len(str(params.get("userId")))
    case.path_parameters = {**params, "userId": candidates[pick % len(candidates)]}


def _spare_the_seeded_admin(case) -> None:
    """Send an updateUser aimed at the seeded admin (positive or negative data) to the stand-in instead."""
    params = case.path_parameters or {}
    if _user_id(params.get("userId")) == _seeded_admin_id():
        case.path_parameters = {**params, "userId": _stand_in_id()}


# --- analytics -------------------------------------------------------------------------------------------------

EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=timezone.utc)
# The server refuses timestamps more than an hour ahead of its clock; positive data stays well inside.
FUTURE_MARGIN = timedelta(minutes=50)
MAX_PROPERTIES_BYTES = 32 * 1024
MAX_PROPERTIES_DEPTH = 5
MAX_PROPERTIES_MEMBERS = 255
MAX_BATCH_BODY_BYTES = 1024 * 1024
SUMMARY_MAX_DAYS_BEFORE_TO = 365
SUMMARY_DEFAULT_DAYS_BEFORE_TO = 29

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$"
)

# Events the server accepted in this process, by event_id: the event (canonical JSON, without its event_id) and
# the id of the stored event. An event sent again exactly as it was is a retry and keeps its event_id.
_accepted_events: dict[str, tuple[str, str]] = {}
# Event ids that positive requests sent again as retries: the server must answer them as duplicates.
_retried_events: set[str] = set()
# Cursors that listEvents answers returned.
_cursors: dict[str, None] = {}


def _instant(value: str) -> datetime | None:
    """The instant an RFC 3339 date-time names, or None when Python cannot represent it."""
    m = _RFC3339.match(value)
    if not m:
        return None
    year, month, day, hour, minute, second, fraction, sign, off_h, off_m = m.groups()
    try:
        offset = timedelta(hours=int(off_h), minutes=int(off_m)) if sign else timedelta(0)
        tz = timezone(-offset if sign == "-" else offset)
        micros = int((fraction or "0")[:6].ljust(6, "0"))
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=tz)
        return local.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def _timestamp_in_range(value):
    """`value` when it is a timestamp the server accepts, else one that it does, derived from `value`."""
    if not isinstance(value, str):
        return value
    now = datetime.now(timezone.utc)
    t = _instant(value)
    if t is not None and EARLIEST_EVENT <= t <= now + FUTURE_MARGIN:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
    span = int((now - EARLIEST_EVENT).total_seconds())
    t = EARLIEST_EVENT + timedelta(
        seconds=int.from_bytes(digest[:8], "big") % span, microseconds=int.from_bytes(digest[8:12], "big") % 10**6
    )
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _compact_size(value) -> int:
    """Bytes of `value` as compact JSON with every non-ASCII character escaped: never fewer than the server's
    measure (compact, UTF-8, invalid text as U+FFFD)."""
    return len(json.dumps(value, separators=(",", ":")))


def _within_property_rules(value, depth: int = 1):
    """`value` (the properties object at depth 1) without NUL characters, containers deeper than allowed and
    members beyond the limit per object."""
    if isinstance(value, dict):
        if depth > MAX_PROPERTIES_DEPTH:
            return None
        out = {}
        for key, member in value.items():
            if len(out) >= MAX_PROPERTIES_MEMBERS:
                break
            out[key.replace("\x00", "")] = _within_property_rules(member, depth + 1)
        return out
    if isinstance(value, list):
        if depth > MAX_PROPERTIES_DEPTH:
            return None
        return [_within_property_rules(member, depth + 1) for member in value]
    if isinstance(value, str):
        return value.replace("\x00", "")
    return value


def _within_property_size(props: dict) -> dict:
    props = dict(props)
    while props and _compact_size(props) > MAX_PROPERTIES_BYTES:
        del props[max(props, key=lambda k: _compact_size({k: props[k]}))]
    return props


def _event_key(event: dict) -> str:
    """The event as canonical JSON, without its event_id: what makes a retry the same event."""
    return json.dumps({k: v for k, v in event.items() if k != "event_id"}, sort_keys=True, separators=(",", ":"))


def _fix_up_event(event, in_batch: dict[str, str] | None = None):
    """A positive event (of trackEvent or of a batch) that keeps to the documented rules; see the docstring."""
    if not isinstance(event, dict):
        return event
    event = dict(event)
    if "timestamp" in event:
        event["timestamp"] = _timestamp_in_range(event["timestamp"])
    if isinstance(event.get("properties"), dict):
        event["properties"] = _within_property_size(_within_property_rules(event["properties"]))
    if "user_id" in event and isinstance(event["user_id"], str):
        _seeded_admin_id()
        with _lock:
            if _user_id(event["user_id"]) not in _known_users:
                candidates = list(_known_users)
                generated = _user_id(event["user_id"])
                pick = uuid.UUID(generated).int if generated else len(event["user_id"])
                event["user_id"] = candidates[pick % len(candidates)]
    if "event_id" in event and isinstance(event["event_id"], str):
        key = _event_key(event)
        event_id = _user_id(event["event_id"])
        with _lock:
            accepted = _accepted_events.get(event_id) if event_id else None
            if in_batch is not None and event_id in in_batch:
                keep = in_batch[event_id] == key  # the same event twice in one batch: stored once
            elif accepted is not None and accepted[0] == key:
                keep = True  # an exact retry of an accepted event
                _retried_events.add(event_id)
            else:
                keep = False
        if not keep:
            event["event_id"] = str(uuid.uuid4())
        if in_batch is not None:
            in_batch.setdefault(_user_id(event["event_id"]), key)
    return event


def _fix_up_track_event(case) -> None:
    case.body = _fix_up_event(case.body)


def _fix_up_track_event_batch(case) -> None:
    body = case.body
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        return
    in_batch: dict[str, str] = {}
    events = [_fix_up_event(event, in_batch) for event in body["events"]]
    body = {**body, "events": events}
    while len(json.dumps(body)) > MAX_BATCH_BODY_BYTES:
        sizes = [(_compact_size(e.get("properties")), i) for i, e in enumerate(events) if isinstance(e, dict)]
        size, i = max(sizes, default=(0, -1))
        if size == 0:
            break
        events[i] = {k: v for k, v in events[i].items() if k != "properties"}
        body = {**body, "events": events}
    case.body = body


def _fix_up_list_events(case) -> None:
    query = dict(case.query or {})
    if "cursor" not in query:
        return
    with _lock:
        if query["cursor"] in _cursors:
            return
        cursors = list(_cursors)
    if cursors:
        query["cursor"] = cursors[len(str(query["cursor"])) % len(cursors)]
    else:
        del query["cursor"]
    case.query = query


def _day(value) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


def _fix_up_summary(case) -> None:
    query = dict(case.query or {})
    first, last = _day(query.get("from")), _day(query.get("to"))
    max_span = timedelta(days=SUMMARY_MAX_DAYS_BEFORE_TO)
    if first is not None and last is not None:
        if first > last:
            first, last = last, first
        if last - first > max_span:
            first = last - timedelta(days=(last - first).days % (SUMMARY_MAX_DAYS_BEFORE_TO + 1))
        query["from"], query["to"] = first.isoformat(), last.isoformat()
    elif first is not None:
        today = datetime.now(timezone.utc).date()
        if first > today or today - first > max_span:
            try:
                query["to"] = (first + timedelta(days=SUMMARY_DEFAULT_DAYS_BEFORE_TO)).isoformat()
            except OverflowError:
                query["to"] = date.max.isoformat()
    else:
        return
    case.query = query


_ANALYTICS_FIX_UPS = {
    "trackEvent": _fix_up_track_event,
    "trackEventBatch": _fix_up_track_event_batch,
    "listEvents": _fix_up_list_events,
    "getAnalyticsSummary": _fix_up_summary,
}


def _remember_accepted(event, event_id, stored_id) -> None:
    if isinstance(event, dict) and isinstance(event_id, str) and isinstance(stored_id, str):
        with _lock:
            _accepted_events.setdefault(event_id, (_event_key(event), stored_id))


# --- service clients and the OAuth endpoints -------------------------------------------------------------------

OAUTH_OPERATIONS = frozenset({"issueToken", "revokeToken", "introspectToken"})
CLIENT_OPERATIONS = frozenset(
    {"listClients", "createClient", "getClient", "updateClient", "addClientSecret", "revokeClientSecret"}
)
# The operations that name a client in their path, and those of them that change it.
CLIENT_ID_OPERATIONS = frozenset({"getClient", "updateClient", "addClientSecret", "revokeClientSecret"})
CLIENT_CHANGING_OPERATIONS = frozenset({"updateClient", "addClientSecret", "revokeClientSecret"})
MAX_CLIENTS = 100  # per organization (createClient, ClientConflict)
MAX_SECRETS = 2  # not revoked, per client (addClientSecret)
# Expiry times of positive data are at least this far ahead of the clock, so that they are still in the future
# when the server reads them.
EXPIRY_MARGIN = timedelta(minutes=10)
_CLIENT_ID = re.compile(r"nxc_[a-z2-7]{26}")

# Where the fixture clients are kept between the Schemathesis invocations of one schemathesis.sh run (they share
# one server, and a secret is shown once); without it, each process creates its own.
FIXTURES_FILE = os.environ.get("NEXUS_CONTRACT_FIXTURES", "")

_scopes: list[str] = []  # the Scope enum of the contract (before_load_schema)
# "service": the service client these hooks authenticate as at the OAuth endpoints (client_id, client_secret,
# secret_id), granted every scope; "stand_in": the client that takes the changes aimed at it.
_fixture: dict[str, dict] = {}
_known_clients: dict[str, None] = {}  # client_ids that responses have shown, in the seeded admin's organization
_claimed_secrets: set[str] = set()  # secrets that a positive request or these hooks revoke, or are about to
_pending_secrets: dict[str, int] = {}  # positive addClientSecret requests in flight, per client
_secrets_lock = threading.Lock()  # one decision about a client's secrets at a time
_admin_token: list[str] = []


def _admin(method: str, path: str, **kwargs) -> requests.Response:
    """A request of these hooks as the seeded admin (a cached access token; a new one after a 401)."""
    for attempt in range(2):
        with _lock:
            if not _admin_token or attempt:
                _admin_token[:] = [login()]
            token = _admin_token[0]
        r = requests.request(method, f"{API}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30, **kwargs)
        if r.status_code != 401:
            break
    return r


def _client_id(value) -> str | None:
    """The client_id a path value names, or None when it is not one."""
    if not isinstance(value, str):
        return None
    value = urllib.parse.unquote(value)
    return value if _CLIENT_ID.fullmatch(value) else None


def _remember_client(value) -> None:
    client_id = _client_id(value)
    if client_id is not None:
        with _lock:
            _known_clients.setdefault(client_id, None)


def _create_fixture_client(name: str, scopes: list[str]) -> dict:
    r = _admin("POST", "/clients", json={"name": f"{name} ({_RUN_TOKEN})", "scopes": scopes})
    if r.status_code != 201:
        raise RuntimeError(f"creating the client {name!r} failed: {r.status_code} {r.text[:300]}")
    body = r.json()
    return {
        "client_id": body["client"]["client_id"],
        "client_secret": body["client_secret"],
        "secret_id": body["secret_id"],
    }


def _client_fixtures() -> dict[str, dict]:
    """The fixture clients, created once per server (before any createClient request of these hooks can fill the
    organization)."""
    with _lock:
        if not _fixture:
            if FIXTURES_FILE and os.path.exists(FIXTURES_FILE):
                with open(FIXTURES_FILE, encoding="utf-8") as f:
                    _fixture.update(json.load(f))
            else:
                _fixture["service"] = _create_fixture_client("Contract service client of hooks.py", list(_scopes))
                _fixture["stand_in"] = _create_fixture_client(
                    "Contract stand-in for the service client", ["users:read"]
                )
                if FIXTURES_FILE:
                    fd = os.open(FIXTURES_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "w", encoding="utf-8") as f:
                        json.dump(_fixture, f)
            for fixture in _fixture.values():
                _known_clients.setdefault(fixture["client_id"], None)
        return _fixture


def _basic(client_id: str, secret: str) -> str:
    """HTTP Basic credentials as RFC 6749 §2.3.1 spells them: each part form-urlencoded, then base64."""
    raw = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(raw.encode("ascii")).decode("ascii")


def _set_authorization(case, value: str | None) -> None:
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    if value is not None:
        headers["Authorization"] = value
    case.headers = headers


def _pick(value, candidates: list):
    """One of `candidates`, derived from the generated `value` (so that it depends on the seed alone)."""
    digest = hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).digest()
    return candidates[int.from_bytes(digest[:8], "big") % len(candidates)]


def _granted_scope(value: str, granted: list[str]) -> str:
    """`value` when every name in it is a scope the client holds, else the names of it that are, or one scope."""
    if value == "" or all(name in granted for name in value.split(" ")):
        return value
    kept = list(dict.fromkeys(name for name in value.split(" ") if name in granted))
    return " ".join(kept) if kept else _pick(value, granted)


def _authenticate_oauth(case, operation_id: str) -> None:
    """Client authentication at the OAuth endpoints (see the docstring)."""
    service = _client_fixtures()["service"]
    basic = _basic(service["client_id"], service["client_secret"])
    body = case.body
    if not _is_positive(case):
        names_client = isinstance(body, dict) and ("client_id" in body or "client_secret" in body)
        _set_authorization(case, None if names_client else basic)
        return
    if not isinstance(body, dict):
        return
    body = dict(body)
    if operation_id == "issueToken" and body.get("grant_type") == "refresh_token":
        # The refresh grant: a login client (by its client_id alone) and a refresh token of a session of its own.
        body.pop("client_secret", None)
        body["client_id"], body["refresh_token"] = CLIENT_ID, _login()["refresh_token"]
        _set_authorization(case, None)
        case.body = body
        return
    if operation_id == "issueToken":
        body["grant_type"] = "client_credentials"
        if isinstance(body.get("scope"), str):
            body["scope"] = _granted_scope(body["scope"], list(_scopes))
    if "client_secret" in body:  # client_secret_post
        body["client_id"], body["client_secret"] = service["client_id"], service["client_secret"]
        _set_authorization(case, None)
    else:  # client_secret_basic
        if "client_id" in body:
            body["client_id"] = service["client_id"]
        _set_authorization(case, basic)
    case.body = body


def _future(value):
    """`value` when it is an instant comfortably in the future, else one that is, derived from `value`."""
    if not isinstance(value, str):
        return value
    now = datetime.now(timezone.utc)
    t = _instant(value)
    if t is not None and t > now + EXPIRY_MARGIN:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
    t = now + timedelta(days=1, seconds=int.from_bytes(digest[:8], "big") % (10 * 365 * 86400))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fix_up_client_id(case, operation_id: str) -> None:
    """Point a positive request at a client that exists when its clientId is one no response has shown (or,
    for a change, at another client than the service client)."""
    params = case.path_parameters or {}
    service = _client_fixtures()["service"]["client_id"]
    client_id = _client_id(params.get("clientId"))
    changing = operation_id in CLIENT_CHANGING_OPERATIONS
    with _lock:
        if client_id in _known_clients and not (changing and client_id == service):
            return
        candidates = [c for c in _known_clients if not (changing and c == service)]
    case.path_parameters = {**params, "clientId": _pick(params.get("clientId"), candidates)}


def _spare_the_service_client(case) -> None:
    """Send a change aimed at the service client (positive or negative data) to the stand-in instead."""
    params = case.path_parameters or {}
    fixtures = _client_fixtures()
    if _client_id(params.get("clientId")) == fixtures["service"]["client_id"]:
        case.path_parameters = {**params, "clientId": fixtures["stand_in"]["client_id"]}


def _live_secrets(client_id: str) -> list[str]:
    """The ids of the client's secrets that are not revoked, oldest first."""
    r = _admin("GET", f"/clients/{client_id}")
    if r.status_code != 200:
        raise RuntimeError(f"reading the client {client_id} failed: {r.status_code} {r.text[:300]}")
    return [secret["id"] for secret in r.json()["secrets"]]


def _make_room_for_a_secret(client_id: str) -> None:
    """Revoke the client's oldest secrets until a positive addClientSecret (and those in flight) fit."""
    with _secrets_lock:
        live = _live_secrets(client_id)
        count = len(live) + _pending_secrets.get(client_id, 0)
        for secret_id in [s for s in live if s not in _claimed_secrets]:
            if count < MAX_SECRETS:
                break
            _claimed_secrets.add(secret_id)
            r = _admin("DELETE", f"/clients/{client_id}/secrets/{secret_id}")
            if r.status_code not in (204, 404):
                raise RuntimeError(f"revoking a secret of {client_id} failed: {r.status_code} {r.text[:300]}")
            count -= 1
        _pending_secrets[client_id] = _pending_secrets.get(client_id, 0) + 1


def _fix_up_add_secret(case) -> None:
    if isinstance(case.body, dict) and "expires_at" in case.body:
        case.body = {**case.body, "expires_at": _future(case.body["expires_at"])}
    _make_room_for_a_secret(case.path_parameters["clientId"])


def _fix_up_revoke_secret(case) -> None:
    """Name a secret of the client that is not revoked (and that no other request is revoking)."""
    params = case.path_parameters
    client_id = params["clientId"]
    with _secrets_lock:
        free = [s for s in _live_secrets(client_id) if s not in _claimed_secrets]
        wanted = _user_id(params.get("secretId"))
        if wanted not in free:
            if not free:  # the client has no secret left to revoke: give it one
                r = _admin("POST", f"/clients/{client_id}/secrets")
                if r.status_code != 201:
                    raise RuntimeError(f"adding a secret to {client_id} failed: {r.status_code} {r.text[:300]}")
                free = [r.json()["secret"]["id"]]
            wanted = _pick(params.get("secretId"), free)
        _claimed_secrets.add(wanted)
    case.path_parameters = {**params, "secretId": wanted}


def _fix_up_create_client(case) -> None:
    if isinstance(case.body, dict) and "secret_expires_at" in case.body:
        case.body = {**case.body, "secret_expires_at": _future(case.body["secret_expires_at"])}


def _client_request(case, operation_id: str) -> None:
    _client_fixtures()  # before any request of these operations, whichever phase comes first
    if _is_positive(case):
        if operation_id in CLIENT_ID_OPERATIONS:
            _fix_up_client_id(case, operation_id)
        if operation_id == "createClient":
            _fix_up_create_client(case)
    if operation_id in CLIENT_CHANGING_OPERATIONS:
        _spare_the_service_client(case)  # whatever the data and whatever happened above
    if _is_positive(case):
        if operation_id == "addClientSecret":
            _fix_up_add_secret(case)
        elif operation_id == "revokeClientSecret":
            _fix_up_revoke_secret(case)



# --- hooks ---------------------------------------------------------------------------------------------------------


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id in _ANALYTICS_FIX_UPS:
        if _is_positive(case):
            _ANALYTICS_FIX_UPS[operation_id](case)
        return
    if operation_id in OAUTH_OPERATIONS:
        _authenticate_oauth(case, operation_id)
        return
    if operation_id in CLIENT_OPERATIONS:
        _client_request(case, operation_id)
        return
    if operation_id not in ("createUser", "getUser", "updateUser"):
        return
    # Make sure both fixtures exist before any request of these operations, whichever phase comes first.
    _seeded_admin_id()
    _stand_in_id()
    if _is_positive(case):
        if operation_id == "createUser":
            _fix_up_create_user(case)
        else:
            _fix_up_user_id(case, operation_id)
    if operation_id == "updateUser":
        _spare_the_seeded_admin(case)  # last, whatever the data and whatever happened above


def _json(content):
    if isinstance(content, (bytes, str)):
        try:
            return json.loads(content)
        except ValueError:
            return None
    return content


@schemathesis.hook
def after_call(ctx, case, response):
    """Remember the users and clients that 2xx answers name, the events the server accepted and the cursors it
    returned; count a positive addClientSecret request as no longer in flight."""
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id == "addClientSecret" and _is_positive(case):
        client_id = (case.path_parameters or {}).get("clientId")
        with _secrets_lock:
            _pending_secrets[client_id] = max(0, _pending_secrets.get(client_id, 0) - 1)
    if not 200 <= response.status_code < 300 or not response.content:
        return
    if operation_id not in (
        "login", "refreshToken", "listUsers", "getUser", "createUser", "updateUser",
        "trackEvent", "trackEventBatch", "listEvents",
        "listClients", "createClient", "getClient", "updateClient",
    ):
        return
    body = _json(response.content)
    if not isinstance(body, dict):
        return
    if operation_id == "listClients":
        for client in body.get("data") or []:
            if isinstance(client, dict):
                _remember_client(client.get("client_id"))
    elif operation_id == "createClient":
        _remember_client((body.get("client") or {}).get("client_id"))
    elif operation_id in ("getClient", "updateClient"):
        _remember_client(body.get("client_id"))
    elif operation_id in ("login", "refreshToken"):
        _remember((body.get("user") or {}).get("id"))
    elif operation_id == "listUsers":
        for user in body.get("data") or []:
            if isinstance(user, dict):
                _remember(user.get("id"))
    elif operation_id == "trackEvent":
        _remember_accepted(_json(case.body), body.get("event_id"), body.get("id"))
    elif operation_id == "trackEventBatch":
        sent = _json(case.body)
        events = sent.get("events") if isinstance(sent, dict) else None
        for result in body.get("results") or []:
            i = result.get("index") if isinstance(result, dict) else None
            if isinstance(events, list) and isinstance(i, int) and 0 <= i < len(events):
                if result.get("status") in ("accepted", "duplicate"):
                    _remember_accepted(events[i], result.get("event_id"), result.get("id"))
    elif operation_id == "listEvents":
        if isinstance(body.get("next_cursor"), str):
            with _lock:
                _cursors.setdefault(body["next_cursor"], None)
    else:
        _remember(body.get("id"))


# --- checks --------------------------------------------------------------------------------------------------------


def _event_is_valid(case, event) -> bool:
    """Whether one event of a batch matches its schema, as Schemathesis judges it: a batch of that event alone."""
    from schemathesis.core.jsonschema import make_validator

    body = case.operation.get_body_for_media_type("application/json")
    validator = make_validator(body.validation_schema, case.operation.schema.adapter.jsonschema_validator_cls)
    return validator.is_valid({"events": [event]})


def _check_track_event(case, answer) -> None:
    sent = _json(case.body)
    if not _is_positive(case) or not isinstance(sent, dict):
        return
    event_id = _user_id(sent.get("event_id"))
    if event_id is not None and answer.get("event_id") != event_id:
        raise AssertionError(f"event_id {answer.get('event_id')} is not the one sent, {event_id}")
    duplicate = event_id in _retried_events
    if answer.get("duplicate") is not duplicate:
        raise AssertionError(
            f"duplicate is {answer.get('duplicate')} for "
            + ("a retry of an accepted event" if duplicate else "an event_id never sent before")
        )
    first = _accepted_events.get(answer.get("event_id"))
    if first is not None and answer.get("id") != first[1]:
        raise AssertionError(f"id {answer.get('id')} for event_id {answer.get('event_id')} first stored as {first[1]}")


def _check_track_event_batch(case, answer) -> None:
    sent = _json(case.body)
    envelope_ok = (
        isinstance(sent, dict)
        and set(sent) == {"events"}
        and isinstance(sent["events"], list)
        and 1 <= len(sent["events"]) <= 1000
    )
    if not envelope_ok:
        raise AssertionError("202 to a batch whose envelope the contract refuses (an object with 1-1,000 `events`)")
    events, results = sent["events"], answer.get("results")
    if not isinstance(results, list) or len(results) != len(events):
        raise AssertionError(f"{len(results or [])} results for {len(events)} events")
    tally = {"accepted": 0, "duplicate": 0, "rejected": 0}
    first_in_batch: dict[str, str] = {}
    for i, (event, result) in enumerate(zip(events, results)):
        status = result.get("status")
        tally[status] = tally.get(status, 0) + 1
        if result.get("index") != i:
            raise AssertionError(f"results[{i}] has index {result.get('index')}")
        if not _event_is_valid(case, event):
            pointers = [e.get("pointer", "") for e in (result.get("error") or {}).get("errors") or []]
            code = (result.get("error") or {}).get("code")
            inside = all(p == f"/events/{i}" or p.startswith(f"/events/{i}/") for p in pointers)
            if status != "rejected" or code != "validation_failed" or not pointers or not inside:
                raise AssertionError(
                    f"events[{i}] does not match its schema, but its result is {status} {code} at {pointers}"
                )
            continue
        if not _is_positive(case):
            continue
        event_id = _user_id(event.get("event_id")) if isinstance(event, dict) else None
        if event_id in first_in_batch or event_id in _retried_events:
            first = first_in_batch.get(event_id) or _accepted_events.get(event_id, ("", ""))[1]
            if status != "duplicate" or result.get("id") != first:
                raise AssertionError(
                    f"events[{i}] repeats an accepted event ({first}), but its result is {status} {result.get('id')}"
                )
        elif status != "accepted":
            raise AssertionError(f"events[{i}] is valid and new, but its result is {status}: {result.get('error')}")
        if event_id is not None:
            if result.get("event_id") != event_id:
                raise AssertionError(f"results[{i}].event_id {result.get('event_id')} is not the one sent, {event_id}")
            first_in_batch.setdefault(event_id, result.get("id"))
    counts = (answer.get("accepted"), answer.get("duplicates"), answer.get("rejected"))
    if counts != (tally["accepted"], tally["duplicate"], tally["rejected"]):
        raise AssertionError(f"accepted, duplicates, rejected are {counts}, the results say {tuple(tally.values())}")


@schemathesis.check
def analytics_receipts(ctx, response, case):
    """What a 202 of trackEvent and trackEventBatch promises beyond its schema; see the module docstring."""
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id not in ("trackEvent", "trackEventBatch") or response.status_code != 202:
        return None
    answer = _json(response.content)
    if not isinstance(answer, dict):
        return None  # the response schema check says what is wrong
    if operation_id == "trackEvent":
        _check_track_event(case, answer)
    else:
        _check_track_event_batch(case, answer)
    return None


@schemathesis.check
def client_limits(ctx, response, case):
    """A 409 to createClient is the organization's 101st service client: it must hold 100 of them already."""
    if case.operation.definition.raw.get("operationId") != "createClient" or response.status_code != 409:
        return None
    answer = _json(response.content)
    if not isinstance(answer, dict) or answer.get("code") != "conflict":
        code = answer.get("code") if isinstance(answer, dict) else None
        raise AssertionError(f"409 to createClient with code {code}")
    r = _admin("GET", "/clients")
    held = len(r.json().get("data") or []) if r.status_code == 200 else None
    if held != MAX_CLIENTS:
        raise AssertionError(
            f"409 to createClient while the organization holds {held} service clients, not {MAX_CLIENTS}"
        )
    return None
