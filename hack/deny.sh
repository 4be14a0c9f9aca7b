#!/usr/bin/env bash
# The dependency policy of deny.toml, checked with the pinned cargo-deny (hack/peers.env), offline:
#   licenses (permissive, listed), bans (duplicate versions and wildcards warned), sources (crates.io only).
# The advisories check needs the RustSec database from GitHub; IRSA_DENY_ADVISORIES=1 adds it where the
# network allows (it fetches the database into ~/.cargo/advisory-dbs).
# Usage: hack/deny.sh   (exits non-zero when a check fails; warnings are printed without their graphs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

eval "$(hack/install-peers.sh cargo-deny)"
checks=(licenses bans sources)
offline=(--offline)
if [[ ${IRSA_DENY_ADVISORIES:-0} == 1 ]]; then
  checks+=(advisories)
  offline=()
fi
"$IRSA_CARGO_DENY" deny "${offline[@]}" --color never check --hide-inclusion-graph --show-stats "${checks[@]}"
