package main

import "time"

// The image's settings: the Dockerfile's final stage must say the same (verify compares them line by line), and
// the Kubernetes manifests run as the same user.
const (
	imageUser    = "65532:65532" // numeric, so that runAsNonRoot can be checked without an /etc/passwd
	imageUID     = 65532
	imageBinary  = "/nexus"
	imageDataDir = "/data" // the embedded SQLite database; owned by imageUID, a volume
	imageCerts   = "/etc/ssl/certs/ca-certificates.crt"
	apiPort      = "8080/tcp"
	metricsPort  = "9090/tcp" // NEXUS_METRICS_ADDR, when set to :9090
	imageSource  = "https://github.com/nexus-cloud/nexus-core"
	imageTitle   = "nexus"
	imageLicense = "Apache-2.0"
	// refName names the image in the OCI layout (org.opencontainers.image.ref.name) and the docker-load tarballs:
	// a bare repository name, so that nothing here points at a registry.
	refName = "nexus"
)

var (
	imageEntrypoint = []string{imageBinary}
	imageCmd        = []string{"serve"}
	imageEnv        = []string{"NEXUS_HTTP_ADDR=:8080", "NEXUS_DATA_DIR=" + imageDataDir}
	imageHealth     = []string{"CMD", imageBinary, "healthcheck"}
	healthInterval  = 10 * time.Second
	healthTimeout   = 5 * time.Second
	healthStart     = 30 * time.Second
	healthRetries   = 3
)
