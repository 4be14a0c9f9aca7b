#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ from the project's test fixtures.

Seeds are generated, never committed: webhook/tests/fixtures (pods, ServiceAccounts, Namespaces) become
AdmissionReviews and `irsa webhook mutate` inputs; issuer/tests/fixtures (key files) become PEM, DER and
JWKS seeds; a few hand-written URLs, ARNs and trust policies cover the rest. Existing corpus files (what the
fuzzer found before) are kept; seeds are named after their content, so rerunning writes nothing new.

Needs PyYAML and `cryptography` (the moto venv of hack/install-peers.sh has both).
Usage: fuzz/seed-corpora.py [CORPUS_DIR]   (default: fuzz/corpus)
"""

import base64
import hashlib
import json
import pathlib
import re
import sys
import urllib.parse

import yaml
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

ROOT = pathlib.Path(__file__).resolve().parent.parent
WEBHOOK_FIXTURES = ROOT / "webhook/tests/fixtures"
KEY_FIXTURES = ROOT / "issuer/tests/fixtures"
CORPUS = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz/corpus"


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("seed-" + hashlib.sha1(data).hexdigest()[:16])).write_bytes(data)


def load_yaml(path):
    try:
        return yaml.safe_load(path.read_text()) if path.exists() else None
    except yaml.YAMLError:
        return None


def admission_reviews():
    for case in sorted(p for p in WEBHOOK_FIXTURES.iterdir() if (p / "pod.yaml").exists()):
        text = (case / "pod.yaml").read_text()
        write("mutate_input", text)
        pod = load_yaml(case / "pod.yaml")
        if not isinstance(pod, dict):
            continue
        if pod.get("kind") == "AdmissionReview":
            review = pod
        else:
            namespace = (pod.get("metadata") or {}).get("namespace", "default")
            review = {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                    "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "operation": "CREATE",
                    "namespace": namespace,
                    "object": pod,
                    "dryRun": False,
                },
            }
        # What the route would look up, in the members the fuzz target reads (see admission_review.rs).
        for member, file in (("serviceAccount", "serviceaccount.yaml"), ("namespace", "namespace.yaml")):
            obj = load_yaml(case / file)
            if isinstance(obj, dict):
                review[member] = {"annotations": (obj.get("metadata") or {}).get("annotations") or {}}
        write("admission_review", json.dumps(review, separators=(",", ":")))
        write("mutate_input", json.dumps(review, indent=1))


def b64url(n, length=None):
    raw = n.to_bytes(length or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwk(key, kid):
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        return {"use": "sig", "kty": "RSA", "kid": kid, "alg": "RS256", "n": b64url(nums.n), "e": b64url(nums.e)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        nums = key.public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(key.curve.name, key.curve.name)
        alg = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(crv, "ES256")
        return {"use": "sig", "kty": "EC", "kid": kid, "alg": alg, "crv": crv,
                "x": b64url(nums.x, size), "y": b64url(nums.y, size)}
    return None


def keys():
    skip = {"README.md", "make.sh", "expected-kids.txt"}
    jwks = []
    for path in sorted(KEY_FIXTURES.iterdir()):
        if path.name in skip or not path.is_file():
            continue
        content = path.read_bytes()
        write("issuer_pem", content)
        for m in re.finditer(rb"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", content, re.S):
            der = base64.b64decode(b"".join(m.group(1).split()))
            write("issuer_spki_der", der)
            try:
                key = load_pem_public_key(m.group(0))
            except ValueError:
                continue
            entry = jwk(key, path.stem)
            if entry:
                jwks.append(entry)
                write("apiserver_jwks", json.dumps({"keys": [entry]}))
    write("apiserver_jwks", json.dumps({"keys": jwks}))
    # An apiserver's extra members, a duplicate kid and a bad "use": cleaned away with warnings.
    if jwks:
        extra = dict(jwks[0], key_ops=["verify"], x5c=["AAAA"])
        write("apiserver_jwks", json.dumps({"keys": [extra, jwks[0], dict(jwks[-1], use="enc")]}))


def urls():
    for u in [
        "https://oidc.example.com",
        "https://oidc.example.com/",
        "https://s3.us-west-2.amazonaws.com/irsa-oidc/cluster-a",
        "https://oidc.example.com:8443/id/cluster/",
        "http://127.0.0.1:8080/issuer",
        "https://[::1]:443/a/b",
        "https://xn--bcher-kva.example/p",
        "https://Bücher.example/%41/",
        "https://oidc.example.com/./x",
        "https://user@oidc.example.com",
        "https://oidc.example.com/a?b#c",
    ]:
        write("issuer_url", u)


def arns():
    for a in [
        "arn:aws:iam::123456789012:role/app",
        "arn:aws-cn:iam::123456789012:role/team/sub/app",
        "arn:aws-us-gov:iam::123456789012:role/" + "p/" * 40 + "name",
        "arn:aws:iam::123456789012:user/app",
        "arn:minio:iam:::role/idp-app",
        "arn:aws:iam::123456789012:role//",
        "arn:aws:sts::123456789012:assumed-role/app/session",
    ]:
        write("role_arn", a)


def trust_policies():
    host_path = "oidc.example.com/cluster"
    doc = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/" + host_path},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                host_path + ":sub": "system:serviceaccount:default:app",
                host_path + ":aud": "sts.amazonaws.com",
            }},
        }],
    }
    plain = json.dumps(doc, separators=(",", ":"))
    write("trust_policy", plain)
    write("trust_policy", urllib.parse.quote(plain, safe=""))
    write("trust_policy", json.dumps(doc, indent=4) + "\nteam-a\nsa\nsts.amazonaws.com")
    listed = json.loads(plain)
    listed["Statement"][0]["Action"] = ["sts:AssumeRoleWithWebIdentity"]
    write("trust_policy", json.dumps(listed))


admission_reviews()
keys()
urls()
arns()
trust_policies()
for d in sorted(CORPUS.iterdir()):
    print(f"{d.name}: {sum(1 for _ in d.iterdir())} files", file=sys.stderr)
