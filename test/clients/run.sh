#!/usr/bin/env bash
# Contract gate: clients generated from openapi.yaml work against a live server, in TypeScript, Python and Go.
#
#   bash test/clients/run.sh [ts] [python] [go]      (no argument: all three)
#
# For each language: install its pinned generator (only when missing), generate a client from openapi.yaml, fail
# when the generator printed anything but its normal progress lines (a warning, a skipped operation or response, an
# error), then type-check and build the program. Then start `nexus serve --dev` on SQLite (test/contract/lib.sh) and
# run each program against it: log in, list the users (listUsers, which must include the seeded admin) and read its
# own record with include_permissions=true (getUser: an admin, users:write among the typed permissions, no activity),
# record an event with an event_id (trackEvent: 202), send it again (202, duplicate: true, the first event's id), record
# a batch of two (trackEventBatch: both accepted), list the three (listEvents, newest first), wait until the summary
# counts them (getAnalyticsSummary), send an event from 1999 (400 validation_failed at /timestamp, the typed Problem),
# refresh (the refresh token must rotate), log out (204), then the failures
# (logout with the revoked token → 401 unauthenticated, a wrong password → 401 invalid_credentials, an invalid
# email → 400 validation_failed with errors[].pointer /email), read as the generated, typed Problem.
#
# Generated code is never committed: Python's goes to a temporary directory; TypeScript's to ts/generated/ and
# ts/dist/, Go's to go/nexusclient/ (all git-ignored, see .gitignore here), because tsc and the Go module need it
# beside the program. Pinned versions: ts/package.json + package-lock.json (npm ci), python/requirements.txt (in
# the virtualenv shared with the other contract tools), and oapi-codegen as the repository's go.mod pins it.
#
# Needs Go, Node ≥ 20 with npm, and Python ≥ 3.11 with venv. Environment: NEXUS_CONTRACT_VENV (the virtualenv,
# default .cache/contract-venv), NEXUS_CLIENTS_PORT (default 18301), and those of test/contract/lib.sh.
set -euo pipefail

CLIENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$CLIENTS_DIR/../.." && pwd)
SPEC=${NEXUS_CLIENTS_SPEC:-$REPO/openapi.yaml} # another document only to test this script: the server serves its own
VENV=${NEXUS_CONTRACT_VENV:-$REPO/.cache/contract-venv}
PORT=${NEXUS_CLIENTS_PORT:-18301}

langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(ts python go)
for lang in "${langs[@]}"; do
  case $lang in ts | python | go) ;; *) echo "usage: $0 [ts] [python] [go]" >&2; exit 2 ;; esac
done

# shellcheck source=../contract/lib.sh
source "$REPO/test/contract/lib.sh" # starts the server; its EXIT trap stops it
GEN=$(mktemp -d "$WORK_DIR/clients.XXXXXX")
started=$(date +%s)

log() { printf '\n== %s\n' "$*"; }
elapsed() { echo "$(($(date +%s) - $1))s"; }

# run_logged LOG CMD...: run a command with its output in LOG, shown only when it fails.
run_logged() {
  local out=$1; shift
  if ! "$@" >"$out" 2>&1; then
    cat "$out" >&2
    echo "FAIL: $*" >&2
    return 1
  fi
}

# check_generator NAME LOG EXPECTED_RE [KNOWN_RE...]: fail unless every line a generator printed is one of its
# normal progress lines (EXPECTED_RE) or a known, reported problem (KNOWN_RE: each is printed as a notice).
# Paths are replaced by placeholders first, and the JSON excerpts of the spec that openapi-python-client prints
# under a warning are dropped (the warning's own lines still have to be accounted for).
check_generator() {
  local name=$1 log=$2 expected=$3; shift 3
  local norm rest allowed="" leftover re
  norm=$(sed -e "s#$SPEC#<spec>#g" -e "s#$GEN#<tmp>#g" -e "s#$REPO#<repo>#g" -e 's/\x1b\[[0-9;]*m//g' "$log" |
    awk '/^\{$/ { skip = 1 } !skip { print } /^\}$/ { skip = 0 }' | grep -v '^[[:space:]]*$' || true)
  rest=$norm
  for re in "$@"; do rest=$(grep -Ev "$re" <<<"$rest" || true); done
  [ "$rest" = "$norm" ] || allowed=$(grep -vxF -f <(printf '%s\n' "$rest") <<<"$norm" || true)
  leftover=$(grep -Ev "$expected" <<<"$rest" || true)
  # Belt and braces: whatever the progress-line pattern let through must not look like a warning either.
  [ -n "$leftover" ] || leftover=$(grep -Ei 'warn|skipp|⚠|error|unsupported|deprecat|not supported|ignor|omit' <<<"$rest" || true)
  if [ -n "$leftover" ]; then
    echo "FAIL: $name printed warnings or errors while generating from $SPEC:" >&2
    sed 's/^/  | /' "$log" >&2
    echo "unexpected lines:" >&2
    sed 's/^/  > /' <<<"$leftover" >&2
    return 1
  fi
  if [ -n "$allowed" ]; then
    echo "NOTICE: $name: known warning allowed (see test/clients/run.sh):"
    sed 's/^/  | /' <<<"$allowed"
    echo "$name: generated with no other warnings"
  else
    echo "$name: generated with no warnings"
  fi
}

