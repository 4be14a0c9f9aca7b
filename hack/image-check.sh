#!/usr/bin/env bash
# Checks the image without a Docker engine: builds the OCI archive with hack/build-image.sh (make image), reads
# it back with skopeo and umoci, and runs the binary from the image's own root filesystem as the image's user:
#   1. the archive: skopeo reads it; index.json, manifest.json (docker load) and every blob agree, by digest;
#   2. the Dockerfile's final stage and the archive describe the same image: ENTRYPOINT, USER, the COPY
#      destination of the binary, the CA bundle distroless/static carries;
#   3. the binary asks for no loader and no shared library; the CA bundle loads;
#   4. `irsa --version` runs, chrooted into the unpacked root filesystem as uid/gid 65532, and its allocator
#      commits memory as it is used (mimalloc's arena_eager_commit 0, from .cargo/config.toml);
#   5. `irsa webhook mutate` mutates a fixture pod exactly as the test suite expects;
#   6. `irsa issuer serve` answers its JWKS over HTTP, then exits 0 on SIGTERM.
# Needs root (chroot), readelf, curl and python3; installs skopeo, umoci, musl-tools and ca-certificates (apt)
# and the Rust musl target (rustup, through hack/build-static.sh) when they are missing.
#
# Usage: hack/image-check.sh [ARCHIVE=target/image/irsa.tar]    (make image-check)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '== %s\n' "$*" >&2; }
fail() { printf 'image-check: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || fail "needs root, to chroot into the image's root filesystem"
for tool in readelf curl chroot python3; do command -v "$tool" >/dev/null || fail "missing $tool"; done
archive=${1:-target/image/irsa.tar}

work=$(mktemp -d)
server=
cleanup() {
  if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v skopeo >/dev/null; then
  step "installing skopeo (Debian): reads the archive as the container tools do"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q skopeo >/dev/null \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q skopeo >/dev/null; } \
    || fail "could not install skopeo"
fi

step "building the image archive (hack/build-image.sh $archive)"
hack/build-image.sh "$archive"

step "1. the archive: skopeo inspect, index.json, manifest.json and the blobs"
skopeo inspect "oci-archive:$archive" >"$work/inspect.json" || fail "skopeo cannot read $archive"
skopeo inspect --config "oci-archive:$archive" >"$work/config.json" || fail "skopeo cannot read the config"
mkdir "$work/layout"
tar -xf "$archive" -C "$work/layout"
python3 - "$work/layout" "$work/inspect.json" <<'PY' || fail "the archive is inconsistent"
import hashlib, json, os, sys
layout, inspect = sys.argv[1], json.load(open(sys.argv[2]))
def blob(digest):
    algorithm, hex_ = digest.split(":", 1)
    data = open(os.path.join(layout, "blobs", algorithm, hex_), "rb").read()
    if hashlib.new(algorithm, data).hexdigest() != hex_:
        sys.exit(f"blob {digest} does not match its digest")
    return data
assert json.load(open(f"{layout}/oci-layout"))["imageLayoutVersion"] == "1.0.0"
(entry,) = json.load(open(f"{layout}/index.json"))["manifests"]
name = entry["annotations"]["io.containerd.image.name"]
manifest = json.loads(blob(entry["digest"]))
config = json.loads(blob(manifest["config"]["digest"]))
layers = [layer["digest"] for layer in manifest["layers"]]
for digest in layers:
    blob(digest)
(docker,) = json.load(open(f"{layout}/manifest.json"))
as_path = lambda digest: "blobs/" + digest.replace(":", "/", 1)
if docker["Config"] != as_path(manifest["config"]["digest"]) or docker["Layers"] != [as_path(d) for d in layers] \
        or docker["RepoTags"] != [name]:
    sys.exit(f"manifest.json {docker} disagrees with index.json and the OCI manifest")
if inspect["Layers"] != layers or inspect["Digest"] != entry["digest"]:
    sys.exit("skopeo sees other layers or another digest")
if len(config["rootfs"]["diff_ids"]) != len(layers):
    sys.exit("the config's diff_ids do not match the layers")
labels = config["config"].get("Labels", {})
for key in ("source", "version", "licenses", "revision"):
    print(f"   org.opencontainers.image.{key}={labels.get(f'org.opencontainers.image.{key}', '(none)')}",
          file=sys.stderr)
print(f"   {name} {entry['digest']} {config['os']}/{config['architecture']}, {len(layers)} layer(s),"
      f" {sum(layer['size'] for layer in manifest['layers'])} bytes compressed", file=sys.stderr)
PY

step "   unpacking it (umoci unpack) into the image's root filesystem"
tag=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])' "$work/layout/index.json")
umoci unpack --image "$work/layout:$tag" "$work/bundle" >/dev/null || fail "umoci cannot unpack the image"
root=$work/bundle/rootfs

step "2. the Dockerfile and the archive describe the same image"
python3 - Dockerfile "$work/config.json" "$root" <<'PY' || fail "the Dockerfile and the archive differ"
import json, os, re, shlex, stat, sys
dockerfile, config, root = sys.argv[1], json.load(open(sys.argv[2]))["config"], sys.argv[3]
# The instructions of the final stage, continuation lines joined, comments dropped.
lines = re.sub(r"\\\n", " ", "".join(l for l in open(dockerfile) if not l.lstrip().startswith("#")))
stages = re.split(r"(?im)^\s*FROM\s", lines)
final = [l.strip() for l in stages[-1].splitlines()[1:] if l.strip()]
def instruction(name):
    found = [l.split(None, 1)[1] for l in final if l.split(None, 1)[0].upper() == name]
    if len(found) != 1:
        sys.exit(f"the Dockerfile's final stage has {len(found)} {name} instructions, expected one")
    return found[0]
