#!/usr/bin/env bash
# Checks the Helm chart charts/irsa:
#   1. `helm lint --strict` with the default values and with every certificate and key mode;
#   2. e2e/tests/chart.rs: `helm template` renders the objects `kubectl kustomize` renders for each overlay of
#      manifests/overlays (and for a customised kustomization), compared field by field; bad values fail.
# Needs kubectl and cargo; installs the pinned helm (hack/install-peers.sh helm) when it is missing.
#
# Usage: hack/chart-check.sh            (make chart-check)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '== %s\n' "$*" >&2; }

eval "$(hack/install-peers.sh helm)"
export IRSA_HELM

step "1. helm lint --strict charts/irsa (helm $("$IRSA_HELM" version --short))"
for values in \
  "" \
  "webhook.certificates.mode=cert-manager,namespace.create=true" \
  "webhook.certificates.mode=secret,webhook.certificates.caBundle=Cg==" \
  "issuer.enabled=true,issuer.ingress.enabled=true" \
  "webhook.enabled=false,issuer.enabled=true,issuer.keys.mode=public-keys,issuer.replicas=1"; do
  "$IRSA_HELM" lint --strict --quiet charts/irsa --namespace irsa-system ${values:+--set "$values"} >&2
done

step "2. helm template against kubectl kustomize (cargo test -p irsa-e2e --test chart)"
cargo test -q -p irsa-e2e --test chart
