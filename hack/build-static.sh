#!/usr/bin/env bash
# Builds the `irsa` binary the image ships: release profile, the machine architecture's musl target, linked
# statically (no libc or loader needed at run time), symbols stripped. The Dockerfile runs this script, and
# hack/image-check.sh runs it here and checks what it built, so the two cannot drift apart.
#
# Usage: hack/build-static.sh [OUT=target/static/irsa]
# Needs: rustup (the musl target is added when missing) and a musl C compiler for aws-lc-sys, the TLS provider's
# C code (Debian: apt-get install -y musl-tools).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-target/static/irsa}
target=$(uname -m)-unknown-linux-musl

if ! rustup target list --installed | grep -qx "$target"; then
  echo "build-static: adding the Rust target $target (rustup)" >&2
  rustup target add "$target"
fi
for tool in musl-gcc strip; do
  command -v "$tool" >/dev/null || {
    echo "build-static: $tool not found (Debian: apt-get install -y musl-tools binutils)" >&2
    exit 1
  }
done
echo "build-static: cargo build --release --locked --target $target -p irsa" >&2
cargo build --release --locked --target "$target" -p irsa
# Stripped on the way out rather than by the profile, so the build shares its cache with an unstripped one
# (the profile's strip setting would rebuild every dependency).
mkdir -p "$(dirname "$out")"
strip --strip-all -o "$out" "${CARGO_TARGET_DIR:-target}/$target/release/irsa"
echo "build-static: $out ($(du -h "$out" | cut -f1))" >&2
