#!/usr/bin/env bash
# Installs the real peers of the e2e suite and the demo into a cache outside the repo:
#   etcd, kube-apiserver (built from the Go module proxy), MinIO (go install),
#   a Python venv with moto[server], the AWS CLI and boto3, the cargo subcommands `make test` runs, and Helm
#   (go install from the Go module proxy; `make test` lints and renders charts/irsa with it).
# Idempotent: a peer whose pinned binary is already in the cache is skipped in well under a second.
# Usage: hack/install-peers.sh [etcd|kube-apiserver|minio|python|cargo-tools|helm|node|kubelet|cargo-fuzz|...]...
#   (reference-webhook: amazon-eks-pod-identity-webhook for `bench/run.sh reference`, never installed by default)
#   (default: all of them: python cargo-tools (cargo-machete, cargo-fuzz, cargo-deny) helm etcd minio kube-apiserver node;
#    node = node-packages (Debian's containerd, runc, CNI plugins) node-programs (hack/node) kube-controller-manager
#    kube-scheduler kubelet: the node suite's real node)
# Prints, on stdout, nothing but progress lines; exits non-zero naming the peer that failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/peers.env
source "$here/peers.env"
tools=${IRSA_TOOLS_DIR:-$HOME/.cache/irsa/tools}
mkdir -p "$tools"

export GOFLAGS=-mod=mod
export CGO_ENABLED=0
export GOTOOLCHAIN=local

log() { printf '[install-peers %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# build_in_wrapper NAME VERSION_DIR MAIN_GO GO_MOD_SETUP_FN LDFLAGS
# Builds a Go main package in a throwaway wrapper module, then moves the binary into the cache atomically,
# so an interrupted build never leaves a half-written binary that a later run would trust.
install_binary() {
  local src=$1 dest=$2
  mkdir -p "$(dirname "$dest")"
  mv -f "$src" "$dest.tmp.$$" && mv -f "$dest.tmp.$$" "$dest"
}

need_go() { command -v go >/dev/null || die "go is not on PATH; install Go 1.24 or newer"; }

install_etcd() {
  local dest="$tools/etcd-$ETCD_VERSION/bin/etcd"
  if [[ -x $dest ]]; then log "etcd $ETCD_VERSION: cached at $dest"; return; fi
  need_go
  log "etcd $ETCD_VERSION: building from the Go module proxy (a few minutes on 2 cores)..."
  local w; w=$(mktemp -d)
  cat >"$w/main.go" <<'GO'
// Wrapper main for etcd: the etcd repository's own module has replace directives, so `go install` refuses it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (
    cd "$w"
    go mod init irsa.local/etcd-wrapper >/dev/null 2>&1
    go mod edit -require="go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go mod tidy >/dev/null 2>"$w/tidy.log" || { cat "$w/tidy.log" >&2; exit 1; }
    go build -trimpath -ldflags "-s -w" -o "$w/etcd" . 2>"$w/build.log" || { cat "$w/build.log" >&2; exit 1; }
  ) || die "etcd $ETCD_VERSION: build failed in $w"
  install_binary "$w/etcd" "$dest"
  rm -rf "$w"
  log "etcd $ETCD_VERSION: installed at $dest"
}

