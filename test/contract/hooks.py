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
"""

from __future__ import annotations

import os

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


def login() -> str:
    """Log in with the seeded credentials and return the access token of a new session."""
    r = requests.post(
        f"{API}/auth/login",
        json={"email": EMAIL, "password": PASSWORD, "client_id": CLIENT_ID},
        timeout=30,
    )
    if r.status_code != 200:
        raise RuntimeError(f"login with the seeded credentials failed: {r.status_code} {r.text[:300]}")
    return r.json()["access_token"]


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
