# dynopilot: a small static image that runs as a non-root user.
#   docker build -t dynopilot --build-arg VERSION=$(git describe --tags --always) .
#   docker run --env-file config.env dynopilot
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/dynopilot ./cmd/dynopilot

# distroless/static has CA certificates and time zones, and no shell; nonroot is uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dynopilot /usr/local/bin/dynopilot
USER nonroot:nonroot
EXPOSE 9797
ENTRYPOINT ["/usr/local/bin/dynopilot"]
CMD ["run"]
