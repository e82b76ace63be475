#!/usr/bin/env bash
# The contract gate (make contract): every check, or the ones named.
#   test/contract/run.sh [lint] [breaking] [docs] [schemathesis] [clients] [oauth]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(lint breaking docs schemathesis clients oauth)
failed=()
for c in "${checks[@]}"; do
  printf '\n==== contract: %s\n' "$c"
  start=$(date +%s)
  case $c in
    lint) bash "$here/lint.sh" || failed+=("$c") ;;
    breaking) bash "$here/breaking.sh" || failed+=("$c") ;;
    docs) bash "$here/docs.sh" || failed+=("$c") ;;
    schemathesis) { bash "$here/schemathesis.sh" sqlite && bash "$here/schemathesis.sh" postgres; } || failed+=("$c") ;;
    clients) bash "$here/../clients/run.sh" || failed+=("$c") ;;
    oauth) bash "$here/../oauth/run.sh" || failed+=("$c") ;;
    *) echo "unknown check $c"; failed+=("$c") ;;
  esac
  echo "==== contract: $c took $(( $(date +%s) - start ))s"
done
passed=$(( ${#checks[@]} - ${#failed[@]} ))
if [ ${#failed[@]} -gt 0 ]; then
  printf '\ncontract: FAILED: %s\n' "${failed[*]}"
  printf 'contract: %d passed, %d failed\n' "$passed" "${#failed[@]}"
  exit 1
fi
printf '\ncontract: all checks passed (%s)\n' "${checks[*]}"
printf 'contract: %d passed, 0 failed\n' "$passed"
