// Command deploycheck builds the container image without a container engine and checks it and the deployment
// manifests. It is CI tooling, in a module of its own so that go-containerregistry, compose-go and the Kubernetes
// API types stay out of the server's module (its go.sum, go mod tidy, govulncheck and gosec):
//
//	go -C .ci/deploycheck run . image  -repo ../.. -bin DIR -out DIR [-version V]   build the OCI image from the binaries in DIR
//	go -C .ci/deploycheck run . verify -repo ../.. -out DIR                         check the built image, and run its binary
//	go -C .ci/deploycheck run . manifests -repo ../..                               validate deploy/compose.yaml and deploy/k8s
//
// .ci/image and `make image`, `make deploy-check` run it.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck image|verify|manifests [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "image":
		err = buildImage(os.Args[2:])
	case "verify":
		err = verifyImage(os.Args[2:])
	case "manifests":
		err = checkManifests(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploycheck:", err)
		os.Exit(1)
	}
}
