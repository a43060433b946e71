# syntax=docker/dockerfile:1
#
# The pachca-export image: one static binary FROM scratch, a CA bundle, the
# licence texts of what the binary links and embeds
# (/usr/share/doc/pachca-export/THIRD_PARTY_NOTICES), its CycloneDX SBOM
# (pachca-export.cdx.json there), and /etc/passwd with
# the non-root user it runs as (uid and gid 65532).
#
#   docker build -t pachca-export .
#   docker build -t pachca-export:v1.2.0 --build-arg VERSION=v1.2.0 \
#     --build-arg COMMIT="$(git rev-parse HEAD)" \
#     --build-arg BUILD_DATE="$(git log -1 --format=%cd --date=iso-strict)" .
#   docker run --rm pachca-export version
#
# `make image` builds the same image without a container engine: the build
# stage below runs that builder (cmd/pachca-image) to lay out the file
# system, and ociimage's tests check that user, entrypoint,
# environment, working directory and labels here match it.
#
# Writable state: the working directory /var/lib/pachca-export belongs to
# uid 65532 (mount a volume on it to keep the state between runs) and /tmp
# is world-writable with the sticky bit (the S3 sink's temporary files).
# With a read-only root file system, mount a writable volume on both. Give
# state.dir and the file sinks absolute paths under /var/lib/pachca-export:
# relative paths in pipeline.yaml resolve against the configuration file's
# directory (/etc/pachca-export when mounted there), not the working
# directory.

ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown

FROM --platform=$BUILDPLATFORM golang:1.26.8 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION
ARG COMMIT
ARG BUILD_DATE
RUN CGO_ENABLED=0 GOOS="${TARGETOS:-linux}" GOARCH="${TARGETARCH:-$(go env GOARCH)}" \
      go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.buildVersion=${VERSION} -X main.buildCommit=${COMMIT} -X main.buildDate=${BUILD_DATE}" \
      -o /out/pachca-export ./cmd/pachca-export \
 && go run ./cmd/pachca-notices -o /out/THIRD_PARTY_NOTICES /out/pachca-export \
 && go run ./cmd/pachca-sbom -version "${VERSION}" /out/pachca-export \
 && go run ./cmd/pachca-image -binary /out/pachca-export -arch "${TARGETARCH:-$(go env GOARCH)}" \
      -ca-bundle /etc/ssl/certs/ca-certificates.crt -notices /out/THIRD_PARTY_NOTICES \
      -sbom /out/pachca-export.cdx.json -rootfs /rootfs

FROM scratch
# Owners and modes come along: /var/lib/pachca-export 65532 0750, /tmp 1777.
COPY --from=build /rootfs/ /
ARG VERSION
ARG COMMIT
ARG BUILD_DATE
LABEL org.opencontainers.image.title="pachca-export" \
      org.opencontainers.image.description="Exports the Pachca audit-event log to NDJSON, Parquet, S3 and Kafka" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${BUILD_DATE}"
ENV PATH=/usr/local/bin
USER 65532:65532
WORKDIR /var/lib/pachca-export
ENTRYPOINT ["/usr/local/bin/pachca-export"]
