# syntax=docker/dockerfile:1
#
# The one irsa image: `irsa webhook serve`, `irsa issuer serve`, and the other subcommands.
#   docker build -t ghcr.io/irsa-rs/irsa:0.1.0 .
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 (each built natively or under
# emulation: no cross toolchain to maintain).

# The toolchain the workspace is built and tested with (rust-version in Cargo.toml is the minimum).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-alpine AS build
# Alpine's Rust targets musl and links statically by default. aws-lc-sys (the TLS provider) compiles C:
# a C toolchain, cmake and perl.
RUN apk add --no-cache build-base cmake perl
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target directory between builds; the binary is copied out of the
# cached target directory since the cache is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked -p irsa \
 && install -D -m 0755 target/release/irsa /out/irsa

# distroless/static: no shell, no libc, CA certificates included (the iam subcommands call AWS over TLS).
# The :nonroot tag runs as uid/gid 65532, which the manifests also set.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/irsa /irsa
# Exec form, no shell: proves the binary is static and runs in this image at build time.
RUN ["/irsa", "--version"]
USER 65532:65532
ENTRYPOINT ["/irsa"]
