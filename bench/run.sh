#!/usr/bin/env bash
# All of irsa's benchmarks, as recorded in bench/README.md. Loopback only, bounded in time, stops what it starts.
#   bench/run.sh            criterion (mutation core) + webhook load + webhook memory (100k SAs)
#                           + irsa side by side with the reference webhook + issuer vs nginx
#                           + signer Sign latency (file keys over the socket, KMS against moto)
#   bench/run.sh criterion|load|memory|reference|issuer|signer   just one
#   reference: IRSA_BENCH_REFERENCE_ARGS="--rounds 3 --seconds 20 --accounts 100000" (the defaults) to change them
#   bench/run.sh soak       not in the default list (20+ minutes): the webhook, then the issuer, 10 minutes each
#                           at 80 % of saturation, with a verdict (exits non-zero when one fails);
#                           IRSA_BENCH_SOAK_ARGS="--minutes 10 --window-seconds 60" (the defaults) to change them,
#                           "--servers issuer" (or webhook) for one of them
# Installs what it needs: the peers (hack/install-peers.sh), for `reference` the reference webhook
# (hack/install-peers.sh reference-webhook), oha (cargo install, cached in ~/.cache/irsa/tools), and for the
# issuer comparison nginx + wrk from Debian (apt-get).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
what=("$@")
[[ ${#what[@]} -gt 0 ]] || what=(criterion load memory reference issuer signer)
tools=${IRSA_TOOLS_DIR:-$HOME/.cache/irsa/tools}
log() { printf '\n== %s\n' "$*" >&2; }

need_oha() {
  OHA=$tools/oha-1.16.0/bin/oha
  if [[ ! -x $OHA ]]; then
    log "installing oha 1.16.0 into $tools/oha-1.16.0 (a few minutes, once)"
    cargo install oha --version 1.16.0 --locked --root "$tools/oha-1.16.0"
  fi
  export OHA
}

for w in "${what[@]}"; do
  case $w in
    criterion)
      log "criterion: decode + mutate + encode"
      cargo bench -p irsa-webhook --bench mutate -- --warm-up-time 2 --measurement-time 5 ;;
    load|memory)
      eval "$(hack/install-peers.sh)"
      need_oha
      log "webhook $w against the real topology (release build)"
      cargo build --release -p irsa -p irsa-e2e --bin irsa --bin bench-webhook
      IRSA_E2E_WEBHOOK_LOG=info IRSA_BIN=$PWD/target/release/irsa target/release/bench-webhook "$w"
      if [[ $w == load ]]; then
        log "webhook load again with --worker-threads 1 (IRSA_WORKER_THREADS=1)"
        IRSA_WORKER_THREADS=1 IRSA_E2E_WEBHOOK_LOG=info IRSA_BIN=$PWD/target/release/irsa target/release/bench-webhook load
      fi ;;
    reference)
      eval "$(hack/install-peers.sh)"
      eval "$(hack/install-peers.sh reference-webhook)"
      need_oha
      log "irsa side by side with amazon-eks-pod-identity-webhook (release build; rounds alternate)"
      cargo build --release -p irsa -p irsa-e2e --bin irsa --bin bench-webhook
      read -ra extra <<<"${IRSA_BENCH_REFERENCE_ARGS:-}"
      IRSA_E2E_WEBHOOK_LOG=info IRSA_BIN=$PWD/target/release/irsa target/release/bench-webhook reference "${extra[@]}" ;;
    soak)
      eval "$(hack/install-peers.sh)"
      need_oha
      log "soak: webhook then issuer at 80 % of saturation, in the real topology (release build)"
      cargo build --release -p irsa -p irsa-e2e --bin irsa --bin bench-webhook
      read -ra extra <<<"${IRSA_BENCH_SOAK_ARGS:-}"
      IRSA_E2E_WEBHOOK_LOG=info IRSA_BIN=$PWD/target/release/irsa target/release/bench-webhook soak "${extra[@]}" ;;
    issuer)
      if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
        log "installing nginx and wrk (Debian)"
        apt-get update -qq && apt-get install -y -qq nginx wrk
      fi
      cargo build --release -p irsa
      IRSA_BIN=$PWD/target/release/irsa bench/issuer-jwks.sh ;;
    signer)
      eval "$(hack/install-peers.sh)"
      log "signer: Sign latency p50/p99, key files over the unix socket, KMS against moto (release build)"
      cargo bench -p irsa-signer --bench sign --no-run
      moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
      "$IRSA_PYTHON_VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"${TMPDIR:-/tmp}/irsa-bench-moto.log" 2>&1 &
      moto_pid=$!
      for _ in $(seq 100); do curl -sf "http://127.0.0.1:$moto_port/moto-api/" >/dev/null && break; sleep 0.2; done
      status=0
      IRSA_MOTO_ENDPOINT="http://127.0.0.1:$moto_port" cargo bench -p irsa-signer --bench sign || status=$?
      kill "$moto_pid" 2>/dev/null || true
      wait "$moto_pid" 2>/dev/null || true
      [[ $status -eq 0 ]] || exit "$status" ;;
    *) echo "unknown benchmark '$w' (criterion, load, memory, reference, issuer, soak, signer)" >&2; exit 2 ;;
  esac
done
