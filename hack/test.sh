#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it:
#   1. the pinned peers (built into ~/.cache/irsa/tools on a cold machine, seconds when warm);
#   2. rustfmt and clippy with warnings as errors; cargo-machete (no unused dependencies); cargo-deny (licenses,
#      bans, sources; offline); the fuzz smoke (every fuzz/ target for 20 s, past crashes replayed);
#   3. every crate's tests, with moto running so the IAM tests against it run rather than skip;
#   4. the end-to-end suite against real etcd, kube-apiserver, MinIO, moto and the AWS CLI;
#   5. the image (make image: the OCI archive, built without Docker) and the node suite: a real node (containerd,
#      the kubelet, controller-manager, scheduler) running irsa from that image, installed with kubectl -k and
#      helm, pods with an unmodified AWS SDK program on the kubelet's tokens (needs root);
#   6. the Helm chart: helm lint, and helm template rendering what the kustomize overlays render;
#   7. the image check: the archive checked against the Dockerfile, its static musl binary run from the image's
#      own root filesystem as uid 65532.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\n== %s (%s)\n' "$*" "$(date +%H:%M:%S)" >&2; }

step "installing peers"
eval "$(hack/install-peers.sh)"

step "rustfmt + clippy + unused dependencies"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
cargo clippy --workspace --all-targets -- -D warnings
"$IRSA_CARGO_MACHETE"

step "dependency policy (cargo-deny: licenses, bans, sources; offline)"
hack/deny.sh

step "fuzz smoke (every fuzz/ target for 20 s, past crashes replayed first)"
hack/fuzz-smoke.sh

step "building irsa"
cargo build -p irsa

step "unit and integration tests (moto for the IAM crate)"
moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$IRSA_PYTHON_VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"${TMPDIR:-/tmp}/irsa-test-moto.log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$moto_port/moto-api/" >/dev/null && break; sleep 0.2; done
IRSA_MOTO_ENDPOINT="http://127.0.0.1:$moto_port" cargo test --workspace --exclude irsa-e2e
kill $moto_pid 2>/dev/null || true

step "end-to-end suite"
cargo test -p irsa-e2e --test e2e
cargo test -p irsa-e2e --test signer

step "the image (make image) and the node suite: irsa from its image on a real node"
hack/build-image.sh
cargo test -p irsa-e2e --test node

step "Helm chart: helm lint, helm template against the kustomize overlays"
hack/chart-check.sh

step "image check: the OCI archive, against the Dockerfile, its binary run as the image runs it"
hack/image-check.sh