# install_kube_component NAME APP_CALL: builds a Kubernetes component at $KUBERNETES_VERSION from the Go module proxy.
# k8s.io/kubernetes replaces its staging modules with ./staging paths, so `go install` refuses it: a throwaway
# wrapper module requires it, pins each staging module to the matching v0.x tag, and calls the component's
# cobra command (APP_CALL, e.g. app.NewAPIServerCommand()) from package k8s.io/kubernetes/cmd/NAME/app.
# kube-apiserver is a peer of every e2e test; kubelet, kube-controller-manager and kube-scheduler make a real node
# (`hack/install-peers.sh node`) and share most of kube-apiserver's packages in the Go build cache.
install_kube_component() {
  local name=$1 app_call=$2
  local dest="$tools/$name-$KUBERNETES_VERSION/bin/$name"
  if [[ -x $dest ]]; then log "$name $KUBERNETES_VERSION: cached at $dest"; return; fi
  need_go
  local v=$KUBERNETES_VERSION staging=${KUBERNETES_VERSION/v1./v0.}
  log "$name $v: reading the staging modules from the proxy's go.mod of k8s.io/kubernetes@$v..."
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  [[ -f $gomod ]] || die "$name $v: could not download k8s.io/kubernetes@$v from the module proxy"
  local mods
  mods=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod" | sort -u)
  [[ -n $mods ]] || die "$name $v: found no staging replace lines in $gomod"
  log "$name $v: $(wc -w <<<"$mods") staging modules pinned to $staging; building (5 to 30 minutes on 2 cores)..."
  local w; w=$(mktemp -d)
  local context_import=""  # the kubelet's command takes a context; Go refuses an unused import
  [[ $app_call == *context.* ]] && context_import=$'\t"context"'
  cat >"$w/main.go" <<GO
// Wrapper main for $name (see install_kube_component in hack/install-peers.sh).
package main

import (
$context_import
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/$name/app"
)

func main() { os.Exit(cli.Run($app_call)) }
GO
  (
    cd "$w"
    go mod init "irsa.local/$name-wrapper" >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@$v"
    for m in $mods; do go mod edit -replace="$m=$m@$staging"; done
    go mod tidy >/dev/null 2>"$w/tidy.log" || { cat "$w/tidy.log" >&2; exit 1; }
    local minor=${v#v1.}; minor=${minor%%.*}
    go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$v \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$minor \
      -X k8s.io/component-base/version.gitTreeState=clean" \
      -o "$w/$name" . 2>"$w/build.log" || { cat "$w/build.log" >&2; exit 1; }
  ) || die "$name $v: build failed in $w"
  install_binary "$w/$name" "$dest"
  rm -rf "$w"
  log "$name $v: installed at $dest"
}

install_minio() {
  local dest="$tools/minio-$MINIO_VERSION/bin/minio"
  if [[ -x $dest ]]; then log "minio $MINIO_VERSION: cached at $dest"; return; fi
  need_go
  log "minio $MINIO_VERSION: go install (ten minutes or more on 2 cores)..."
  local w; w=$(mktemp -d)
  GOBIN="$w" go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$MINIO_VERSION" 2>"$w/build.log" \
    || { cat "$w/build.log" >&2; die "minio $MINIO_VERSION: go install failed"; }
  install_binary "$w/minio" "$dest"
  rm -rf "$w"
  log "minio $MINIO_VERSION: installed at $dest"
}

install_python() {
  local venv="$tools/venv-moto$MOTO_VERSION-awscli$AWSCLI_VERSION-boto3$BOTO3_VERSION"
  if [[ -x $venv/bin/moto_server && -x $venv/bin/aws && -f $venv/.complete ]]; then
    log "python venv: cached at $venv"; return
  fi
  command -v python3 >/dev/null || die "python3 is not on PATH"
  log "python venv: installing moto[server]==$MOTO_VERSION awscli==$AWSCLI_VERSION boto3==$BOTO3_VERSION..."
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python venv: python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "awscli==$AWSCLI_VERSION" "boto3==$BOTO3_VERSION" \
    || die "python venv: pip install failed"
  touch "$venv/.complete"
  log "python venv: installed at $venv"
}

# The cargo subcommands `make test` runs (cargo-machete: no unused dependencies), built from crates.io with
# their lock files, into the cache like the peers.
install_cargo_tools() {
  local root="$tools/cargo-machete-$CARGO_MACHETE_VERSION"
  if [[ -x $root/bin/cargo-machete ]]; then log "cargo-machete $CARGO_MACHETE_VERSION: cached at $root/bin"; return; fi
  command -v cargo >/dev/null || die "cargo is not on PATH"
  log "cargo-machete $CARGO_MACHETE_VERSION: building from crates.io (a minute or two)..."
  local w; w=$(mktemp -d)
  cargo install --quiet --locked --version "=$CARGO_MACHETE_VERSION" --root "$w" cargo-machete \
    || die "cargo-machete $CARGO_MACHETE_VERSION: cargo install failed"
  install_binary "$w/bin/cargo-machete" "$root/bin/cargo-machete"
  rm -rf "$w"
  log "cargo-machete $CARGO_MACHETE_VERSION: installed at $root/bin"
}

# install_cargo_bin CRATE VERSION: a pinned cargo subcommand from crates.io, built with its lock file into
# $tools/CRATE-VERSION/bin (the same cache as cargo-machete): cargo-fuzz (hack/fuzz-smoke.sh) and cargo-deny
# (hack/deny.sh).
install_cargo_bin() {
  local crate=$1 version=$2
  local root="$tools/$crate-$version"
  if [[ -x $root/bin/$crate ]]; then log "$crate $version: cached at $root/bin"; return; fi
  command -v cargo >/dev/null || die "cargo is not on PATH"
  log "$crate $version: building from crates.io (a few minutes on 2 cores)..."
  local w; w=$(mktemp -d)
  cargo install --quiet --locked --version "=$version" --root "$w" "$crate" \
    || die "$crate $version: cargo install failed"
  install_binary "$w/bin/$crate" "$root/bin/$crate"
  rm -rf "$w"
  log "$crate $version: installed at $root/bin"
}

# Helm, for `helm lint` and `helm template` of charts/irsa in `make test`. Helm's module has no replace
# directives, so a plain `go install` of the pinned tag; the version is stamped as the release Makefile does.
install_helm() {
  local dest="$tools/helm-$HELM_VERSION/bin/helm"
  if [[ -x $dest ]]; then log "helm $HELM_VERSION: cached at $dest"; return; fi
  need_go
  local module="helm.sh/helm/${HELM_VERSION%%.*}"
  log "helm $HELM_VERSION: go install $module/cmd/helm (five minutes or more on 2 cores)..."
  local w; w=$(mktemp -d)
  GOBIN="$w" go install -trimpath -ldflags "-s -w -X $module/internal/version.version=$HELM_VERSION \
    -X $module/internal/version.gitTreeState=clean" "$module/cmd/helm@$HELM_VERSION" 2>"$w/build.log" \
    || { cat "$w/build.log" >&2; die "helm $HELM_VERSION: go install failed"; }
  install_binary "$w/helm" "$dest"
  rm -rf "$w"
  log "helm $HELM_VERSION: installed at $dest"
}

# The reference webhook (amazon-eks-pod-identity-webhook), side by side with irsa in `bench/run.sh reference`;
# not in the default list: only the benchmark needs it. `go install` of it fails (the proxy refuses its @v/list),
# so the pinned module is downloaded from the Go module proxy and built inside a writable copy of its directory,
# as its Dockerfile builds it (CGO_ENABLED=0, -s -w). One edit: it listens on ":PORT" and ":METRICS_PORT" (all
# interfaces, no flag to bind an address); both become "127.0.0.1:..." so that the benchmark serves loopback only.
# The edit is checked to apply exactly twice, so a new pin that moves those lines fails here instead of
# silently listening on every interface.
install_reference_webhook() {
  local v=$REFERENCE_WEBHOOK_VERSION name=amazon-eks-pod-identity-webhook
  local dest="$tools/$name-$v/bin/$name"
  if [[ -x $dest ]]; then log "$name $v: cached at $dest"; return; fi
  need_go
  local module="github.com/aws/$name"
  log "$name $v: downloading $module@$v from the Go module proxy..."
  local dir
  dir=$(go mod download -json "$module@$v" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -f $dir/main.go ]] || die "$name $v: could not download $module@$v from the module proxy"
  local w; w=$(mktemp -d)
  { cp -R "$dir" "$w/src" && chmod -R u+w "$w/src"; } || die "$name $v: copying $dir failed"
  sed -i 's/fmt\.Sprintf(":%d", \*\(port\|metricsPort\))/fmt.Sprintf("127.0.0.1:%d", *\1)/' "$w/src/main.go"
  [[ $(grep -c 'fmt\.Sprintf("127\.0\.0\.1:%d", \*\(port\|metricsPort\))' "$w/src/main.go") == 2 ]] \
    || die "$name $v: the loopback edit of main.go did not apply twice (listen lines moved?); see $w/src/main.go"
  log "$name $v: building (a minute or two on 2 cores)..."
  (
    cd "$w/src"
    go build -trimpath -ldflags "-s -w -X main.webhookVersion=$v" -o "$w/$name" . 2>"$w/build.log" \
      || { cat "$w/build.log" >&2; exit 1; }
  ) || die "$name $v: build failed in $w"
  install_binary "$w/$name" "$dest"
  rm -rf "$w"
  log "$name $v: installed at $dest"
}

