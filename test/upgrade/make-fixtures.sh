#!/usr/bin/env bash
# Writes the upgrade test's fixtures (test/upgrade/<tag>/) with the binary of a release tag (default v0.1.0):
# a SQLite and a PostgreSQL database that release created and used, and fixture.json describing them. The
# PostgreSQL server is a throwaway one from the locally installed binaries (as for `make test`). See
# test/upgrade/makefixtures/main.go. Usage, from anywhere in the repository:
#
#   test/upgrade/make-fixtures.sh [-tag v0.1.0]
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
export GOTOOLCHAIN="${GOTOOLCHAIN:-$(awk '/^toolchain /{print $2}' go.mod)}"
exec go run ./test/upgrade/makefixtures "$@"
