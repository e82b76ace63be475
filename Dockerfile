# syntax=docker/dockerfile:1
# The Nexus Core API server: a static binary on an empty base (no shell, no package manager), run as a non-root
# numeric user. CI cannot run a container engine, so it builds the same image without one (.ci/image, `make image`)
# and checks that this file's final stage says what that image's configuration says: user, entrypoint, command,
# environment, working directory, ports, volume, labels and health check. Change both together.
#
#   docker build -t nexus:dev --build-arg VERSION="$(git describe --tags --always)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(git log -1 --format=%cI)" .
#   docker run --rm -p 8080:8080 -e NEXUS_SECRET_KEY -e NEXUS_BEHIND_TLS_PROXY=true -v nexus-data:/data nexus:dev
#
# GO_VERSION is go.mod's toolchain line (CI checks it).
ARG GO_VERSION=1.27.3

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH
WORKDIR /src
# The toolchain of this image, never another one fetched at build time.
ENV GOTOOLCHAIN=local CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
# .git comes along (see .dockerignore) so that -buildvcs=true records the revision that `nexus version` prints.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=true -ldflags='-s -w' -o /rootfs/nexus ./cmd/nexus
# The final image's files, laid out here with their modes, because COPY sets the ownership but copies a directory's
# contents, not the directory itself: root's /nexus (0755), the CA bundle and /tmp (1777); /data (0700) apart, for
# the image's user.
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /rootfs-data/data \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && chmod 0755 /rootfs/nexus && chmod 1777 /rootfs/tmp && chmod 0700 /rootfs-data/data

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
COPY --from=build /rootfs/ /
COPY --from=build --chown=65532:65532 /rootfs-data/ /
ENV NEXUS_HTTP_ADDR=:8080 NEXUS_DATA_DIR=/data
WORKDIR /data
VOLUME ["/data"]
USER 65532:65532
# 8080: the API (NEXUS_HTTP_ADDR); 9090: metrics, when NEXUS_METRICS_ADDR=:9090.
EXPOSE 8080/tcp 9090/tcp
LABEL org.opencontainers.image.title="nexus" \
      org.opencontainers.image.source="https://github.com/nexus-cloud/nexus-core" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/nexus", "healthcheck"]
ENTRYPOINT ["/nexus"]
CMD ["serve"]
