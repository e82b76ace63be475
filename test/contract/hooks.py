"""Schemathesis hooks of the Nexus Core contract run; test/contract/schemathesis.sh loads them (SCHEMATHESIS_HOOKS).

They need what test/contract/lib.sh exports: NEXUS_API and the seeded NEXUS_EMAIL, NEXUS_PASSWORD, NEXUS_CLIENT_ID.

- Links: a link's `x-nexus-request-body` (the members of the target's body it fills, which OpenAPI 3.0 cannot say)
  becomes the object `requestBody` Schemathesis reads, in the loaded copy of the contract (`before_load_schema`).
- Authentication: operations that require bearerAuth get an access token from a real login. It is cached, except
  for operations that revoke the session of the token they are called with (`logout`): each of those requests gets
  a session of its own, so the cached token stays valid for every other request. Any 401 to an authenticated
  request makes Schemathesis drop the cached token, log in again and replay the request once (`retry_on`).
  Operations with `security: []` get no Authorization header. The `ignored_auth` check keeps its meaning: it
  replays successful authenticated requests without a token and with a corrupted one and expects 401.
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
"""

from __future__ import annotations

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
    """Whether the operation has a security requirement (its own `security`, else the document's)."""
    definition = ctx.operation.definition.raw
    security = definition.get("security", ctx.operation.schema.raw_schema.get("security", []))
    return any(len(requirement) > 0 for requirement in security)


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


# --- hooks ---------------------------------------------------------------------------------------------------------


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id in _ANALYTICS_FIX_UPS:
        if _is_positive(case):
            _ANALYTICS_FIX_UPS[operation_id](case)
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
    """Remember the users that 2xx answers name, the events the server accepted and the cursors it returned."""
    if not 200 <= response.status_code < 300 or not response.content:
        return
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id not in (
        "login", "refreshToken", "listUsers", "getUser", "createUser", "updateUser",
        "trackEvent", "trackEventBatch", "listEvents",
    ):
        return
    body = _json(response.content)
    if not isinstance(body, dict):
        return
    if operation_id in ("login", "refreshToken"):
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
