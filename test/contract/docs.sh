#!/usr/bin/env bash
# Loads /docs of a live server in headless Chromium (Debian's package; never a downloaded browser), checks that
# the page rendered every operation of openapi.yaml, and saves a screenshot as a CI artifact.
source "$(dirname "$0")/lib.sh"
ARTIFACTS=${NEXUS_ARTIFACTS:-$REPO_DIR/.cache/artifacts}
mkdir -p "$ARTIFACTS"
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$CHROMIUM" ] || { echo "docs: chromium is not installed (apt-get install chromium)"; exit 1; }

start_server sqlite "${NEXUS_DOCS_PORT:-18401}"
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --user-data-dir="$(mktemp -d "$WORK_DIR/chromium.XXXXXX")")
"$CHROMIUM" "${flags[@]}" --dump-dom "$NEXUS_URL/docs" 2>/dev/null >"$WORK_DIR/docs.html"
"$CHROMIUM" "${flags[@]}" --window-size=1400,2000 --screenshot="$ARTIFACTS/docs.png" "$NEXUS_URL/docs" >/dev/null 2>&1

missing=0
for id in $(awk '$1 == "operationId:" {print $2}' "$REPO_DIR/openapi.yaml"); do
  if ! grep -q "data-operation-id=\"$id\"" "$WORK_DIR/docs.html"; then
    echo "docs: the page Chromium rendered lacks operation $id"; missing=1
  fi
done
[ -s "$ARTIFACTS/docs.png" ] || { echo "docs: no screenshot"; missing=1; }
[ "$missing" = 0 ] && echo "docs: Chromium rendered all $(grep -c data-operation-id "$WORK_DIR/docs.html") operations; screenshot at $ARTIFACTS/docs.png"
exit "$missing"
