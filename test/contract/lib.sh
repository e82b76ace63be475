# Shared by the contract checks: start a live `nexus serve --dev` on SQLite or on a throwaway PostgreSQL, and
# export where it listens and the demo credentials it seeded. Source it; call start_server; cleanup runs on exit.
#
#   start_server sqlite|postgres PORT
#   → NEXUS_URL (http://127.0.0.1:PORT), NEXUS_API (…/v2), NEXUS_EMAIL, NEXUS_PASSWORD, NEXUS_CLIENT_ID
set -euo pipefail

CONTRACT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$CONTRACT_DIR/../.." && pwd)
_own_work=
if [ -z "${NEXUS_CONTRACT_WORK:-}" ]; then _own_work=1; fi
WORK_DIR=${NEXUS_CONTRACT_WORK:-$(mktemp -d /tmp/nexus-contract.XXXXXX)}
NEXUS_BIN=${NEXUS_BIN:-$WORK_DIR/nexus}
_pids=()
_pgdata=()

_cleanup() {
  for pid in "${_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for d in "${_pgdata[@]}"; do _as_pg pg_ctl stop -m immediate -D "$d" >/dev/null 2>&1 || true; rm -rf "$(dirname "$d")"; done
  if [ -n "$_own_work" ]; then rm -rf "$WORK_DIR"; fi
}
trap _cleanup EXIT

build_server() {
  [ -x "$NEXUS_BIN" ] || (cd "$REPO_DIR" && CGO_ENABLED=0 go build -o "$NEXUS_BIN" ./cmd/nexus)
}

_pg_bin() {
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

_as_pg() {
  local bin; bin=$(_pg_bin)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/$1" "${@:2}"; else "$bin/$1" "${@:2}"; fi
}

# start_postgres: a throwaway cluster on a unix socket; sets PG_URL (not a subshell, so cleanup sees it).
start_postgres() {
  local dir; dir=$(mktemp -d /tmp/nxpgc.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  _as_pg initdb -A trust -U postgres --no-sync -E UTF8 --locale=C -D "$dir/data" >/dev/null
  _pgdata+=("$dir/data")
  _as_pg pg_ctl start -w -t 60 -D "$dir/data" -l "$dir/server.log" \
    -o "-c listen_addresses='' -k $dir -p 5432 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null
  PG_URL="postgres://postgres@/postgres?host=$dir&port=5432&sslmode=disable"
}

start_server() {
  local db=$1 port=$2 data out
  build_server
  data=$(mktemp -d "$WORK_DIR/data.XXXXXX")
  out="$data/stdout"
  local -a env=(NEXUS_DATA_DIR="$data" NEXUS_HTTP_ADDR="127.0.0.1:$port" NEXUS_LOG_LEVEL=warn)
  # Schemathesis sends tens of thousands of requests from one IP, one user and one client, with wrong passwords for
  # the demo account among them: the per-request limits are raised far above that (so every response still
  # carries RateLimit headers for the checks), and the per-account login limits are off, so that the demo account
  # is never slowed. 429 answers themselves are proven by the Go tests (internal/httpapi/ratelimit_test.go).
  env+=(NEXUS_RATE_LIMIT_IP=1000000/1m NEXUS_RATE_LIMIT_AUTH_IP=1000000/1m NEXUS_RATE_LIMIT_CLIENT=1000000/1m
    NEXUS_RATE_LIMIT_PRINCIPAL=1000000/1m NEXUS_RATE_LIMIT_LOGIN_ACCOUNT=off NEXUS_LOGIN_FAILURES=off)
  if [ "$db" = postgres ]; then start_postgres; env+=(NEXUS_DATABASE_URL="$PG_URL"); fi
  env "${env[@]}" "$NEXUS_BIN" serve --dev >"$out" 2>"$data/stderr" &
  _pids+=($!)
  for _ in $(seq 1 150); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || { echo "server did not start:"; cat "$data/stderr"; return 1; }
  export NEXUS_URL="http://127.0.0.1:$port" NEXUS_API="http://127.0.0.1:$port/v2"
  NEXUS_EMAIL=$(awk '/email:/{print $2; exit}' "$out")
  NEXUS_PASSWORD=$(awk '/password:/{print $2; exit}' "$out")
  NEXUS_CLIENT_ID=$(awk '/client_id:/{print $2; exit}' "$out")
  export NEXUS_EMAIL NEXUS_PASSWORD NEXUS_CLIENT_ID NEXUS_SERVER_LOG="$data/stderr"
  echo "nexus serve --dev on $db at $NEXUS_URL (log: $data/stderr)"
}
