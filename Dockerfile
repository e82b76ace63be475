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
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=true -ldflags='-s -w' -o /out/nexus ./cmd/nexus
RUN mkdir -p /out/data /out/tmp && chmod 0700 /out/data && chmod 1777 /out/tmp

FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chmod=0755 /out/nexus /nexus
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build /out/tmp /tmp
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
