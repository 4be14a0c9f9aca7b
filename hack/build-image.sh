#!/usr/bin/env bash
# Builds the irsa image without a Docker engine or a registry, as an OCI image-layout archive that
# `ctr images import`, `podman load` and `docker load` accept (index.json for the first two and Docker 25+,
# manifest.json for older Docker). One layer, the same files where the Dockerfile's image has them:
#   /irsa                                  the static binary of hack/build-static.sh (the Dockerfile's build step)
#   /etc/ssl/certs/ca-certificates.crt     Debian's Mozilla CA set (package ca-certificates), at distroless's
#                                          path: the iam subcommands call AWS over TLS
#   /etc/passwd, /etc/group                root and nonroot (65532), as in distroless; /tmp (1777); the CA
#                                          set's copyright under /usr/share/doc
# and the config: user 65532:65532, entrypoint ["/irsa"], distroless's PATH and SSL_CERT_FILE, OCI labels
# (source, version, licenses, revision). hack/image-check.sh checks the archive against the Dockerfile.
#
# The layout is written by umoci (Debian's package: init, new, unpack, repack, config, gc; not `umoci insert`,
# whose 0.4.7 leaves the layer's tar stream unterminated); the archive is that layout, tarred with fixed owners,
# order and times, plus Docker's manifest.json. umoci rather than crane or a Rust tool: an apt-get install of
# seconds rather than a Go build, and it makes an image from a directory with no base image and no registry
# (crane's append/mutate write Docker tarballs without index.json, or need a registry). The times come from SOURCE_DATE_EPOCH
# (default: the last commit's), so the same commit and binary give the same image digest.
#
# Usage: hack/build-image.sh [OUT=target/image/irsa.tar]     (make image; IMAGE=registry/name:tag names it)
# Needs: umoci, ca-certificates and musl-tools (installed with apt-get when missing and running as root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
log() { printf '[build-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

out=${1:-target/image/irsa.tar}
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml)
license=$(sed -n '/^\[workspace.package\]/,/^\[/s/^license = "\(.*\)"$/\1/p' Cargo.toml)
source_url=$(sed -n '/^\[workspace.package\]/,/^\[/s/^repository = "\(.*\)"$/\1/p' Cargo.toml)
[[ -n $version && -n $license && -n $source_url ]] || die "no version, license or repository in Cargo.toml"
image=${IMAGE:-ghcr.io/irsa-rs/irsa:$version}
tag=${image##*:}
[[ $tag != "$image" && $tag != */* ]] || die "IMAGE=$image has no tag (registry/name:tag)"
revision=$(git rev-parse HEAD 2>/dev/null || true)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) die "no OCI architecture name for $(uname -m)" ;;
esac

# Debian packages this needs: umoci writes the layout, ca-certificates has the CA set, musl-tools builds the
# binary (hack/build-static.sh).
missing=()
command -v umoci >/dev/null || missing+=(umoci)
[[ -d /usr/share/ca-certificates/mozilla ]] || missing+=(ca-certificates)
command -v musl-gcc >/dev/null || missing+=(musl-tools)
if [[ ${#missing[@]} -gt 0 ]]; then
  [[ $(id -u) == 0 ]] || die "missing Debian packages: ${missing[*]} (apt-get install -y ${missing[*]})"
  log "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; } \
    || die "could not install ${missing[*]}"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log "building the static binary (hack/build-static.sh)"
hack/build-static.sh "$work/irsa"

# An empty image unpacked to a bundle; its rootfs filled; repacked as the one layer. Owned by root in the
# image: as root the files already are, otherwise umoci maps this user to 0.
map=()
[[ $(id -u) == 0 ]] || map=(--rootless --uid-map "0:$(id -u):1" --gid-map "0:$(id -g):1")
layout=$work/oci bundle=$work/bundle
log "OCI layout (umoci): $image, $arch"
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack "${map[@]}" --image "$layout:$tag" "$bundle" >/dev/null

log "root filesystem: /irsa, the CA bundle, /etc/passwd, /etc/group, /tmp"
root=$bundle/rootfs
mkdir -p "$root/etc/ssl/certs" "$root/usr/share/doc/ca-certificates" "$root/tmp"
install -m 0755 "$work/irsa" "$root/irsa"
# The package's certificates in the order update-ca-certificates concatenates them, without the local
# additions of this machine's own bundle (/usr/local/share/ca-certificates).
(
  shopt -s nullglob
  export LC_ALL=C
  certs=(/usr/share/ca-certificates/mozilla/*.crt)
  [[ ${#certs[@]} -gt 100 ]] || die "only ${#certs[@]} certificates in /usr/share/ca-certificates/mozilla"
  awk 1 "${certs[@]}" >"$root/etc/ssl/certs/ca-certificates.crt"
)
cp /usr/share/doc/ca-certificates/copyright "$root/usr/share/doc/ca-certificates/copyright"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$root/etc/group"
chmod 0755 "$root" "$root/etc" "$root/etc/ssl" "$root/etc/ssl/certs" "$root/usr" "$root/usr/share" \
  "$root/usr/share/doc" "$root/usr/share/doc/ca-certificates"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/ssl/certs/ca-certificates.crt" \
  "$root/usr/share/doc/ca-certificates/copyright"
chmod 1777 "$root/tmp"
find "$root" -exec touch -h -d "@$epoch" {} +
umoci repack --image "$layout:$tag" --history.created "$created" \
  --history.created_by "hack/build-image.sh: /irsa, CA bundle, passwd, group" "$bundle" >/dev/null
labels=(
  "org.opencontainers.image.title=irsa"
  "org.opencontainers.image.description=IAM roles for Kubernetes service accounts, for any cluster"
  "org.opencontainers.image.source=$source_url"
  "org.opencontainers.image.version=$version"
  "org.opencontainers.image.licenses=$license"
  "org.opencontainers.image.created=$created"
)
[[ -z $revision ]] || labels+=("org.opencontainers.image.revision=$revision")
config=(--config.user 65532:65532 --config.entrypoint /irsa --clear config.cmd
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  --config.env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
  --created "$created" --architecture "$arch" --os linux --no-history)
for l in "${labels[@]}"; do config+=(--config.label "$l"); done
umoci config --image "$layout:$tag" "${config[@]}"
umoci gc --layout "$layout"

# index.json: containerd, podman and Docker 25+ name the image after io.containerd.image.name (the full
# reference; org.opencontainers.image.ref.name stays the tag, as buildkit and `docker save` write it).
# manifest.json: what `docker load` before 25 reads; its layer is the same gzip blob (Docker inflates it).
python3 - "$layout" "$image" <<'PY' || die "could not write index.json and manifest.json"
import json, sys
layout, image = sys.argv[1:]
with open(f"{layout}/index.json") as f:
    index = json.load(f)
(entry,) = index["manifests"]
entry.setdefault("annotations", {})["io.containerd.image.name"] = image
blob = lambda digest: "blobs/" + digest.replace(":", "/", 1)
with open(f"{layout}/{blob(entry['digest'])}") as f:
    manifest = json.load(f)
docker = [{"Config": blob(manifest["config"]["digest"]), "RepoTags": [image],
           "Layers": [blob(layer["digest"]) for layer in manifest["layers"]]}]
for name, doc in (("index.json", index), ("manifest.json", docker)):
    with open(f"{layout}/{name}", "w") as f:
        json.dump(doc, f, separators=(",", ":"), sort_keys=True)
PY

mkdir -p "$(dirname "$out")"
chmod -R u=rwX,go=rX "$layout"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$layout" -cf "$out.tmp.$$" oci-layout index.json manifest.json blobs
mv -f "$out.tmp.$$" "$out"
digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$layout/index.json")
log "$out ($(du -h "$out" | cut -f1)): $image, manifest $digest"
