"""Schemathesis hooks of the Nexus Core contract run; test/contract/schemathesis.sh loads them (SCHEMATHESIS_HOOKS).

They need what test/contract/lib.sh exports: NEXUS_API and the seeded NEXUS_EMAIL, NEXUS_PASSWORD, NEXUS_CLIENT_ID.

- Format `ip` (LoginRequest.ip_address): IPv4 and IPv6 strings, so that positive data is valid.
- Authentication: operations that require bearerAuth get an access token from a real login. It is cached, except
  for operations that revoke the session of the token they are called with (`logout`): each of those requests gets
  a session of its own, so the cached token stays valid for every other request. Any 401 to an authenticated
  request makes Schemathesis drop the cached token, log in again and replay the request once (`retry_on`).
  Operations with `security: []` get no Authorization header. The `ignored_auth` check keeps its meaning: it
  replays successful authenticated requests without a token and with a corrupted one and expects 401.
- Positive login bodies carry the seeded credentials half of the time, so that the 200 answer of `login` (and,
  through the contract's `TokenIssued` links, of `refreshToken`) is checked against the contract, and the stateful phase has tokens
  to follow; and they keep to the documented 1,024-byte password limit that JSON Schema cannot express. Negative
  bodies are left as generated.
- Users (`before_call`, so that every phase gets it, coverage included, and Schemathesis revalidates the case
  afterwards, so that a fixed-up case is judged by what is really sent):
  - Positive `createUser` bodies keep the password within 1,024 bytes and get an email address never used before
    (a run-unique token in place of the first characters of the local part): the same address twice is a
    documented `409 conflict`, which positive data must not run into.
  - Positive `getUser` and `updateUser` requests go to users that exist: an id no response has shown yet (a
    random UUID, a contract example, a link Schemathesis could not resolve) is replaced by one that some response
    has (`after_call` collects them). A well-formed id of no user is a documented `404`, so these operations keep
    the strict 2xx of positive data; the ids Schemathesis follows through links are real already and stay.
  - The seeded admin these hooks log in as is never changed: dependency analysis infers links from `login`'s
    `user.id` and from `listUsers`' `data[].id` to `updateUser`, so an `updateUser` aimed at that user (positive or
    negative data) goes to a stand-in admin the hooks create instead. Demoting or deactivating the seeded admin
    would end the run (every later request 401/403); and with the seeded admin always an active admin, `409
    last_admin` cannot happen to positive data either.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import threading
import urllib.parse
import uuid

import requests
import schemathesis
from hypothesis import strategies as st

API = os.environ["NEXUS_API"].rstrip("/")
EMAIL = os.environ["NEXUS_EMAIL"]
PASSWORD = os.environ["NEXUS_PASSWORD"]
CLIENT_ID = os.environ["NEXUS_CLIENT_ID"]

# Operations that revoke the session of the token they are called with.
REVOKING_OPERATIONS = frozenset({"logout"})

# --- string formats --------------------------------------------------------------------------------------------

# `ip`: what the server accepts (Go's net.ParseIP): dotted-quad IPv4, IPv6 compressed or in full.
schemathesis.openapi.format(
    "ip",
    st.one_of(
        st.ip_addresses(v=4).map(str),
        st.ip_addresses(v=6).map(str),
        st.ip_addresses(v=6).map(lambda a: a.exploded),
    ),
)

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


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    operation_id = case.operation.definition.raw.get("operationId")
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


@schemathesis.hook
def after_call(ctx, case, response):
    """Remember the users that 2xx answers name."""
    if not 200 <= response.status_code < 300 or not response.content:
        return
    operation_id = case.operation.definition.raw.get("operationId")
    if operation_id not in ("login", "refreshToken", "listUsers", "getUser", "createUser", "updateUser"):
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        return
    if not isinstance(body, dict):
        return
    if operation_id in ("login", "refreshToken"):
        _remember((body.get("user") or {}).get("id"))
    elif operation_id == "listUsers":
        for user in body.get("data") or []:
            if isinstance(user, dict):
                _remember(user.get("id"))
    else:
        _remember(body.get("id"))