# The node suite's own programs, from hack/node/: the pod sandbox's pause program and sdk-probe, an unmodified
# aws-sdk-go-v2 program (its module pins the SDK; go.sum checks it). Static, cached under a hash of their
# sources so that an edit rebuilds them.
node_programs_dir() {
  local hash
  hash=$(cd "$here/node" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 | sort -z \
    | xargs -0 sha256sum | sha256sum | cut -c1-12)
  echo "$tools/node-programs-$hash/bin"
}
install_node_programs() {
  local dest; dest=$(node_programs_dir)
  if [[ -x $dest/pause && -x $dest/sdk-probe ]]; then log "node programs: cached at $dest"; return; fi
  need_go
  log "node programs: building pause and sdk-probe (aws-sdk-go-v2) from hack/node (a minute cold)..."
  local w; w=$(mktemp -d)
  (cd "$here/node/pause" && go build -trimpath -ldflags "-s -w" -o "$w/pause" main.go) 2>"$w/build.log" \
    || { cat "$w/build.log" >&2; die "node programs: building pause failed"; }
  (cd "$here/node/sdk-probe" && GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$w/sdk-probe" .) \
    2>"$w/build.log" || { cat "$w/build.log" >&2; die "node programs: building sdk-probe failed"; }
  install_binary "$w/pause" "$dest/pause"
  install_binary "$w/sdk-probe" "$dest/sdk-probe"
  rm -rf "$w"
  log "node programs: installed at $dest"
}

# The node's runtime from Debian: containerd, runc, the CNI plugins (in /usr/lib/cni), iptables and conntrack.
install_node_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  if [[ ${#missing[@]} -eq 0 ]]; then log "node packages: containerd, runc, CNI plugins, iptables present"; return; fi
  [[ $(id -u) == 0 ]] || die "node packages: missing ${missing[*]}; as root: apt-get install -y ${missing[*]}"
  log "node packages: apt-get install ${missing[*]}..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; } \
    || die "node packages: could not install ${missing[*]}"
  log "node packages: installed ${missing[*]}"
}

# Prints the paths the harness needs, as shell assignments, after everything is installed.
print_paths() {
  cat <<PATHS
IRSA_ETCD=$tools/etcd-$ETCD_VERSION/bin/etcd
IRSA_KUBE_APISERVER=$tools/kube-apiserver-$KUBERNETES_VERSION/bin/kube-apiserver
IRSA_KUBE_CONTROLLER_MANAGER=$tools/kube-controller-manager-$KUBERNETES_VERSION/bin/kube-controller-manager
IRSA_KUBE_SCHEDULER=$tools/kube-scheduler-$KUBERNETES_VERSION/bin/kube-scheduler
IRSA_KUBELET=$tools/kubelet-$KUBERNETES_VERSION/bin/kubelet
IRSA_MINIO=$tools/minio-$MINIO_VERSION/bin/minio
IRSA_PYTHON_VENV=$tools/venv-moto$MOTO_VERSION-awscli$AWSCLI_VERSION-boto3$BOTO3_VERSION
IRSA_CARGO_MACHETE=$tools/cargo-machete-$CARGO_MACHETE_VERSION/bin/cargo-machete
IRSA_HELM=$tools/helm-$HELM_VERSION/bin/helm
IRSA_CARGO_FUZZ=$tools/cargo-fuzz-$CARGO_FUZZ_VERSION/bin/cargo-fuzz
IRSA_CARGO_DENY=$tools/cargo-deny-$CARGO_DENY_VERSION/bin/cargo-deny
IRSA_NODE_PROGRAMS=$(node_programs_dir)
IRSA_REFERENCE_WEBHOOK=$tools/amazon-eks-pod-identity-webhook-$REFERENCE_WEBHOOK_VERSION/bin/amazon-eks-pod-identity-webhook
PATHS
}

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(python cargo-tools helm etcd minio kube-apiserver node)
for t in "${targets[@]}"; do
  case $t in
    etcd) install_etcd ;;
    kube-apiserver) install_kube_component kube-apiserver 'app.NewAPIServerCommand()' ;;
    kube-controller-manager) install_kube_component kube-controller-manager 'app.NewControllerManagerCommand()' ;;
    kube-scheduler) install_kube_component kube-scheduler 'app.NewSchedulerCommand()' ;;
    kubelet) install_kube_component kubelet 'app.NewKubeletCommand(context.Background())' ;;
    # A real node for the node suite: Kubernetes' node components, Debian's runtime, the suite's programs.
    node) for c in node-packages node-programs kube-controller-manager kube-scheduler kubelet; do "$0" "$c" >/dev/null; done ;;
    node-packages) install_node_packages ;;
    node-programs) install_node_programs ;;
    minio) install_minio ;;
    python) install_python ;;
    cargo-tools) install_cargo_tools; install_cargo_bin cargo-fuzz "$CARGO_FUZZ_VERSION"
      install_cargo_bin cargo-deny "$CARGO_DENY_VERSION" ;;
    cargo-fuzz) install_cargo_bin cargo-fuzz "$CARGO_FUZZ_VERSION" ;;
    cargo-deny) install_cargo_bin cargo-deny "$CARGO_DENY_VERSION" ;;
    helm) install_helm ;;
    reference-webhook) install_reference_webhook ;;
    paths) ;;
    *) die "unknown peer '$t' (expected etcd, kube-apiserver, minio, python, cargo-tools, helm, node, node-packages, node-programs, kube-controller-manager, kube-scheduler, kubelet, cargo-fuzz, cargo-deny, reference-webhook, paths)" ;;
  esac
done
print_paths
