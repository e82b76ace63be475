#!/usr/bin/env bash
# Contract gate: Schemathesis against a live `nexus serve --dev`, on SQLite or on a throwaway PostgreSQL.
#
#   test/contract/schemathesis.sh sqlite|postgres [schemathesis run options, e.g. --seed 7 --max-examples 500]
#
# What runs is in schemathesis.toml: every check, positive and negative data, the examples, coverage, fuzzing and
# stateful phases, a fixed seed, at least 100 examples per operation. hooks.py authenticates by logging in with the
# credentials the dev server seeded. Exits non-zero on any failure, error or warning of Schemathesis, and on any
# error the server logged meanwhile.
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

# From lib.sh's work directory, so that Hypothesis leaves nothing in the repository. Two invocations against the
# same server: the examples, coverage and fuzzing phases, then the stateful phase on its own (schemathesis.toml
# says why). The failing invocation, if any, decides the exit status.
cd "$WORK_DIR"
start=$(date +%s)
status=0
for phases in examples,coverage,fuzzing stateful; do
  name=${phases%%,*}
  SCHEMATHESIS_HOOKS="$here/hooks.py" "$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" \
    run "$REPO/openapi.yaml" --url "$NEXUS_API" --phases "$phases" \
    --report junit,ndjson --report-dir "$reports" \
    --report-junit-path "$reports/junit-$name.xml" --report-ndjson-path "$reports/events-$name.ndjson" \
    --no-color "$@" || status=$?
done
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
        for case in recorder["cases"].values():
            value = case["value"]
            counts[f"{value['method'].upper()} {value['path']}"]["stateful"] += 1
    else:
        counts[recorder["label"]][finished["phase"]] += len(recorder["cases"])
phases = ["examples", "coverage", "fuzzing", "stateful"]
print(f"\n{'generated test cases':32}" + "".join(f"{p:>10}" for p in phases) + f"{'total':>10}")
for label in sorted(counts):
    row = counts[label]
    print(f"{label:32}" + "".join(f"{row[p]:>10}" for p in phases) + f"{sum(row.values()):>10}")
print(f"{'all operations':32}" + "".join(f"{sum(c[p] for c in counts.values()):>10}" for p in phases)
      + f"{sum(sum(c.values()) for c in counts.values()):>10}")
EOF

echo "schemathesis on $db: exit $status after ${elapsed}s; reports in $reports"
exit "$status"
