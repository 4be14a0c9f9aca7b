# syntax=docker/dockerfile:1
#
# The one irsa image: `irsa webhook serve`, `irsa issuer serve`, and the other subcommands.
#   docker build -t ghcr.io/irsa-rs/irsa:0.1.0 .
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 (each built natively or under
# emulation; hack/build-static.sh picks the musl target of the architecture it runs on).
#
# The build step is hack/build-static.sh, the same script `make image-check` runs and checks without a Docker
# engine (static ELF, runs from an empty root as uid 65532).

# The toolchain the workspace is built and tested with (rust-version in Cargo.toml is the minimum).
ARG RUST_VERSION=1.95

# Debian, as on the project's own machines: rustup adds the musl target, musl-tools compiles aws-lc-sys (the
# TLS provider's C code) for it.
FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target directory between builds; the script copies the stripped
# binary out of the cached target directory, which is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    hack/build-static.sh /out/irsa

# distroless/static: no shell, no libc, CA certificates included (the iam subcommands call AWS over TLS).
# The :nonroot tag runs as uid/gid 65532, which the manifests also set.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/irsa /irsa
# Exec form, no shell: fails the build if the binary does not run in this image.
RUN ["/irsa", "--version"]
USER 65532:65532
ENTRYPOINT ["/irsa"]
