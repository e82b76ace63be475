package httpapi_test

import (
	"context"
	"os"
	"testing"

	"github.com/nexus-cloud/nexus-core/internal/app"
	"github.com/nexus-cloud/nexus-core/internal/config"
	"github.com/nexus-cloud/nexus-core/internal/httpapi"
	"github.com/nexus-cloud/nexus-core/internal/testdb"
)

// TestMain hands the harness (harness_test.go, package httpapi) the constructor cmd/nexus uses, which that
// package's own tests cannot import, and runs the tests with throwaway databases.
func TestMain(m *testing.M) {
	httpapi.NewNode = newNode
	os.Exit(testdb.Main(m))
}

func newNode(ctx context.Context, cfg config.Config, deps httpapi.NodeDeps) (httpapi.Node, error) {
	a, err := app.New(ctx, cfg, app.Deps(deps))
	if err != nil {
		return httpapi.Node{}, err
	}
	return httpapi.Node{Auth: a.Auth, Pipeline: a.Pipeline, Handler: a.Handler, Metrics: a.API.MetricsHandler(), Close: a.Close}, nil
}
