// The Nexus Core API from TypeScript, through a client generated from openapi.yaml:
//   openapi-typescript openapi.yaml -o generated/nexus.d.ts   (the types: `paths`, `components`)
//   openapi-fetch                                              (a typed fetch over those types)
// Logs in, lists the users and reads its own with its permissions, records analytics events (one, a duplicate, a
// batch of two), lists them and reads their summary, refreshes, logs out, then handles the API's errors as typed
// Problem values.
// Needs NEXUS_API (the base URL, ending in /v2), NEXUS_EMAIL, NEXUS_PASSWORD and NEXUS_CLIENT_ID.
import { randomUUID } from "node:crypto";
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./generated/nexus.js";

type Problem = components["schemas"]["Problem"];
type Permission = components["schemas"]["Permission"];
type EventRequest = components["schemas"]["EventRequest"];

function fail(message: string): never {
  console.error(`ts client: FAIL: ${message}`);
  process.exit(1);
}

function env(name: string): string {
  return process.env[name] || fail(`${name} is not set`);
}

// expectProblem checks that a call failed the way the contract says: the HTTP status, and a problem+json body
// whose `status`, `code` and `request_id` agree with it.
function expectProblem(what: string, result: { error?: Problem; response: Response }, status: number, code: string): Problem {
  const { error: problem, response } = result;
  if (response.status !== status || problem === undefined) {
    fail(`${what}: want ${status} ${code}, got ${response.status}`);
  }
  if (!response.headers.get("Content-Type")?.startsWith("application/problem+json")) {
    fail(`${what}: Content-Type is ${response.headers.get("Content-Type")}`);
  }
  if (problem.status !== status || problem.code !== code) {
    fail(`${what}: want ${status} ${code}, got problem ${problem.status} ${problem.code}: ${problem.detail}`);
  }
  if (!problem.request_id || problem.request_id !== response.headers.get("X-Request-Id")) {
    fail(`${what}: request_id ${problem.request_id} is not the X-Request-Id header`);
  }
  console.log(`ts client: ${what}: ${problem.status} ${problem.code} (request_id ${problem.request_id})`);
  return problem;
}

