# Nexus Core API — everyday commands. `make help` lists them.
GO      ?= go
BIN     ?= bin/nexus
PKGS    := ./...

.DEFAULT_GOAL := help
.PHONY: help run build test test-race bench contract generate check-generate check-tidy fmt lint ci

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

run: ## start the server on 127.0.0.1:8080 with the embedded database and demo data (serve --dev)
	$(GO) run ./cmd/nexus serve --dev

build: ## build a static binary into bin/nexus
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/nexus

test: ## run every test, on SQLite and on a throwaway PostgreSQL (skipped loudly when none can be started)
	@./.ci/postgres-check
	$(GO) test -count=1 $(PKGS)

test-race: ## the tests under the race detector
	$(GO) test -race -count=1 $(PKGS)

bench: ## benchmarks: auth and users through the HTTP handler on both databases; event ingest over HTTP on PostgreSQL against its references (3 runs, medians and ratios)
	$(GO) test -run '^$$' -bench . -skip '^BenchmarkIngest$$' -benchmem $(PKGS)
	$(GO) test -run '^$$' -bench '^BenchmarkIngest$$' -count 3 -v ./internal/httpapi

contract: ## the contract gate: lint, breaking changes, /docs in Chromium, Schemathesis, generated clients (CHECKS="lint docs" for some)
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

ci: lint test ## what CI runs (with CI=true the PostgreSQL tests must run)
