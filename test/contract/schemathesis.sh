#!/usr/bin/env bash
# Contract gate: Schemathesis against a live `nexus serve --dev`, on SQLite or on a throwaway PostgreSQL.
#
#   test/contract/schemathesis.sh sqlite|postgres [schemathesis run options, e.g. --seed 7 --max-examples 500]
#
# What runs is in schemathesis.toml: every check, positive and negative data, the examples, coverage, fuzzing and
# stateful phases, a fixed seed, at least 100 examples per operation. hooks.py authenticates by logging in with the
# credentials the dev server seeded, and at the OAuth endpoints as a service client it creates. Exits non-zero on
# any failure, error or warning of Schemathesis, on any error the server logged meanwhile, when the stateful phase
# never followed a link the contract declares to a 2xx answer, and when the seeded admin is no longer an active
# admin or that service client no longer obtains tokens afterwards. Prints the generated cases per operation and
# phase, and the links followed.
#
# Environment: NEXUS_CONTRACT_VENV (virtualenv; default $REPO/.cache/contract-venv), NEXUS_ARTIFACTS (reports go
# to $NEXUS_ARTIFACTS/schemathesis-DB; default $REPO/.cache/artifacts), NEXUS_SCHEMATHESIS_PORT.
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

db=${1:-}
case "$db" in
  sqlite) port=${NEXUS_SCHEMATHESIS_PORT:-18201} ;;
  postgres) port=${NEXUS_SCHEMATHESIS_PORT:-18202} ;;
  *) echo "usage: $0 sqlite|postgres [schemathesis run options]" >&2; exit 2 ;;
esac
shift

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$here/../.." && pwd)
venv=${NEXUS_CONTRACT_VENV:-$REPO/.cache/contract-venv}

