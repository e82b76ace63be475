//go:build tools

// Package tools pins the versions of the code generator and linters that the Makefile runs with `go run`.
package tools

import (
	_ "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
