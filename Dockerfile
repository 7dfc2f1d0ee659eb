# Wolfpack image: static binaries on a distroless, non-root base.
# The node agent runs from the same image as root with NET_ADMIN and NET_RAW only (see
# config/agent/daemonset.yaml). This machine has no Docker engine, so the image is not built or tested here (see README.md).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
ARG TARGETOS=linux TARGETARCH=amd64
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/manager ./cmd/node-agent ./cmd/kubectl-cluster

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/manager /manager
COPY --from=build /out/node-agent /node-agent
COPY --from=build /out/kubectl-cluster /kubectl-cluster
USER 65532:65532
ENTRYPOINT ["/manager"]