// analytics records one event (202), sends it again (a duplicate: the first event's id, nothing new stored), records
// a batch of two, lists the three events and waits until the background processor has counted them in the summary,
// then sends an event from before 2000 (400, the typed Problem). Its events have a source and a name of their own,
// so that nothing else the server stores is counted with them.
async function analytics(api: Client<paths>, authorization: { Authorization: string }): Promise<void> {
  const name = "contract_check_ts";
  const category = "contract";
  const source = "contract-check-ts";
  const event: EventRequest = {
    event_id: randomUUID(),
    event_name: name,
    event_category: category,
    source,
    properties: { client: "ts", attempt: 1 },
  };
  const first = await api.POST("/analytics/events", { body: event, headers: authorization });
  if (first.error) fail(`trackEvent: ${first.response.status} ${first.error.code}: ${first.error.detail}`);
  const accepted = first.data;
  if (first.response.status !== 202 || accepted.duplicate || accepted.event_id !== event.event_id || accepted.status !== "accepted") {
    fail(`trackEvent: unexpected ${first.response.status} ${JSON.stringify(accepted)}`);
  }
  console.log(`ts client: trackEvent: 202, event ${accepted.event_id} stored as ${accepted.id}`);

  const again = await api.POST("/analytics/events", { body: event, headers: authorization });
  if (again.error) fail(`trackEvent again: ${again.response.status} ${again.error.code}: ${again.error.detail}`);
  if (!again.data.duplicate || again.data.id !== accepted.id) {
    fail(`trackEvent again: want duplicate true and id ${accepted.id}, got ${JSON.stringify(again.data)}`);
  }
  console.log(`ts client: trackEvent again: 202, duplicate of ${again.data.id}`);

  const batch = await api.POST("/analytics/events/batch", {
    body: {
      events: [
        { event_id: randomUUID(), event_name: name, event_category: category, source },
        { event_id: randomUUID(), event_name: name, event_category: category, source },
      ],
    },
    headers: authorization,
  });
  if (batch.error) fail(`trackEventBatch: ${batch.response.status} ${batch.error.code}: ${batch.error.detail}`);
  const result = batch.data;
  const statuses = result.results.map((r) => `${r.index}:${r.status}`).join(",");
  if (result.accepted !== 2 || result.duplicates !== 0 || result.rejected !== 0 || statuses !== "0:accepted,1:accepted") {
    fail(`trackEventBatch: unexpected result ${JSON.stringify(result)}`);
  }
  console.log(`ts client: trackEventBatch: 202, ${result.accepted} accepted`);

  const list = await api.GET("/analytics/events", { params: { query: { source, limit: 10 } }, headers: authorization });
  if (list.error) fail(`listEvents: ${list.response.status} ${list.error.code}: ${list.error.detail}`);
  const page = list.data;
  const listed = page.data.find((e) => e.id === accepted.id);
  const times = page.data.map((e) => Date.parse(e.timestamp));
  const newestFirst = times.every((t, i) => i === 0 || (times[i - 1] ?? 0) >= t);
  if (page.data.length !== 3 || page.has_more || page.next_cursor !== null || !newestFirst || listed?.properties["client"] !== "ts") {
    fail(`listEvents: want the 3 events of this program, the first with its properties, got ${JSON.stringify(page)}`);
  }
  console.log(`ts client: listEvents: ${page.data.length} events, newest first`);

  // The summary counts what the background processor has processed: within about two seconds.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const sum = await api.GET("/analytics/summary", { params: { query: { event_name: name } }, headers: authorization });
    if (sum.error) fail(`getAnalyticsSummary: ${sum.response.status} ${sum.error.code}: ${sum.error.detail}`);
    if (sum.data.total === 3 && sum.data.data.length === 1 && sum.data.data[0]?.event_category === category) {
      console.log(`ts client: getAnalyticsSummary: ${sum.data.total} events from ${sum.data.from} to ${sum.data.to}`);
      break;
    }
    if (Date.now() > deadline) fail(`getAnalyticsSummary: want 3 events of ${name} counted, got ${JSON.stringify(sum.data)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  // A rule JSON Schema cannot express: no timestamp before 2000. The 400 names the field.
  const invalid = expectProblem(
    "trackEvent from 1999",
    await api.POST("/analytics/events", {
      body: { event_name: name, event_category: category, timestamp: "1999-12-31T23:59:59Z" },
      headers: authorization,
    }),
    400,
    "validation_failed",
  );
  const pointers = (invalid.errors ?? []).map((e) => e.pointer);
  if (pointers.length !== 1 || pointers[0] !== "/timestamp") {
    fail(`trackEvent from 1999: errors point at ${pointers.join(", ")}, want /timestamp`);
  }
  console.log(`ts client: errors: ${pointers[0]}: ${invalid.errors?.[0]?.detail}`);
}

async function main(): Promise<void> {
  const email = env("NEXUS_EMAIL");
  const password = env("NEXUS_PASSWORD");
  const clientId = env("NEXUS_CLIENT_ID");
  const api = createClient<paths>({ baseUrl: env("NEXUS_API") });

  // Log in.
  const login = await api.POST("/auth/login", { body: { email, password, client_id: clientId } });
  if (login.error) fail(`login: ${login.response.status} ${login.error.code}: ${login.error.detail}`);
  const session = login.data;
  if (session.token_type !== "Bearer" || session.user.email.toLowerCase() !== email.toLowerCase()) {
    fail(`login: unexpected token_type ${session.token_type} or user ${session.user.email}`);
  }
  console.log(`ts client: logged in as ${session.user.email} (${session.user.role}), access token for ${session.expires_in}s`);

  // The users of the organization: the seeded user is one of them, and an admin, so it may list them all and read
  // its own record with its permissions (and without its activity, which it did not ask for).
  const authorization = { Authorization: `Bearer ${session.access_token}` };
  const list = await api.GET("/users", { params: { query: { limit: 100 } }, headers: authorization });
  if (list.error) fail(`listUsers: ${list.response.status} ${list.error.code}: ${list.error.detail}`);
  const page = list.data;
  if (!page.data.some((u) => u.id === session.user.id) || page.pagination.total < page.data.length) {
    fail(`listUsers: ${page.data.length} of ${page.pagination.total} users, without ${session.user.id}`);
  }
  console.log(`ts client: listUsers: ${page.data.length} of ${page.pagination.total} users`);
  const got = await api.GET("/users/{userId}", {
    params: { path: { userId: session.user.id }, query: { include_permissions: true } },
    headers: authorization,
  });
  if (got.error) fail(`getUser: ${got.response.status} ${got.error.code}: ${got.error.detail}`);
  const me = got.data;
  const permissions: Permission[] = me.permissions ?? fail("getUser: no permissions with include_permissions=true");
  const admin = me.role === "admin" && permissions.includes("users:write");
  if (me.id !== session.user.id || !admin || me.activity !== undefined) {
    fail(`getUser: unexpected user ${me.id} (${me.role}) with permissions ${permissions.join(", ")}`);
  }
  console.log(`ts client: getUser: ${me.email} (${me.role}) has ${permissions.length} permissions`);

  await analytics(api, authorization);

  // Refresh: a new access token and a new refresh token; the old refresh token is spent.
  const refresh = await api.POST("/auth/refresh", {
    body: { refresh_token: session.refresh_token, client_id: clientId, device_id: "contract-check-ts" },
  });
  if (refresh.error) fail(`refresh: ${refresh.response.status} ${refresh.error.code}: ${refresh.error.detail}`);
  const tokens = refresh.data;
  if (tokens.refresh_token === session.refresh_token) fail("refresh: the refresh token did not rotate");
  console.log("ts client: refreshed; the refresh token rotated");

  // Log out with the new access token: 204, no body.
  const bearer = { Authorization: `Bearer ${tokens.access_token}` };
  const logout = await api.POST("/auth/logout", { headers: bearer });
  if (logout.response.status !== 204) fail(`logout: want 204, got ${logout.response.status}`);
  console.log("ts client: logged out (204)");

  // The session is revoked, so its access token no longer works.
  const again = await api.POST("/auth/logout", { headers: bearer });
  expectProblem("logout again with the revoked token", again, 401, "unauthenticated");
  const challenge = again.response.headers.get("WWW-Authenticate");
  if (!challenge?.startsWith("Bearer ")) fail(`logout again: want a WWW-Authenticate: Bearer header, got ${challenge}`);
  console.log(`ts client: WWW-Authenticate: ${challenge}`);

  // A wrong password.
  expectProblem(
    "login with a wrong password",
    await api.POST("/auth/login", { body: { email, password: `${password}-wrong`, client_id: clientId } }),
    401,
    "invalid_credentials",
  );

  // A request the contract rejects: `errors` names the failing field with a JSON Pointer into the body.
  const invalid = expectProblem(
    "login with an invalid email",
    await api.POST("/auth/login", { body: { email: "not-an-email", password, client_id: clientId } }),
    400,
    "validation_failed",
  );
  const pointers = (invalid.errors ?? []).map((e) => e.pointer);
  if (pointers.length !== 1 || pointers[0] !== "/email") fail(`login with an invalid email: errors point at ${pointers.join(", ")}, want /email`);
  console.log(`ts client: errors: ${pointers[0]}: ${invalid.errors?.[0]?.detail}`);

  console.log("ts client: OK");
}

// A transport error (no server, a reset connection) or a body that is not JSON ends up here.
main().catch((err: unknown) => fail(`unexpected error: ${String(err)}${err instanceof Error && err.cause ? ` (${String(err.cause)})` : ""}`));
