#!/usr/bin/env bash
# Contract gate: a stock Python OAuth 2.0 library (authlib) against a live `nexus serve --dev` on SQLite.
#
#   bash test/oauth/run.sh
#
# Installs requirements.txt's pins into the shared contract virtualenv (pip runs only when one is missing or at
# another version), starts the server built from this tree on a free port (test/contract/lib.sh), and runs
# stock_client.py with the seeded demo admin: it creates a service client over the API, then authlib's
# OAuth2Session obtains tokens with the client credentials grant (client_secret_basic and client_secret_post) and
# calls GET /v2/users and POST /v2/analytics/events/batch; a wrong secret and a disabled client must raise authlib's
# OAuthError invalid_client. Python warnings are errors (a deprecation in the library's path fails the check).
# Go's golang.org/x/oauth2/clientcredentials is proven in `make test` (internal/httpapi/oauth_stocklib_test.go).
#
# Environment: NEXUS_CONTRACT_VENV (default .cache/contract-venv), NEXUS_OAUTH_PORT (default: a free port), and
# those of test/contract/lib.sh.
set -euo pipefail

OAUTH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$OAUTH_DIR/../.." && pwd)
VENV=${NEXUS_CONTRACT_VENV:-$REPO/.cache/contract-venv}
started=$(date +%s)

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" "$REPO/test/contract/pins.py" oauth "$OAUTH_DIR/requirements.txt"; then
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$OAUTH_DIR/requirements.txt"
fi

# shellcheck source=../contract/lib.sh
source "$REPO/test/contract/lib.sh" # starts the server; its EXIT trap stops it
# A port the kernel just handed out and released; another process could take it before the server binds it,
# in which case the server does not start and the check fails loudly.
port=${NEXUS_OAUTH_PORT:-$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
start_server sqlite "$port"
"$VENV/bin/python" -W error "$OAUTH_DIR/stock_client.py"
echo "oauth: authlib against $NEXUS_API passed in $(($(date +%s) - started))s"
