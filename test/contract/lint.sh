#!/usr/bin/env bash
# Lints openapi.yaml: Redocly CLI with the committed ruleset (zero errors, zero warnings), then kin-openapi's own
# validator with defaults, examples and patterns checked.
source "$(dirname "$0")/lib.sh"
cd "$CONTRACT_DIR/lint"
[ -x node_modules/.bin/redocly ] || npm ci --no-audit --no-fund --loglevel=error
out=$(NO_UPDATE_NOTIFIER=1 REDOCLY_TELEMETRY=off ./node_modules/.bin/redocly lint "$REPO_DIR/openapi.yaml" --config redocly.yaml --format stylish 2>&1) || { echo "$out"; exit 1; }
if grep -Eq '^\s+[0-9]+:[0-9]+\s+(warning|error)' <<<"$out"; then echo "$out"; echo "lint: Redocly reported problems"; exit 1; fi
echo "lint: Redocly: no errors, no warnings"
cd "$REPO_DIR"
go run github.com/getkin/kin-openapi/cmd/validate --defaults --examples --patterns --multi -- openapi.yaml
echo "lint: kin-openapi validate --defaults --examples --patterns: valid"
