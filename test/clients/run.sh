#!/usr/bin/env bash
# Contract gate: clients generated from openapi.yaml work against a live server, in TypeScript, Python, Go and Java.
#
#   bash test/clients/run.sh [ts] [python] [go] [java]      (no argument: all four)
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
# `java` is openapi-generator's part: java/pom.xml generates a java (okhttp-gson), a typescript-fetch and a python
# client with spec validation on, each checked like the others (every line it prints is a progress line or on the
# allow-list of generator-internal notices below), compiled or type-checked (javac, tsc --strict, Python import and
# mypy); then java/src's program goes through log in, refresh (the refresh token must rotate), listUsers, trackEvent
# (202), trackEventBatch (202, a result per event), an event from 1999 (400 validation_failed at /timestamp, read as
# the generated Problem) and logout (204, then 401 unauthenticated with the revoked token), with the access token
# handed to the generated client (ApiClient.setBearerToken), never written into a header by the program.
#
# Generated code is never committed: Python's and openapi-generator's go to a temporary directory; TypeScript's to
# ts/generated/ and ts/dist/, Go's to go/nexusclient/ (all git-ignored, see .gitignore here), because tsc and the Go
# module need it beside the program. Pinned versions: ts/package.json + package-lock.json (npm ci),
# python/requirements.txt (in the virtualenv shared with the other contract tools), oapi-codegen as the
# repository's go.mod pins it, and openapi-generator with the Java client's libraries in java/pom.xml (Maven
# fetches them into its local repository).
#
# Needs Go, Node ≥ 20 with npm, Python ≥ 3.11 with venv, and a JDK ≥ 17 with Maven. Environment:
# NEXUS_CONTRACT_VENV (the virtualenv, default .cache/contract-venv), NEXUS_CLIENTS_PORT (default 18301), and those
# of test/contract/lib.sh.
set -euo pipefail

CLIENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$CLIENTS_DIR/../.." && pwd)
SPEC=${NEXUS_CLIENTS_SPEC:-$REPO/openapi.yaml} # another document only to test this script: the server serves its own
VENV=${NEXUS_CONTRACT_VENV:-$REPO/.cache/contract-venv}
PORT=${NEXUS_CLIENTS_PORT:-18301}

langs=("$@")
[ ${#langs[@]} -gt 0 ] || langs=(ts python go java)
for lang in "${langs[@]}"; do
  case $lang in ts | python | go | java) ;; *) echo "usage: $0 [ts] [python] [go] [java]" >&2; exit 2 ;; esac
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
    awk '!($0 in n) { order[++k] = $0 } { n[$0]++ }
      END { for (i = 1; i <= k; i++) printf "  | %s%s\n", order[i], (n[order[i]] > 1 ? " (" n[order[i]] " times)" : "") }' <<<"$allowed"
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

# ensure_venv: the shared virtualenv, with every pin of python/requirements.txt at its version (pip runs only when
# one is missing or at another version).
ensure_venv() {
  local py=$VENV/bin/python
  if [ ! -x "$py" ]; then
    command -v python3 >/dev/null || { echo "FAIL: python: python3 is required" >&2; return 1; }
    run_logged "$GEN/venv.log" python3 -m venv "$VENV"
  fi
  echo "$("$py" --version) in $VENV"
  # Install the pinned requirements only when one of them is missing at its version.
  if ! "$py" "$REPO/test/contract/pins.py" python "$CLIENTS_DIR/python/requirements.txt"; then
    run_logged "$GEN/pip.log" "$py" -m pip install --disable-pip-version-check -q -r "$CLIENTS_DIR/python/requirements.txt"
  fi
}

