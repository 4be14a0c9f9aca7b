#!/usr/bin/env bash
# A/B of the webhook's --shutdown-delay on the test node: pods created in a loop (curl to the apiserver, ~40/s)
# during each `kubectl rollout restart` of the webhook Deployment, until the old replicas are gone; prints, per
# round, how many pods were admitted without credentials (apiserver "failing open").
# Usage: start `make demo-node` (it prints its run directory), then: bench/shutdown-delay-ab.sh RUN_DIR 0s|5s ROUNDS
# Only the node's own addresses are contacted (the apiserver on 10.245.0.1).
set -euo pipefail
dir=$1; delay=$2; rounds=$3
k() { kubectl --kubeconfig "$dir/kubeconfig" "$@"; }
api=https://10.245.0.1:6443
k -n irsa-system set env deployment/irsa-webhook IRSA_SHUTDOWN_DELAY="$delay" >/dev/null
k -n irsa-system rollout status deployment/irsa-webhook --timeout=120s >/dev/null
sleep 12
for r in $(seq "$rounds"); do
  ns=ab-$delay-$r-$RANDOM
  k create ns "$ns" >/dev/null
  k -n "$ns" create sa app >/dev/null
  k -n "$ns" annotate sa app eks.amazonaws.com/role-arn=arn:aws:iam::111122223333:role/ab >/dev/null
  sleep 1
  old=$(k -n irsa-system get pods -l app.kubernetes.io/component=webhook -o name)
  ( while [[ ! -f /tmp/ab-stop ]]; do
      curl -s -o /dev/null --cacert "$dir/ca.crt" -H "Authorization: Bearer irsa-e2e-admin-token" -H 'Content-Type: application/json' \
        -X POST "$api/api/v1/namespaces/$ns/pods" \
        -d '{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"ab-"},"spec":{"serviceAccountName":"app","schedulingGates":[{"name":"x/never"}],"containers":[{"name":"app","image":"x"}]}}'
    done ) &
  loop=$!
  k -n irsa-system rollout restart deployment/irsa-webhook >/dev/null
  k -n irsa-system rollout status deployment/irsa-webhook --timeout=120s >/dev/null
  k -n irsa-system wait --for=delete $old --timeout=60s >/dev/null 2>&1 || true
  sleep 1; touch /tmp/ab-stop; wait $loop; rm -f /tmp/ab-stop
  total=$(k -n "$ns" get pods -o name | wc -l)
  missed=$(k -n "$ns" get pods -o json | python3 -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin)["items"] if not any(v["name"]=="aws-iam-token" for v in p["spec"].get("volumes",[]))))')
  echo "delay=$delay round=$r pods=$total unmutated=$missed"
done
