"""Machine-to-machine access with a stock Python OAuth 2.0 library: authlib's requests integration.

    python stock_client.py [--api URL] [--email E] [--password P] [--client-id ID]

An admin logs in (plain requests, as any script would) and creates a service client over the API. Then, with
authlib's OAuth2Session and no custom code, the client obtains tokens with the client credentials grant, once with
client_secret_basic and once with client_secret_post, and calls GET /v2/users and POST /v2/analytics/events/batch;
a wrong secret, and a disabled client, must raise authlib's OAuthError with error "invalid_client". The admin
disables the client at the end.
Defaults come from NEXUS_API (the base URL, ending in /v2), NEXUS_EMAIL, NEXUS_PASSWORD and NEXUS_CLIENT_ID, as
test/contract/lib.sh exports them after starting `nexus serve --dev`.
"""

import argparse
import os
import sys
import uuid
from typing import Any, NoReturn
from urllib.parse import parse_qs

import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError

SCOPES = ["users:list", "events:write", "events:write_any_user"]
checks = 0


def fail(message: str) -> NoReturn:
    print(f"oauth stock client (python): FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def ok(message: str) -> None:
    global checks
    checks += 1
    print(f"  ok  {message}")


def expect(cond: bool, message: str) -> None:
    if not cond:
        fail(message)


class TokenRequests:
    """Remembers the token requests a session sent (a requests response hook: it only looks), so that the check
    can tell which client authentication authlib used."""

    def __init__(self, session: requests.Session) -> None:
        self.seen: list[requests.PreparedRequest] = []
        session.hooks["response"].append(self.hook)

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.request.url and response.request.url.endswith("/auth/token"):
            self.seen.append(response.request)

    def last_method(self) -> str:
        expect(len(self.seen) > 0, "no token request was sent")
        req = self.seen[-1]
        body = req.body.decode() if isinstance(req.body, bytes) else (req.body or "")
        form = parse_qs(body)
        expect(form.get("grant_type") == ["client_credentials"], f"token request body {body!r}")
        header = req.headers.get("Authorization", "")
        if header.startswith("Basic ") and "client_secret" not in form:
            return "client_secret_basic"
        if not header and "client_secret" in form and "client_id" in form:
            return "client_secret_post"
        return f"unclear (Authorization {header[:6]!r}, form members {sorted(form)})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--api", default=os.environ.get("NEXUS_API"), help="base URL ending in /v2 (NEXUS_API)")
    p.add_argument("--email", default=os.environ.get("NEXUS_EMAIL"), help="an admin's email (NEXUS_EMAIL)")
    p.add_argument("--password", default=os.environ.get("NEXUS_PASSWORD"), help="its password (NEXUS_PASSWORD)")
    p.add_argument("--client-id", default=os.environ.get("NEXUS_CLIENT_ID"), help="login client (NEXUS_CLIENT_ID)")
    a = p.parse_args()
    for name in ("api", "email", "password", "client_id"):
        if not getattr(a, name):
            p.error(f"--{name.replace('_', '-')} (or its environment variable) is required")
    api = a.api.rstrip("/")
    token_url = api + "/auth/token"

    # The admin's part: log in as a person and create a service client (plain HTTP; this is not OAuth).
    http = requests.Session()
    r = http.post(api + "/auth/login", json={"email": a.email, "password": a.password, "client_id": a.client_id})
    expect(r.status_code == 200, f"admin login: {r.status_code} {r.text}")
    admin = {"Authorization": "Bearer " + r.json()["access_token"]}
    name = f"authlib check {uuid.uuid4().hex[:8]}"
    r = http.post(api + "/clients", json={"name": name, "scopes": SCOPES}, headers=admin)
    expect(r.status_code == 201, f"create service client: {r.status_code} {r.text}")
    created = r.json()
    client_id, secret = created["client"]["client_id"], created["client_secret"]
    ok(f"admin created service client {client_id} with {' '.join(SCOPES)}")

    # The service's part: authlib alone, for each way of authenticating the client.
    for method, scope in (("client_secret_basic", None), ("client_secret_post", " ".join(SCOPES))):
        with OAuth2Session(client_id, secret, scope=scope, token_endpoint_auth_method=method) as session:
            sent = TokenRequests(session)
            token = session.fetch_token(token_url, grant_type="client_credentials")
            expect(sent.last_method() == method, f"authlib authenticated by {sent.last_method()}, want {method}")
            expect(token.get("token_type") == "Bearer" and bool(token.get("access_token")), f"token {sorted(token)}")
            expect(token.get("scope") == " ".join(SCOPES), f"token scope {token.get('scope')!r}")
            expect("refresh_token" not in token and isinstance(token.get("expires_at"), int), f"token {sorted(token)}")
            expect(not token.is_expired(), "the token is expired already")
            ok(f"{method}: fetch_token gave a Bearer token for {token['scope']}, expiring at {token['expires_at']}")

            r = session.get(api + "/users")
            expect(r.status_code == 200, f"GET /users: {r.status_code} {r.text}")
            expect(r.request.headers.get("Authorization") == "Bearer " + token["access_token"], "GET /users: no bearer")
            users = r.json()["data"]
            me = [u for u in users if u["email"] == a.email]
            expect(len(me) == 1, f"GET /users does not list {a.email}: {[u['email'] for u in users]}")
            user_id = me[0]["id"]
            ok(f"{method}: GET /v2/users listed {len(users)} users, {a.email} among them")

            events = [
                {
                    "event_name": "crm_synced",
                    "event_category": "integration",
                    "user_id": user_id,
                    "event_id": str(uuid.uuid4()),
                },
                {
                    "event_name": "crm_synced",
                    "event_category": "integration",
                    "user_id": user_id,
                    "properties": {"records": 2, "source": "authlib"},
                },
            ]
            r = session.post(api + "/analytics/events/batch", json={"events": events})
            expect(r.status_code == 202, f"POST /analytics/events/batch: {r.status_code} {r.text}")
            body = r.json()
            expect(
                body["accepted"] == 2
                and body["rejected"] == 0
                and [x["status"] for x in body["results"]] == ["accepted", "accepted"],
                f"batch: {body}",
            )
            ok(f"{method}: POST /v2/analytics/events/batch accepted 2 events for user {user_id}")

        # A wrong secret: authlib parses the RFC 6749 §5.2 error into its OAuthError.
        with OAuth2Session(client_id, secret + "x", token_endpoint_auth_method=method) as bad:
            try:
                bad.fetch_token(token_url, grant_type="client_credentials")
            except OAuthError as e:
                expect(
                    e.error == "invalid_client" and bool(e.description), f"wrong secret: {e.error!r} {e.description!r}"
                )
                ok(f"{method}: a wrong secret raised OAuthError invalid_client ({e.description})")
            else:
                fail(f"{method}: a wrong secret obtained a token")

    # The admin disables the client: it can no longer obtain tokens.
    r = http.patch(api + "/clients/" + client_id, json={"status": "disabled"}, headers=admin)
    expect(r.status_code == 200, f"disable the client: {r.status_code} {r.text}")
    with OAuth2Session(client_id, secret) as session:
        try:
            session.fetch_token(token_url, grant_type="client_credentials")
        except OAuthError as e:
            expect(e.error == "invalid_client", f"disabled client: {e.error!r} {e.description!r}")
            ok("a disabled client's secret raised OAuthError invalid_client")
        else:
            fail("a disabled client obtained a token")

    print(f"authlib: {checks} passed, 0 failed")


if __name__ == "__main__":
    main()
