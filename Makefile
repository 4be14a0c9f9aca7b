# irsa: the two commands a newcomer needs are `make demo` and `make test` (see README.md).
SHELL := bash
CARGO ?= cargo

.PHONY: demo demo-node demo-down test unit e2e node lint peers build bench image image-docker image-check chart-check help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

peers: ## install the pinned real peers (etcd, kube-apiserver, MinIO, moto + AWS CLI, a node's kubelet & co) into ~/.cache/irsa/tools
	hack/install-peers.sh

build: ## build the irsa binary (debug)
	$(CARGO) build -p irsa

demo: peers build ## the local demo: real apiserver, webhook, issuer, STS; a pod gets credentials; stays up until Ctrl-C
	$(CARGO) run -q -p irsa-e2e --bin demo

demo-node: peers build image ## the demo on a real node: irsa from its image, the kubelet's token, an SDK program in a pod (root)
	$(CARGO) run -q -p irsa-e2e --bin demo -- --node

demo-down: peers build ## the same demo, torn down at the end
	$(CARGO) run -q -p irsa-e2e --bin demo -- --down

test: ## every test: lint, unit, fixtures, properties, servers, moto, the e2e suite against real peers, the chart, the image
	hack/test.sh

unit: ## unit and integration tests of the crates (no peers needed except moto, which is skipped when absent)
	$(CARGO) test --workspace --exclude irsa-e2e

e2e: peers build ## the end-to-end suite only
	$(CARGO) test -p irsa-e2e --test e2e

node: peers build image ## the node suite only: irsa from its image on a real node (containerd, kubelet; needs root)
	$(CARGO) test -p irsa-e2e --test node

lint: ## rustfmt and clippy, warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

IMAGE ?= ghcr.io/irsa-rs/irsa:0.1.0
image: ## build the image without a Docker engine: OCI archive target/image/irsa.tar for ctr/podman/docker load (IMAGE=registry/name:tag)
	IMAGE=$(IMAGE) hack/build-image.sh

image-docker: ## docker build the same image from the Dockerfile (needs a Docker engine; IMAGE=registry/name:tag to name it)
	docker build -t $(IMAGE) .

image-check: ## build the image archive, check it against the Dockerfile, run its binary from its own root as uid 65532
	IMAGE=$(IMAGE) hack/image-check.sh

chart-check: ## helm lint charts/irsa and check it renders what the kustomize overlays do (installs the pinned helm)
	hack/chart-check.sh

bench: ## benchmarks (see bench/README.md)
	bench/run.sh