prepare_python() {
  ensure_venv
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

# ---------------------------------------------------------------------------------- openapi-generator and Java
# java/pom.xml runs openapi-generator (its Maven plugin, at the version the pom pins) three times with spec validation
# on: java (okhttp-gson), typescript-fetch and python; then javac compiles the Java client with java/src (the
# program). Each generator's output must be its normal progress lines (OG_EXPECTED) or a notice allowed below; any
# other line of Maven's that is a warning or an error fails too. The typescript-fetch client must pass tsc --strict,
# the python client must import and pass mypy; the Java program runs against the server.
OG_EXPECTED='^\[INFO\] (Previous run output is removed from <tmp>/java/generated/[a-z-]+|Generating with dryRun=false'
OG_EXPECTED+="|OpenAPI Generator: [a-z-]+ \(client\)|Generator '[a-z-]+' is considered stable\."
OG_EXPECTED+='|Environment variable (JAVA|PYTHON)_POST_PROCESS_FILE not defined so the (Java|Python) code may not be properly formatted\. .*'
OG_EXPECTED+="|Hint: Environment variable 'TS_POST_PROCESS_FILE' \(optional\) not defined\. .*"
OG_EXPECTED+="|(NOTE|Note): To enable file post-processing, 'enablePostProcessFile' must be set to \`true\` \(--enable-post-process-file for CLI\)\."
OG_EXPECTED+='|Processing operation [a-zA-Z]+)$'
OG_EXPECTED+='|^#+$|^# (Thanks for using OpenAPI Generator\.|We appreciate your support! Please consider donating to help us maintain this project\.|https://opencollective\.com/openapi_generator/donate) +#$'
# Progress lines that may carry a word check_generator's keyword guard looks for ("skipp", "ignor", "error" in a file
# name such as FieldError.java): dropped before it runs. The options named are the pom's (no tests, no docs); the
# document has no webhooks (OpenAPI 3.0).
OG_KEYWORD_PROGRESS='^\[INFO\] (writing file [^ ]+'
OG_KEYWORD_PROGRESS+='|Skipped [^ ]+ \(Skipped by (apiTests|modelTests|apiDocs|modelDocs) options supplied by user\.\)'
OG_KEYWORD_PROGRESS+='|Skipping generation of Webhooks\.'
OG_KEYWORD_PROGRESS+='|Output directory \([^)]+\) does not exist, or is inaccessible\. No file \(\.openapi-generator-ignore\) will be evaluated\.)$'

# What openapi-generator prints that the run allows: only what no change to the spec can remove (short of a change
# that breaks existing clients or drops what the contract requires). Each is printed as a NOTICE when it occurs.
# INFO: EventProperties is a free-form object by design (an event's custom metadata); the generators give it a map
# type (Map<String, Object>, { [key: string]: any }, Dict[str, Any]) instead of a class.
OG_FREE_FORM="^\[INFO\] Model EventProperties not generated since it's a free-form object$"
# INFO: the generators render examples of application/json responses only; the problem+json responses keep theirs
# for every other reader of the contract.
OG_PROBLEM_EXAMPLES='^\[INFO\] Found one or more content media type\(s\) with examples in response, but none was application/json\. Examples can currently only be generated for application/json media type\.$'
# INFO: the OAuth endpoints take application/x-www-form-urlencoded bodies, as RFC 6749 requires; openapi-generator
# makes their parameters method parameters (skipFormModel) instead of a model: what a client wants, and no JSON
# body may replace the form.
OG_FORM_MODELS='^\[INFO\] Model (OAuthTokenRequest|OAuthTokenOperationRequest) not generated since it.s marked as unused \(due to form parameters\) and `skipFormModel` \(global property\) set to true \(default\)$'
# INFO: the OAuth endpoints answer errors as application/json, as RFC 6749 §5.2 requires, and as
# application/problem+json when Accept names it; both carry the same OAuthError and examples.
OG_OAUTH_ERRORS='^\[INFO\] More than one content media type found in response\. Only response examples of the application/json will be taken for codegen\.$'
OG_JAVA_KNOWN=(
  # AbstractJavaCodegen.setParameterExampleValue ignores the example of any request body whose schema is a model
  # (it cannot write one as Java), with this warning for each. Only a contract without request-body examples avoids
  # it, and the contract gives every request body one (TestContractConventions; Schemathesis' examples phase, /docs).
  '^\[WARNING\] Ignoring complex example on request body$'
  "$OG_FREE_FORM" "$OG_PROBLEM_EXAMPLES" "$OG_FORM_MODELS" "$OG_OAUTH_ERRORS"
)
OG_TYPESCRIPT_FETCH_KNOWN=("$OG_FREE_FORM" "$OG_PROBLEM_EXAMPLES" "$OG_FORM_MODELS" "$OG_OAUTH_ERRORS")
OG_PYTHON_KNOWN=(
  # AbstractPythonCodegen.toDefaultValue looks up ModelUtils.getSimpleRef(schema.$ref) for every schema, whether it
  # is a $ref or not, and warns for each that is not: a document with a single object schema makes it warn.
  # (java and typescript-fetch may not print it: its other cause, an inline example of an application/json
  # response, is why openapi.yaml keeps those in components/examples.)
  '^\[WARNING\] Failed to get the schema name: null$'
  # DefaultCodegen.fromOperation computes a model name for every parameter (toModelName of its name, for a
  # `content` schema) and uses it only when the parameter has `content`. The `from` query parameters of listEvents
  # and getAnalyticsSummary have a `schema`: no model is generated or renamed, and their Python argument is
  # `var_from`, as before. Only renaming the parameter on the wire would silence it.
  '^\[WARNING\] From \(reserved word\) cannot be used as model name\. Renamed to ModelFrom$'
  "$OG_FREE_FORM" "$OG_PROBLEM_EXAMPLES" "$OG_FORM_MODELS" "$OG_OAUTH_ERRORS"
)

prepare_java() {
  local dir=$CLIENTS_DIR/java out=$GEN/java
  command -v java >/dev/null && command -v javac >/dev/null && command -v mvn >/dev/null ||
    { echo "FAIL: java: a JDK (java, javac) and Maven are required" >&2; return 1; }
  local major
  major=$(java -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/{print $2}')
  [ "${major%%.*}" -ge 17 ] 2>/dev/null || { echo "FAIL: java: Java 17 or later is required, found ${major:-none}" >&2; return 1; }
  echo "java $major, $(mvn -v 2>/dev/null | sed -n '1{s/\x1b\[[0-9;]*m//g; s/ (.*//; p}')"
  # Generate (the three generators), compile (the Java client and program), write the class path.
  # openapi-generator prints some of its notices at most once within 2 s per JVM (its OnceLogger), and the three
  # generators share Maven's: with that off, each prints all of its own, whatever ran before.
  run_logged "$GEN/mvn.log" mvn -B -ntp -Dstyle.color=never -f "$dir/pom.xml" compile \
    -Dnexus.spec="$SPEC" -Dnexus.build.dir="$out" -Dorg.openapitools.codegen.utils.oncelogger.enabled=false
  # One log per generator, from the plugin's executions (java, typescript-fetch, python); the rest is Maven's.
  sed -e 's/\x1b\[[0-9;]*m//g' -e 's/\r$//' "$GEN/mvn.log" | DIR=$GEN SKIPS=$OG_KEYWORD_PROGRESS awk '
    /^\[INFO\] --- openapi-generator-maven-plugin:[^ ]+:generate \([a-z-]+\)/ {
      gen = $0; sub(/.*:generate \(/, "", gen); sub(/\).*/, "", gen); next
    }
    /^\[INFO\] (--- |----------|BUILD )/ { gen = "" }
    gen != "" && ($0 ~ ENVIRON["SKIPS"] || $0 == "[INFO] ") { next }
    { print > (ENVIRON["DIR"] "/" (gen != "" ? "og-" gen : "mvn-rest") ".log") }
  '
  local g
  local -a known
  for g in java typescript-fetch python; do
    [ -s "$GEN/og-$g.log" ] || { echo "FAIL: java: no output of openapi-generator $g in $GEN/mvn.log" >&2; return 1; }
    case $g in
      java) known=("${OG_JAVA_KNOWN[@]}") ;;
      typescript-fetch) known=("${OG_TYPESCRIPT_FETCH_KNOWN[@]}") ;;
      python) known=("${OG_PYTHON_KNOWN[@]}") ;;
    esac
    check_generator "openapi-generator $g" "$GEN/og-$g.log" "$OG_EXPECTED" "${known[@]}"
  done
  if grep -E '^\[(WARNING|ERROR)\]|^WARNING' "$GEN/mvn-rest.log" >&2; then
    echo "FAIL: java: Maven warned while compiling (above; full log in $GEN/mvn.log)" >&2
    return 1
  fi
  echo "java: javac (release 17) passed"
  # typescript-fetch: tsc from ts/ (npm ci, unless the ts client was prepared in this run already).
  [[ " ${ready[*]} " == *" ts "* ]] ||
    run_logged "$GEN/npm-ci.log" npm ci --prefix "$CLIENTS_DIR/ts" --no-audit --no-fund --loglevel=error
  run_logged "$GEN/tsc-og.log" "$CLIENTS_DIR/ts/node_modules/.bin/tsc" --strict --noEmit --target es2022 \
    --lib es2022,dom --module esnext --moduleResolution bundler "$out/generated/typescript-fetch/index.ts"
  echo "java: typescript-fetch client: tsc --strict passed"
  # python: the package imports (every API and model) and passes mypy (its missing dateutil stubs aside).
  ensure_venv
  (cd "$out/generated/python" &&
    run_logged "$GEN/og-python-import.log" "$VENV/bin/python" -c 'import nexus_openapi_client' &&
    run_logged "$GEN/og-mypy.log" "$VENV/bin/mypy" --cache-dir "$GEN/mypy-cache-og" \
      --disable-error-code=import-untyped nexus_openapi_client)
  echo "java: python client: import and mypy passed"
}
run_java() { java -cp "$GEN/java/classes:$(cat "$GEN/java/classpath.txt")" nexus.check.Main; }

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
