//go:build !race

package httpapi

// testCommitTimeout is the event writer's commit timeout in tests: the production default (see race_test.go).
const testCommitTimeout = 0
