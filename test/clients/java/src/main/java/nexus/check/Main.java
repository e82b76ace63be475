package nexus.check;

import java.io.IOException;
import java.time.OffsetDateTime;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Collectors;
import nexus.client.ApiClient;
import nexus.client.ApiException;
import nexus.client.ApiResponse;
import nexus.client.api.AnalyticsApi;
import nexus.client.api.AuthApi;
import nexus.client.api.UsersApi;
import nexus.client.model.EventAccepted;
import nexus.client.model.EventBatch;
import nexus.client.model.EventBatchResult;
import nexus.client.model.EventRequest;
import nexus.client.model.EventResult;
import nexus.client.model.FieldError;
import nexus.client.model.LoginRequest;
import nexus.client.model.Problem;
import nexus.client.model.RefreshRequest;
import nexus.client.model.TokenResponse;
import nexus.client.model.UserList;

/**
 * The Nexus Core API from Java, through the client openapi-generator generates from openapi.yaml (library
 * okhttp-gson; see ../pom.xml). Logs in, refreshes (the refresh token must rotate), lists the users, records an event
 * and a batch, reads a problem+json answer as the generated Problem, and logs out. The access token is handed to the
 * generated client (ApiClient.setBearerToken), which sends it on the operations the contract secures with bearerAuth:
 * this program never writes an Authorization header itself.
 *
 * <p>Needs NEXUS_API (the base URL, ending in /v2), NEXUS_EMAIL, NEXUS_PASSWORD and NEXUS_CLIENT_ID.
 */
public final class Main {
  private Main() {}

  private static final class Failure extends RuntimeException {
    Failure(String message) {
      super(message);
    }
  }

  private static Failure fail(String message) {
    return new Failure(message);
  }

  private static void check(boolean ok, String message) {
    if (!ok) {
      throw fail(message);
    }
  }

  private static void log(String message) {
    System.out.println("java client: " + message);
  }

