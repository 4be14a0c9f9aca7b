#!/usr/bin/env bash
# Checks what the image ships without a Docker engine: builds the binary with hack/build-static.sh (the
# Dockerfile's own build step), then runs it the way the image does: from a root filesystem holding nothing but
# /irsa (no shell, no libc, no /etc), as uid/gid 65532 (the image's USER), and checks that
#   1. the ELF file asks for no loader and no shared library;
#   2. `irsa --version` runs;
#   3. `irsa webhook mutate` mutates a fixture pod exactly as the test suite expects;
#   4. `irsa issuer serve` answers its JWKS over HTTP, then exits 0 on SIGTERM.
# Needs root (chroot), readelf and curl; installs musl-tools (apt) and the Rust musl target (rustup, through
# hack/build-static.sh) when they are missing.
#
# Usage: hack/image-check.sh            (make image-check)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '== %s\n' "$*" >&2; }
fail() { printf 'image-check: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || fail "needs root, to chroot into the image-like root filesystem"
for tool in readelf curl chroot; do command -v "$tool" >/dev/null || fail "missing $tool"; done

work=$(mktemp -d)
server=
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v musl-gcc >/dev/null; then
  step "installing musl-tools (Debian): the C compiler for aws-lc-sys on the musl target"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q musl-tools >/dev/null \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q musl-tools >/dev/null; } \
    || fail "could not install musl-tools"
fi

step "building the static binary (hack/build-static.sh)"
hack/build-static.sh "$work/irsa"

step "1. no program interpreter, no shared libraries"
if readelf -lW "$work/irsa" | grep -q 'Requesting program interpreter'; then fail "the binary needs a loader"; fi
if readelf -dW "$work/irsa" | grep -q '(NEEDED)'; then fail "the binary needs shared libraries"; fi

# The image's root: /irsa and the files this check hands it, nothing else. The fixture files are readable by
# uid 65532 and the root is not writable by it, as with a read-only root filesystem.
root=$work/root
mkdir -p "$root/in"
install -m 0755 "$work/irsa" "$root/irsa"
fixture=webhook/tests/fixtures/basic
install -m 0644 "$fixture/pod.yaml" "$fixture/serviceaccount.yaml" issuer/tests/fixtures/rsa2048.pub "$root/in/"
# chroot execs /irsa in place, so a background "${as_image[@]}" ... & leaves $! = irsa itself.
as_image=(chroot --userspec=65532:65532 "$root" /irsa)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "2. irsa --version, as uid 65532 in an empty root"
"${as_image[@]}" --version || fail "irsa --version did not run in the image-like root"

step "3. irsa webhook mutate on the '$(basename "$fixture")' fixture"
"${as_image[@]}" webhook mutate --pod /in/pod.yaml --service-account /in/serviceaccount.yaml --output patch \
  >"$work/patch.json" || fail "irsa webhook mutate failed"
python3 - "$work/patch.json" "$fixture/expected-patch.json" <<'PY' || fail "the patch differs from the fixture's"
import json, sys
got, want = (json.load(open(p)) for p in sys.argv[1:])
sys.exit(0 if got == want else f"got {got}\nwant {want}")
PY

step "4. irsa issuer serve over plain HTTP, then SIGTERM"
port=$(free_port) admin=$(free_port)
"${as_image[@]}" issuer serve --issuer-url "http://127.0.0.1:$port" --plain-http --public-key-file /in/rsa2048.pub \
  --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" >"$work/issuer.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break; sleep 0.1; done
jwks=$(curl -sf "http://127.0.0.1:$port/openid/v1/jwks") || { cat "$work/issuer.log" >&2; fail "no JWKS served"; }
[[ $jwks == *'"kty":"RSA"'* ]] || fail "unexpected JWKS: $jwks"
kill -TERM "$server"
status=0
wait "$server" || status=$?
server=
[[ $status == 0 ]] || { cat "$work/issuer.log" >&2; fail "irsa issuer serve exited $status on SIGTERM"; }

step "image-check: passed ($(du -h "$work/irsa" | cut -f1) static binary; the Dockerfile copies it into distroless/static:nonroot)"