# ---------------------------------------------------------------------------------------------------- TypeScript
prepare_ts() {
  local dir=$CLIENTS_DIR/ts
  command -v node >/dev/null && command -v npm >/dev/null || { echo "FAIL: ts: node and npm are required" >&2; return 1; }
  echo "node $(node --version)"
  run_logged "$GEN/npm-ci.log" npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  rm -rf "$dir/generated" "$dir/dist"
  (cd "$dir" && ./node_modules/.bin/openapi-typescript "$SPEC" -o "$dir/generated/nexus.d.ts") >"$GEN/ts-gen.log" 2>&1 ||
    { cat "$GEN/ts-gen.log" >&2; return 1; }
  check_generator "openapi-typescript" "$GEN/ts-gen.log" \
    '^✨ openapi-typescript [0-9.]+$|^🚀 <spec> → <repo>/test/clients/ts/generated/nexus\.d\.ts \[[0-9.]+m?s\]$'
  run_logged "$GEN/tsc.log" "$dir/node_modules/.bin/tsc" -p "$dir"
  echo "ts: tsc --strict passed"
}
run_ts() { node "$CLIENTS_DIR/ts/dist/main.js"; }

# -------------------------------------------------------------------------------------------------------- Python
# Warnings the run tolerates: none. (GET /v2/openapi.yaml stands outside the contract because
# openapi-python-client cannot read application/yaml responses and would omit it with a warning.)
PYTHON_KNOWN=()

prepare_python() {
  local py=$VENV/bin/python
  if [ ! -x "$py" ]; then
    command -v python3 >/dev/null || { echo "FAIL: python: python3 is required" >&2; return 1; }
    run_logged "$GEN/venv.log" python3 -m venv "$VENV"
  fi
  echo "$("$py" --version) in $VENV"
  # Install the pinned requirements only when one of them is missing at its version.
  if ! "$py" - "$CLIENTS_DIR/python/requirements.txt" <<'EOF'; then
import sys
from importlib.metadata import PackageNotFoundError, version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, want = line.split("==")
        try:
            have = version(name)
        except PackageNotFoundError:
            have = None
        if have != want:
            sys.exit(f"python: {name} {have or 'missing'}, want {want}: installing {sys.argv[1]}")
EOF
    run_logged "$GEN/pip.log" "$py" -m pip install --disable-pip-version-check -q -r "$CLIENTS_DIR/python/requirements.txt"
  fi
  # The generator runs ruff on its output, from PATH.
  PATH="$VENV/bin:$PATH" "$VENV/bin/openapi-python-client" generate --path "$SPEC" --meta none \
    --output-path "$GEN/python/nexus_client" >"$GEN/python-gen.log" 2>&1 || { cat "$GEN/python-gen.log" >&2; return 1; }
  check_generator "openapi-python-client" "$GEN/python-gen.log" '^Generating <tmp>/python/nexus_client$' "${PYTHON_KNOWN[@]}"
  # mypy --strict on the program; the generated package is read for its types, not judged.
  (cd "$CLIENTS_DIR/python" && export MYPYPATH="$GEN/python" &&
    run_logged "$GEN/mypy.log" "$VENV/bin/mypy" --strict --follow-imports=silent --cache-dir "$GEN/mypy-cache" main.py)
  echo "python: mypy --strict passed"
}
run_python() { PYTHONPATH="$GEN/python" "$VENV/bin/python" "$CLIENTS_DIR/python/main.py"; }

# ------------------------------------------------------------------------------------------------------------ Go
prepare_go() {
  local dir=$CLIENTS_DIR/go
  rm -rf "$dir/nexusclient" && mkdir -p "$dir/nexusclient"
  # From the repository root, so that its go.mod decides the oapi-codegen version.
  (cd "$REPO" && go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen -config test/clients/go/oapi-codegen.yaml \
    "$SPEC") >"$GEN/go-gen.log" 2>&1 || { cat "$GEN/go-gen.log" >&2; return 1; }
  check_generator "oapi-codegen" "$GEN/go-gen.log" '^go: downloading [^ ]+ v[^ ]+$'
  (cd "$dir" && run_logged "$GEN/go-vet.log" go vet ./... && run_logged "$GEN/go-build.log" go build -o "$GEN/go-client" .)
  echo "go: vet and build passed"
}
run_go() { "$GEN/go-client"; }

# ---------------------------------------------------------------------------------------------------------------
# Each step runs in a subshell of its own with set -e, so that one language failing still lets the others report.
failed=()
ready=()
for lang in "${langs[@]}"; do
  log "$lang: generate, check, build"
  t=$(date +%s)
  set +e
  (set -e; "prepare_$lang")
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then ready+=("$lang"); else failed+=("$lang"); fi
  echo "$lang: prepared in $(elapsed "$t")"
done

if [ ${#ready[@]} -gt 0 ]; then
  log "server"
  start_server sqlite "$PORT"
fi
passed=()
for lang in "${ready[@]}"; do
  log "$lang: run against $NEXUS_API"
  set +e
  (set -e; "run_$lang")
  rc=$?
  set -e
  if [ $rc -eq 0 ]; then passed+=("$lang"); else failed+=("$lang"); echo "FAIL: $lang client program (exit $rc)" >&2; fi
done

log "generated clients: ${passed[*]:-none} passed${failed:+; ${failed[*]} failed} ($(elapsed "$started"))"
echo "clients: ${#passed[@]} passed, ${#failed[@]} failed"
if [ ${#failed[@]} -eq 0 ]; then rm -rf "$GEN"; else echo "generated code and logs kept in $GEN" >&2; exit 1; fi