  private static String env(String name) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) {
      throw fail(name + " is not set");
    }
    return value;
  }

  private static String header(ApiException e, String name) {
    Map<String, List<String>> headers = e.getResponseHeaders();
    if (headers != null) {
      for (Map.Entry<String, List<String>> h : headers.entrySet()) {
        if (h.getKey() != null && h.getKey().equalsIgnoreCase(name) && !h.getValue().isEmpty()) {
          return h.getValue().get(0);
        }
      }
    }
    return null;
  }

  /** A call that must fail. */
  private interface Call {
    void run() throws ApiException;
  }

  /**
   * Checks that a call failed the way the contract says: the HTTP status, and a problem+json body that the generated
   * Problem model reads, whose status, code and request_id agree with the answer.
   */
  private static Problem expectProblem(String what, Call call, int status, String code) throws IOException {
    ApiException e;
    try {
      call.run();
      throw fail(what + ": want " + status + " " + code + ", got a success");
    } catch (ApiException caught) {
      e = caught;
    }
    String contentType = header(e, "Content-Type");
    check(e.getCode() == status, what + ": want " + status + ", got " + e.getCode() + ": " + e.getResponseBody());
    check(contentType != null && contentType.startsWith("application/problem+json"), what + ": Content-Type is " + contentType);
    Problem problem = Problem.fromJson(e.getResponseBody());
    check(problem.getStatus() == status && code.equals(problem.getCode()),
        what + ": want problem " + status + " " + code + ", got " + problem.getStatus() + " " + problem.getCode());
    check(problem.getRequestId().equals(header(e, "X-Request-Id")),
        what + ": request_id " + problem.getRequestId() + " is not the X-Request-Id header");
    log(what + ": " + problem.getStatus() + " " + problem.getCode() + " (request_id " + problem.getRequestId() + ")");
    return problem;
  }

  private static void run() throws ApiException, IOException {
    String email = env("NEXUS_EMAIL");
    String password = env("NEXUS_PASSWORD");
    String clientId = env("NEXUS_CLIENT_ID");
    ApiClient client = new ApiClient().setBasePath(env("NEXUS_API"));
    AuthApi auth = new AuthApi(client);
    UsersApi users = new UsersApi(client);
    AnalyticsApi analytics = new AnalyticsApi(client);

    // Log in.
    TokenResponse session = auth.login(new LoginRequest().email(email).password(password).clientId(clientId));
    check(session.getTokenType() == TokenResponse.TokenTypeEnum.BEARER
            && session.getUser().getEmail().equalsIgnoreCase(email),
        "login: unexpected token_type " + session.getTokenType() + " or user " + session.getUser().getEmail());
    log("logged in as " + session.getUser().getEmail() + " (" + session.getUser().getRole() + "), access token for "
        + session.getExpiresIn() + "s");

    // Refresh: a new access token and a new refresh token; the old refresh token is spent.
    TokenResponse tokens = auth.refreshToken(
        new RefreshRequest().refreshToken(session.getRefreshToken()).clientId(clientId).deviceId("contract-check-java"));
    check(!tokens.getRefreshToken().equals(session.getRefreshToken()), "refresh: the refresh token did not rotate");
    log("refreshed; the refresh token rotated");
    client.setBearerToken(tokens.getAccessToken()); // the generated HttpBearerAuth of bearerAuth sends it from now on

    // The users of the organization: the seeded admin is one of them.
    UserList page = users.listUsers(100, null, null, null);
    check(page.getData().stream().anyMatch(u -> u.getId().equals(session.getUser().getId())),
        "listUsers: " + page.getData().size() + " users, without " + session.getUser().getId());
    log("listUsers: " + page.getData().size() + " of " + page.getPagination().getTotal() + " users");

    // One event, with a deduplication key: 202.
    String name = "contract_check_java";
    String category = "contract";
    String source = "contract-check-java";
    EventRequest event = new EventRequest().eventId(UUID.randomUUID()).eventName(name).eventCategory(category)
        .source(source).putPropertiesItem("client", "java").putPropertiesItem("attempt", 1);
    ApiResponse<EventAccepted> tracked = analytics.trackEventWithHttpInfo(event);
    EventAccepted accepted = tracked.getData();
    check(tracked.getStatusCode() == 202 && !accepted.getDuplicate() && accepted.getEventId().equals(event.getEventId())
            && accepted.getStatus() == EventAccepted.StatusEnum.ACCEPTED,
        "trackEvent: unexpected " + tracked.getStatusCode() + " " + accepted);
    log("trackEvent: 202, event " + accepted.getEventId() + " stored as " + accepted.getId());

    // A batch of two: 202, a result per event at its index.
    ApiResponse<EventBatchResult> batched = analytics.trackEventBatchWithHttpInfo(new EventBatch()
        .addEventsItem(new EventRequest().eventId(UUID.randomUUID()).eventName(name).eventCategory(category).source(source))
        .addEventsItem(new EventRequest().eventId(UUID.randomUUID()).eventName(name).eventCategory(category).source(source)));
    EventBatchResult result = batched.getData();
    String statuses = result.getResults().stream()
        .map(r -> r.getIndex() + ":" + r.getStatus().getValue()).collect(Collectors.joining(","));
    check(batched.getStatusCode() == 202 && result.getAccepted() == 2 && result.getDuplicates() == 0
            && result.getRejected() == 0 && statuses.equals("0:accepted,1:accepted")
            && result.getResults().stream().allMatch(r -> r.getStatus() == EventResult.StatusEnum.ACCEPTED && r.getId() != null),
        "trackEventBatch: unexpected " + batched.getStatusCode() + " " + result);
    log("trackEventBatch: 202, " + result.getAccepted() + " accepted (" + statuses + ")");

    // A rule JSON Schema cannot express: no timestamp before 2000. The 400 names the field.
    Problem invalid = expectProblem("trackEvent from 1999", () -> analytics.trackEvent(new EventRequest()
        .eventName(name).eventCategory(category).timestamp(OffsetDateTime.parse("1999-12-31T23:59:59Z"))),
        400, "validation_failed");
    List<String> pointers = invalid.getErrors() == null ? List.of()
        : invalid.getErrors().stream().map(FieldError::getPointer).collect(Collectors.toList());
    check(pointers.equals(List.of("/timestamp")), "trackEvent from 1999: errors point at " + pointers + ", want /timestamp");
    log("errors: " + pointers.get(0) + ": " + invalid.getErrors().get(0).getDetail());

    // Log out: 204, no body. The session is revoked, so its access token no longer works.
    ApiResponse<Void> out = auth.logoutWithHttpInfo();
    check(out.getStatusCode() == 204, "logout: want 204, got " + out.getStatusCode());
    log("logged out (204)");
    expectProblem("logout again with the revoked token", auth::logout, 401, "unauthenticated");

    log("OK");
  }

  public static void main(String[] args) {
    try {
      run();
    } catch (Failure e) {
      System.err.println("java client: FAIL: " + e.getMessage());
      System.exit(1);
    } catch (ApiException e) {
      System.err.println("java client: FAIL: unexpected " + e.getCode() + ": " + e.getResponseBody()
          + (e.getCode() == 0 ? " (" + e.getMessage() + ")" : ""));
      System.exit(1);
    } catch (IOException | RuntimeException e) {
      System.err.println("java client: FAIL: unexpected error: " + e);
      System.exit(1);
    }
  }
}
