// The Go client check: a module of its own, so that the main module's ./... (build, vet, staticcheck, tidy) never
// sees nexusclient/, which test/clients/run.sh generates at run time and git ignores. Keep the versions in step with
// ../../../go.mod.
module nexus-clients-test

go 1.26.8

require (
	github.com/oapi-codegen/runtime v1.8.0
	go.yaml.in/yaml/v3 v3.0.4
)

require (
	github.com/apapsch/go-jsonmerge/v2 v2.0.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
)
