# irsa: the two commands a newcomer needs are `make demo` and `make test` (see README.md).
SHELL := bash
CARGO ?= cargo

.PHONY: demo demo-down test unit e2e lint peers build bench image image-check help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

peers: ## install the pinned real peers (etcd, kube-apiserver, MinIO, moto + AWS CLI) into ~/.cache/irsa/tools
	hack/install-peers.sh

build: ## build the irsa binary (debug)
	$(CARGO) build -p irsa

demo: peers build ## the local demo: real apiserver, webhook, issuer, STS; a pod gets credentials; stays up until Ctrl-C
	$(CARGO) run -q -p irsa-e2e --bin demo

demo-down: peers build ## the same demo, torn down at the end
	$(CARGO) run -q -p irsa-e2e --bin demo -- --down

test: ## every test: lint, unit, fixtures, properties, servers, moto, and the e2e suite against real peers
	hack/test.sh

unit: ## unit and integration tests of the crates (no peers needed except moto, which is skipped when absent)
	$(CARGO) test --workspace --exclude irsa-e2e

e2e: peers build ## the end-to-end suite only
	$(CARGO) test -p irsa-e2e --test e2e

lint: ## rustfmt and clippy, warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

IMAGE ?= ghcr.io/irsa-rs/irsa:0.1.0
image: ## docker build the image (needs a Docker engine; IMAGE=registry/name:tag to name it)
	docker build -t $(IMAGE) .

image-check: ## build the image's static binary as the Dockerfile does and run it as the image would (no Docker engine needed)
	hack/image-check.sh

bench: ## benchmarks (see bench/README.md)
	bench/run.sh