entrypoint = json.loads(instruction("ENTRYPOINT"))
user = instruction("USER")
copy = shlex.split(instruction("COPY"))
copy = [a for a in copy if not a.startswith("--")]
binary = copy[-1]
differences = []
if config.get("Entrypoint") != entrypoint:
    differences.append(f"Entrypoint: Dockerfile {entrypoint}, archive {config.get('Entrypoint')}")
if config.get("User") != user:
    differences.append(f"User: Dockerfile {user!r}, archive {config.get('User')!r}")
if config.get("Cmd"):
    differences.append(f"Cmd: the Dockerfile sets none, the archive {config['Cmd']}")
if entrypoint[0] != binary:
    differences.append(f"the Dockerfile's ENTRYPOINT {entrypoint[0]} is not its COPY destination {binary}")
st = os.lstat(root + binary) if os.path.lexists(root + binary) else None
if st is None or not stat.S_ISREG(st.st_mode) or st.st_mode & 0o7777 != 0o755 or (st.st_uid, st.st_gid) != (0, 0):
    differences.append(f"{binary}: not a root-owned 0755 file in the archive's layer")
# What the Dockerfile's base (distroless/static) provides and irsa relies on.
bundle = "/etc/ssl/certs/ca-certificates.crt"
if not os.path.isfile(root + bundle):
    differences.append(f"{bundle}: missing from the archive (distroless/static has it)")
if differences:
    sys.exit("\n".join(differences))
print(f"   ENTRYPOINT {entrypoint}, USER {user}, COPY -> {binary}, {bundle}: the same in both", file=sys.stderr)
PY

step "3. no program interpreter, no shared libraries; the CA bundle loads"
if readelf -lW "$root/irsa" | grep -q 'Requesting program interpreter'; then fail "the binary needs a loader"; fi
if readelf -dW "$root/irsa" | grep -q '(NEEDED)'; then fail "the binary needs shared libraries"; fi
python3 - "$root/etc/ssl/certs/ca-certificates.crt" <<'PY' || fail "the CA bundle does not load"
import ssl, sys
context = ssl.create_default_context(cafile=sys.argv[1])
count = len(context.get_ca_certs())
if count < 100:
    sys.exit(f"only {count} CA certificates")
print(f"   {count} CA certificates", file=sys.stderr)
PY

# The files this check hands the binary, as a volume would: readable by uid 65532, under /in; the rest of the
# root is the image's own, not writable by that uid.
mkdir -p "$root/in"
fixture=webhook/tests/fixtures/basic
install -m 0644 "$fixture/pod.yaml" "$fixture/serviceaccount.yaml" issuer/tests/fixtures/rsa2048.pub "$root/in/"
# The image's USER, from its config.
user=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"]["User"])' "$work/config.json")
# chroot execs /irsa in place, so a background "${as_image[@]}" ... & leaves $! = irsa itself.
as_image=(chroot --userspec="$user" "$root" /irsa)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "4. irsa --version, as uid $user in the image's root filesystem"
"${as_image[@]}" --version || fail "irsa --version did not run in the image's root"
# MIMALLOC_VERBOSE makes mimalloc print its options at start-up: the one the build sets must have reached it.
allocator=$(env MIMALLOC_VERBOSE=1 "${as_image[@]}" --version 2>&1)
[[ $allocator == *"option 'arena_eager_commit': 0"* ]] \
  || fail "the binary's mimalloc commits arenas eagerly: MI_DEFAULT_ARENA_EAGER_COMMIT=0 (.cargo/config.toml) did not reach its build"

step "5. irsa webhook mutate on the '$(basename "$fixture")' fixture"
"${as_image[@]}" webhook mutate --pod /in/pod.yaml --service-account /in/serviceaccount.yaml --output patch \
  >"$work/patch.json" || fail "irsa webhook mutate failed"
python3 - "$work/patch.json" "$fixture/expected-patch.json" <<'PY' || fail "the patch differs from the fixture's"
import json, sys
got, want = (json.load(open(p)) for p in sys.argv[1:])
sys.exit(0 if got == want else f"got {got}\nwant {want}")
PY

step "6. irsa issuer serve over plain HTTP, then SIGTERM"
port=$(free_port) admin=$(free_port)
"${as_image[@]}" issuer serve --issuer-url "http://127.0.0.1:$port" --plain-http --public-key-file /in/rsa2048.pub \
  --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" >"$work/issuer.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break; sleep 0.1; done
jwks=$(curl -sf "http://127.0.0.1:$port/openid/v1/jwks") || { cat "$work/issuer.log" >&2; fail "no JWKS served"; }
[[ $jwks == *'"kty":"RSA"'* ]] || fail "unexpected JWKS: $jwks"
kill -TERM "$server"
status=0
wait "$server" || status=$?
server=
[[ $status == 0 ]] || { cat "$work/issuer.log" >&2; fail "irsa issuer serve exited $status on SIGTERM"; }

step "image-check: passed ($archive, $(du -h "$archive" | cut -f1); the binary $(du -h "$root/irsa" | cut -f1))"
