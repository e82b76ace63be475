# Nexus Core API — everyday commands. `make help` lists them.
GO      ?= go
BIN     ?= bin/nexus
PKGS    := ./...
FUZZTIME ?= 15s
TESTFLAGS ?=

# The Go toolchain is go.mod's toolchain line (go1.27.3: go1.26.8's standard library has known vulnerabilities).
# A machine whose Go defaults to GOTOOLCHAIN=local uses it too through make; the go command fetches it from the
# module proxy once. Set GOTOOLCHAIN yourself to override.
export GOTOOLCHAIN ?= $(shell awk '/^toolchain /{print $$2}' go.mod)

.DEFAULT_GOAL := help
.PHONY: help run build test test-race fuzz bench bench-events-10m loadtest cluster-test contract generate check-generate check-tidy fmt lint gosec vulncheck security image deploy-check ci

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# run builds the binary and then runs it, instead of `go run`: Ctrl-C ends in the server's own graceful shutdown
# and exit status (go run exits 1 whenever its program was interrupted, which make reported as an error).
run: build ## start the server on 127.0.0.1:8080 with the embedded database and demo data (serve --dev)
	exec $(BIN) serve --dev

build: ## build a static binary into bin/nexus
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/nexus

test: ## run every test, on SQLite and on a throwaway PostgreSQL and redis-server (skipped loudly when missing); TESTFLAGS=-race for the race detector
	@./.ci/postgres-check
	@./.ci/redis-check
	$(GO) test $(TESTFLAGS) -count=1 $(PKGS)

test-race: ## every test under the race detector (needs cgo: a C compiler such as gcc), as CI runs them
	$(MAKE) test TESTFLAGS=-race CGO_ENABLED=1

fuzz: ## run every fuzz target for FUZZTIME each (default 15s); the seed corpora run in make test too
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash .ci/fuzz

bench: ## benchmarks: auth and users through the HTTP handler on both databases; event ingest over HTTP on PostgreSQL against its references (3 runs, medians and ratios)
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkIngest$$' -benchmem $(PKGS)
	$(GO) test -run '^$$' -bench '^BenchmarkIngest$$' -count 3 -v ./internal/httpapi

# The events-at-scale benchmark (internal/httpapi/events_scale_bench_test.go): its PostgreSQL data directory and
# SQLite files are cached in BENCH_EVENTS_DIR and seeded again only when the schema or the seed changes;
# BENCH_EVENTS_RESEED=1 forces it (or delete the directory); BENCH_EVENTS_SQLITE= leaves SQLite out. The report
# also goes to $(BENCH_EVENTS_DIR)/report.md.
BENCH_EVENTS ?= 10000,10000000
BENCH_EVENTS_DIR ?= $(CURDIR)/.cache/bench-events
BENCH_EVENTS_ROUNDS ?= 25
BENCH_EVENTS_SQLITE ?= 10000,1000000
bench-events-10m: ## events at 10k and 10M on PostgreSQL (10k and 1M on SQLite) through the HTTP handler: list, filtered list, 30-day summary, ingest; medians, ratios, EXPLAIN buffers (the first run seeds into .cache/bench-events, ~10 min)
	NEXUS_BENCH_EVENTS=$(BENCH_EVENTS) NEXUS_BENCH_EVENTS_DIR=$(BENCH_EVENTS_DIR) NEXUS_BENCH_EVENTS_ROUNDS=$(BENCH_EVENTS_ROUNDS) \
		NEXUS_BENCH_EVENTS_RESEED=$(BENCH_EVENTS_RESEED) NEXUS_BENCH_EVENTS_SQLITE=$(BENCH_EVENTS_SQLITE) \
		$(GO) test -count=1 -timeout 4h -run '^TestEventsAtScale$$' -v ./internal/httpapi

loadtest: build ## the load harness: bin/nexus on a throwaway PostgreSQL (fsync on) and on SQLite, one Markdown table of every figure of issue 13 (LOADTEST_DURATION=5s, LOADTEST_CONNS=64, …: bin/loadtest -h)
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/loadtest ./cmd/loadtest
	./bin/loadtest -bin $(BIN)

