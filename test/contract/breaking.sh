#!/usr/bin/env bash
# Fails on a breaking change of openapi.yaml against the published v2.4.0 contract kept in the repository and
# against openapi.yaml of the previous commit, unless info.version moved to a new major version.
source "$(dirname "$0")/lib.sh"
OASDIFF=(go run github.com/oasdiff/oasdiff@v1.36.0)
cd "$REPO_DIR"
major() { awk '/^info:/{i=1} i && /^  version:/{split($2, v, "."); print v[1]; exit}' "$1"; }
check() { # name base
  local name=$1 base=$2
  if [ "$(major openapi.yaml)" -gt "$(major "$base")" ]; then
    echo "breaking: info.version moved to a new major version; not checked against $name"
    return 0
  fi
  if "${OASDIFF[@]}" breaking "$base" openapi.yaml --fail-on ERR --err-ignore test/contract/breaking-accepted.md; then
    echo "breaking: no breaking change against $name"
  else
    echo "breaking: openapi.yaml breaks $name (bump info.version to a new major, or make the change additive)"
    return 1
  fi
}
status=0
check "the published contract (test/contract/published/nexus-core-api-v2.4.0.yaml)" test/contract/published/nexus-core-api-v2.4.0.yaml || status=1
if git rev-parse -q --verify HEAD~1 >/dev/null && git cat-file -e HEAD~1:openapi.yaml 2>/dev/null; then
  git show HEAD~1:openapi.yaml >"$WORK_DIR/previous.yaml"
  check "the previous commit ($(git rev-parse --short HEAD~1))" "$WORK_DIR/previous.yaml" || status=1
else
  echo "breaking: no previous commit with openapi.yaml; skipped that comparison"
fi
exit "$status"
