// The Nexus Core API from TypeScript, through a client generated from openapi.yaml:
//   openapi-typescript openapi.yaml -o generated/nexus.d.ts   (the types: `paths`, `components`)
//   openapi-fetch                                              (a typed fetch over those types)
// Logs in, lists the users and reads its own with its permissions, refreshes, logs out, then handles the API's
// errors as typed Problem values.
// Needs NEXUS_API (the base URL, ending in /v2), NEXUS_EMAIL, NEXUS_PASSWORD and NEXUS_CLIENT_ID.
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/nexus.js";

type Problem = components["schemas"]["Problem"];
type Permission = components["schemas"]["Permission"];

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