cluster-test: ## the cluster test: 3 nexus serve behind HAProxy on a throwaway PostgreSQL and redis-server, under load while nodes restart and die, the database restarts, Redis dies (needs haproxy, redis-server, PostgreSQL; about 2 minutes)
	@./.ci/postgres-check
	@./.ci/redis-check
	@if command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; then echo "cluster test: HAProxy found"; \
	elif [ "$${CI:-}" = true ]; then echo "cluster test: no haproxy and CI=true: the cluster test will FAIL" >&2; \
	else echo "WARNING: no haproxy found (apt-get install haproxy): the cluster test will be SKIPPED" >&2; fi
	NEXUS_CLUSTER_TEST=1 $(GO) test -count=1 -v -timeout 10m -run '^TestCluster$$' ./test/cluster

contract: ## the contract gate: lint, breaking changes, /docs in Chromium, Schemathesis, generated clients, a stock OAuth library (CHECKS="lint docs" for some)
	bash test/contract/run.sh $(CHECKS)

generate: ## regenerate gen/ from openapi.yaml
	$(GO) generate ./gen

check-generate: generate ## fail when gen/ is stale
	@git diff --exit-code --stat -- gen || (echo "gen/ is stale: run 'make generate' and commit it" >&2; exit 1)
	@test -z "$$(git status --porcelain -- gen)" || (echo "gen/ has untracked files: run 'make generate' and commit them" >&2; exit 1)

check-tidy: ## fail when go.mod or go.sum are not tidy
	$(GO) mod tidy -diff

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go' | grep -v '^gen/')

lint: check-generate check-tidy ## gofmt, go vet, staticcheck, generated code and go.mod up to date
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || (echo "gofmt needed:"; echo "$$out"; exit 1) >&2
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck $(PKGS)

# gosec: generated code is left out; every #nosec must name its rule and give a reason after "--". Path
# exclusions, one per reviewed reason:
#   internal/testdb G204 G122: the test-only helper that runs PostgreSQL's server binaries (initdb, pg_ctl, as
#   the postgres user) on directories it created itself; it is never part of the server binary.
#   internal/testredis G204 G304: the test-only helper that runs redis-server and reads its log from the
#   temporary directory it created; never part of the server binary either.
#   test/upgrade/makefixtures G204 G301 G306: the maintainers' fixture generator, which runs git, go, the release's
#   binary and pg_dump, and writes the committed fixtures (readable like every file of the repository).
GOSEC_EXCLUDE := internal/testdb/.*:G204,G122;internal/testredis/.*:G204,G304;test/upgrade/makefixtures/.*:G204,G301,G306
gosec: ## gosec security lint (reviewed exclusions only: #nosec with a reason, GOSEC_EXCLUDE in this Makefile)
	$(GO) run github.com/securego/gosec/v2/cmd/gosec -quiet -fmt golint -exclude-generated \
		-nosec-require-rules -nosec-require-justification -exclude-rules '$(GOSEC_EXCLUDE)' $(PKGS)

vulncheck: ## govulncheck: known vulnerabilities in called code (its default database, else the pinned offline snapshot)
	GO=$(GO) bash .ci/govulncheck

security: gosec vulncheck ## gosec and govulncheck

image: ## the OCI image without a container engine: build/image/oci and build/image/nexus-linux-ARCH.tar, checked and run (IMAGE_ARCHS="amd64 arm64" for both)
	GO=$(GO) bash .ci/image

deploy-check: ## validate deploy/compose.yaml (compose schema), deploy/k8s (Kubernetes API types, strict) and deploy/haproxy (haproxy -c, when installed)
	$(GO) build -o bin/staticcheck honnef.co/go/tools/cmd/staticcheck
	cd .ci/deploycheck && $(GO) mod tidy -diff && $(GO) vet . && ../../bin/staticcheck . && $(GO) run . manifests -repo ../..

ci: lint security test-race fuzz ## what CI runs before the contract gate (with CI=true the PostgreSQL and Redis tests must run)