# A virtualenv with exactly the pinned Schemathesis; pip runs only when it is missing or at another version.
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
if [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
  echo "schemathesis: installing schemathesis==$SCHEMATHESIS_VERSION into $venv"
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

# shellcheck source=lib.sh
source "$here/lib.sh"
start_server "$db" "$port" # builds the server from this tree; exports NEXUS_API and the seeded credentials

reports=${NEXUS_ARTIFACTS:-$REPO/.cache/artifacts}/schemathesis-$db
rm -rf "$reports" && mkdir -p "$reports"

# From lib.sh's work directory, so that Hypothesis leaves nothing in the repository. Five invocations against the
# same server: the examples, coverage and fuzzing phases, and the stateful phase on its own (schemathesis.toml
# says why), four times: for the Clients operations (first, see below), the Users operations, the Analytics
# operations, and all the others. Schemathesis starts its scenarios only from "reliable" roots when there are
# any (a POST, or a GET without path parameters, whose inputs it does not take for references to resources
# nothing produces), and from the others only when there are none: createUser, listUsers, createClient, listClients and every
# Analytics operation are reliable, login and refreshToken are not (their client_id looks like such a
# reference), so in an invocation with any of those no scenario would start from login, and its links to
# refreshToken would go untested. Each invocation has its own reports (NAME below). The failing invocation, if
# any, decides the exit status. The invocations share the fixture clients hooks.py creates (a secret is shown
# once) through NEXUS_CONTRACT_FIXTURES. The Clients scenarios run first: an organization holds at most 100
# service clients and nothing deletes one, and the fuzzing phase alone would fill it, so that no scenario could
# follow createClient's link to getClient. Afterwards every positive createClient is 409, which the check
# `client_limits` holds to the full organization (schemathesis.toml).
cd "$WORK_DIR"
export NEXUS_CONTRACT_FIXTURES="$WORK_DIR/contract-fixtures-$db.json"
rm -f "$NEXUS_CONTRACT_FIXTURES"
start=$(date +%s)
status=0
run_schemathesis() { # NAME PHASES [options]
  local name=$1 phases=$2
  shift 2
  SCHEMATHESIS_HOOKS="$here/hooks.py" "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" \
    run "$REPO/openapi.yaml" --url "$NEXUS_API" --phases "$phases" \
    --report junit,ndjson --report-dir "$reports" \
    --report-junit-path "$reports/junit-$name.xml" --report-ndjson-path "$reports/events-$name.ndjson" \
    --no-color "$@" || status=$?
}
run_schemathesis stateful-clients stateful --include-tag Clients "$@"
run_schemathesis examples examples,coverage,fuzzing "$@"
run_schemathesis stateful-users stateful --include-tag Users "$@"
run_schemathesis stateful-analytics stateful --include-tag Analytics "$@"
run_schemathesis stateful-others stateful --exclude-tag-regex '^(Users|Analytics|Clients)$' "$@"
elapsed=$(($(date +%s) - start))

# Errors the server logged (a panic, a failure after the response was committed) that no response showed. The
# log goes with the reports: lib.sh removes its work directory on exit.
cp "$NEXUS_SERVER_LOG" "$reports/server.log"
if grep -E 'level=(ERROR|error)|"level":"ERROR"|panic' "$NEXUS_SERVER_LOG" >/dev/null; then
  echo "schemathesis: the server logged errors during the run:"
  grep -E 'level=(ERROR|error)|"level":"ERROR"|panic' "$NEXUS_SERVER_LOG" | head -n 20
  [ "$status" != 0 ] || status=1
fi

# Generated test cases per operation and phase, from the NDJSON report.
"$venv/bin/python" - "$reports"/events-*.ndjson <<'EOF' || true
import collections, json, sys

counts = collections.defaultdict(collections.Counter)
lines = [line for path in sys.argv[1:] for line in open(path, encoding="utf-8")]
for line in lines:
    event = json.loads(line)
    finished = event.get("ScenarioFinished")
    if finished is None:
        continue
    recorder = finished["recorder"]
    if finished["phase"] == "stateful":
        for case in recorder.get("cases", {}).values():
            value = case["value"]
            counts[f"{value['method'].upper()} {value['path']}"]["stateful"] += 1
    else:
        counts[recorder["label"]][finished["phase"]] += len(recorder.get("cases", {}))
phases = ["examples", "coverage", "fuzzing", "stateful"]
print(f"\n{'generated test cases':32}" + "".join(f"{p:>10}" for p in phases) + f"{'total':>10}")
for label in sorted(counts):
    row = counts[label]
    print(f"{label:32}" + "".join(f"{row[p]:>10}" for p in phases) + f"{sum(row.values()):>10}")
print(f"{'all operations':32}" + "".join(f"{sum(c[p] for c in counts.values()):>10}" for p in phases)
      + f"{sum(sum(c.values()) for c in counts.values()):>10}")
EOF

# The links the stateful phase followed, with how often the request they made was answered 2xx. Every link the
# contract declares (createUser → getUser and updateUser, the TokenIssued links to refreshToken, trackEvent →
# listEvents and its retry, listEvents → its next page, createClient → getClient) must have been followed to a
# 2xx answer at least once: otherwise the stateful phase did not test what the links promise. Then the seeded
# admin the hooks log in as must still be an active admin (hooks.py keeps updateUser away from it), and the
# service client they authenticate with at the OAuth endpoints must still obtain tokens with every scope.
"$venv/bin/python" - "$REPO/openapi.yaml" "$reports"/events-stateful-*.ndjson <<'EOF' || { [ "$status" != 0 ] || status=1; }
import collections, json, os, sys

import requests
import yaml

spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
operations = {op["operationId"]: (method.upper(), path) for path, item in spec["paths"].items()
              for method, op in item.items() if isinstance(op, dict) and "operationId" in op}
declared = []
for path, item in spec["paths"].items():
    for method, op in item.items():
        if not isinstance(op, dict) or "responses" not in op:
            continue
        for code, response in op["responses"].items():
            if "$ref" in response:
                response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            for name, link in (response.get("links") or {}).items():
                target = " ".join(operations[link["operationId"]])
                declared.append(f"{method.upper()} {path} -> [{code}] {name} -> {target}")

followed, succeeded, inferred = collections.Counter(), collections.Counter(), set()
for path in (p for p in sys.argv[2:] if os.path.exists(p)):
    for line in open(path, encoding="utf-8"):
        finished = json.loads(line).get("ScenarioFinished")
        if finished is None:
            continue
        recorder = finished["recorder"]
        for case_id, case in recorder.get("cases", {}).items():
            transition = case.get("transition")
            if not transition or not case.get("is_transition_applied"):
                continue
            followed[transition["id"]] += 1
            if transition.get("is_inferred"):
                inferred.add(transition["id"])
            response = (recorder.get("interactions", {}).get(case_id) or {}).get("response") or {}
            if 200 <= response.get("status_code", 0) < 300:
                succeeded[transition["id"]] += 1

print(f"\n{'links followed in the stateful phase':84}{'followed':>10}{'2xx':>8}")
for link in sorted(set(declared) | set(followed)):
    kind = "inferred" if link in inferred else "declared" if link in declared else "other"
    print(f"{link + ' (' + kind + ')':84}{followed[link]:>10}{succeeded[link]:>8}")
problems = [f"the declared link {link} was never followed to a 2xx answer" for link in declared if not succeeded[link]]

api = os.environ["NEXUS_API"].rstrip("/")
credentials = {name: os.environ[f"NEXUS_{name.upper()}"] for name in ("email", "password", "client_id")}
r = requests.post(f"{api}/auth/login", json=credentials, timeout=30)
user = r.json().get("user", {}) if r.status_code == 200 else {}
if user.get("role") != "admin" or user.get("status") != "active":
    problems.append(f"the seeded admin is not an active admin after the run: login {r.status_code} {r.text[:300]}")
else:
    print(f"the seeded admin {user['email']} is still an active admin")
# The service client hooks.py authenticates with at the OAuth endpoints must still obtain tokens with every scope.
fixtures_path = os.environ.get("NEXUS_CONTRACT_FIXTURES", "")
if os.path.exists(fixtures_path):
    service = json.load(open(fixtures_path, encoding="utf-8"))["service"]
    r = requests.post(f"{api}/auth/token", data={"grant_type": "client_credentials"},
                      auth=(service["client_id"], service["client_secret"]), timeout=30)
    scopes = set(r.json().get("scope", "").split()) if r.status_code == 200 else set()
    if scopes != set(spec["components"]["schemas"]["Scope"]["enum"]):
        problems.append(f"the hooks' service client no longer obtains a token with every scope: "
                        f"{r.status_code} {r.text[:300]}")
    else:
        print(f"the hooks' service client {service['client_id']} still obtains tokens with every scope")
for problem in problems:
    print(f"schemathesis: {problem}")
sys.exit(1 if problems else 0)
EOF

echo "schemathesis on $db: exit $status after ${elapsed}s; reports in $reports"
exit "$status"
