#!/usr/bin/env bash
# Contract gate: Schemathesis against a live `nexus serve --dev`, on SQLite or on a throwaway PostgreSQL.
#
#   test/contract/schemathesis.sh sqlite|postgres [extra schemathesis run options…]
#
# Every check, positive and negative data, the examples, coverage, fuzzing and stateful phases, a fixed seed and
# at least 100 examples per operation: see schemathesis.toml. Authentication: hooks.py logs in with the seeded
# demo credentials. Exits non-zero on any failure, error or warning.
#
# Environment: NEXUS_CONTRACT_VENV (virtualenv, default $REPO/.cache/contract-venv), NEXUS_CONTRACT_REPORTS
# (where the JUnit and NDJSON reports go, default a directory under the lib.sh work dir).
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

db=${1:-}
case "$db" in
  sqlite) port=18201 ;;
  postgres) port=18202 ;;
  *) echo "usage: $0 sqlite|postgres [schemathesis run options…]" >&2; exit 2 ;;
esac
shift

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$here/../.." && pwd)
venv=${NEXUS_CONTRACT_VENV:-$REPO/.cache/contract-venv}

# A virtualenv with exactly the pinned Schemathesis; pip runs only when it is missing or another version.
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
if [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

# shellcheck source=lib.sh
source "$here/lib.sh"
start_server "$db" "$port"

reports=${NEXUS_CONTRACT_REPORTS:-$WORK_DIR/reports-$db}
mkdir -p "$reports"

start=$(date +%s)
status=0
SCHEMATHESIS_HOOKS="$here/hooks.py" "$venv/bin/schemathesis" \
  --config-file "$here/schemathesis.toml" \
  run "$REPO/openapi.yaml" \
  --url "$NEXUS_API" \
  --report junit,ndjson --report-dir "$reports" \
  --no-color \
  "$@" || status=$?
elapsed=$(($(date +%s) - start))

echo "schemathesis on $db: exit $status in ${elapsed}s (reports: $reports)"
exit "$status"
