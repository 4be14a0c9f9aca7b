#!/usr/bin/env bash
# A short fuzzing pass over every target in fuzz/ (see fuzz/README.md), for `make test`: builds the targets
# with the pinned cargo-fuzz and nightly Rust, seeds fresh corpora from the test fixtures, and runs each
# target for FUZZ_SMOKE_SECONDS (20 by default) or until it finds a panic, a hang (one input over 10 s) or an
# input that takes over 2 GB. First, each target replays its fuzz/regressions/<target>/ inputs (crashes found
# before, kept as files).
# Warm: about 3 minutes (8 targets × 20 s, plus start-up); cold, the fuzz build alone takes about 10 minutes
# on 2 cores (fuzz/target, its own target directory, about 3 GB).
# Usage: hack/fuzz-smoke.sh [TARGET]...   (default: every target of fuzz/Cargo.toml)
# Exits non-zero naming each target that failed and where its reproducer is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[fuzz-smoke %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

seconds=${FUZZ_SMOKE_SECONDS:-20}
# The seeds need PyYAML and `cryptography`: the moto venv has both.
eval "$(hack/install-peers.sh python cargo-fuzz)"
rustup run nightly rustc --version >/dev/null 2>&1 \
  || { log "nightly Rust is needed (rustup toolchain install nightly)"; exit 1; }

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(RUSTUP_TOOLCHAIN=nightly "$IRSA_CARGO_FUZZ" fuzz list)
fi

# The flags of the long runs too (fuzz/README.md), so both share one build: no sanitizer (the crates forbid
# unsafe code; panics, hangs and memory blow-ups are what is looked for), debug assertions and overflow
# checks on.
# The fuzz build lives outside the checkout, like the peers: a fresh clone (CI) then rebuilds only what changed
# instead of 10 minutes of dependencies.
target_dir=${IRSA_FUZZ_TARGET_DIR:-$HOME/.cache/irsa/fuzz-target}
log "building the fuzz targets into $target_dir (cold: about 10 minutes)..."
RUSTUP_TOOLCHAIN=nightly "$IRSA_CARGO_FUZZ" fuzz build --sanitizer none --debug-assertions --target-dir "$target_dir"
bin=$target_dir/$(uname -m)-unknown-linux-gnu/release

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$IRSA_PYTHON_VENV/bin/python" fuzz/seed-corpora.py "$work/corpus" 2>/dev/null

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  # The inputs that once failed (fuzz/regressions/<target>/), each run once, before any new exploration.
  if compgen -G "fuzz/regressions/$t/*" >/dev/null \
      && ! "$bin/$t" -timeout=10 fuzz/regressions/"$t"/* >"$work/$t.log" 2>&1; then
    grep -E -A15 'panicked|ERROR: libFuzzer' "$work/$t.log" | head -40 >&2 || tail -20 "$work/$t.log" >&2
    log "$t: FAILED on a regression input of fuzz/regressions/$t/"
    failed+=("$t")
    continue
  fi
  if "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$work/artifacts/$t/" "$work/corpus/$t" >"$work/$t.log" 2>&1; then
    log "$t: ok, $(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log") runs," \
      "$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$t.log")/s"
  else
    grep -E -A15 'panicked|ERROR: libFuzzer' "$work/$t.log" | head -40 >&2 || tail -20 "$work/$t.log" >&2
    keep=fuzz/artifacts/$t
    mkdir -p "$keep"
    cp "$work/artifacts/$t"/* "$keep/" 2>/dev/null || true
    log "$t: FAILED; reproducer in $keep/ (run: $bin/$t $keep/<file>)"
    failed+=("$t")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  log "FAILED: ${failed[*]}"
  exit 1
fi
log "all ${#targets[@]} targets ok"
