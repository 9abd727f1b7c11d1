# Build: docker build -t causeway .
# Run:   docker run -v $PWD/config:/config -v causeway-data:/data causeway
#        (first: docker run --rm -v $PWD/config:/config causeway -c /config/config.yaml -g -r /config/registration.yaml)
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0-dev
ARG COMMIT=unknown
# Pure Go (modernc SQLite, goolm for Matrix encryption instead of cgo libolm): a static binary
# that needs no libc.
RUN CGO_ENABLED=0 go build -tags goolm -trimpath \
      -ldflags "-s -w -X codeberg.org/causeway/causeway/internal/buildinfo.Version=${VERSION} -X codeberg.org/causeway/causeway/internal/buildinfo.Commit=${COMMIT}" \
      -o /out/causeway ./cmd/causeway \
 && mkdir -p /out/data /out/config \
 && chmod 0700 /out/data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/causeway /causeway
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/config /config
# Not root: the bridge needs no privileges, only its config and data directories.
USER 65532:65532
# The config (and the registration -g writes) live in /config; the SQLite database, the
# archive and its signing key live in /data, the working directory. /data is 0700 (COPY
# keeps the build stage's mode, and a new named volume takes it from the image): it holds
# the WhatsApp private keys.
VOLUME ["/config", "/data"]
WORKDIR /data
EXPOSE 29318
ENTRYPOINT ["/causeway"]
CMD ["-c", "/config/config.yaml"]
