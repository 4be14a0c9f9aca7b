#!/usr/bin/env bash
# Requests/s for the JWKS over TLS keep-alive: `irsa issuer serve` against nginx serving the same bytes, in the
# same run, same certificate, same load generator. Loopback only; bounded in time; stops what it started.
#
# Usage: bench/issuer-jwks.sh [DURATION_S=15] [CONNECTIONS=64]
# Needs: openssl, curl, nginx and wrk (Debian: apt-get install -y nginx wrk). Builds the release binary.
# IRSA_BIN=path/to/irsa uses `$IRSA_BIN issuer serve` instead of the crate's example.
set -euo pipefail

duration=${1:-15}
conns=${2:-64}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for tool in openssl curl nginx wrk; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y nginx wrk curl openssl)" >&2; exit 1; }
done

irsa_port=18443 nginx_port=18444 admin_port=18081
fixtures=$root/issuer/tests/fixtures

# One certificate for both servers (P-256, the usual choice for a public issuer).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 2>/dev/null

if [[ -n ${IRSA_BIN:-} ]]; then
  irsa=("$IRSA_BIN" issuer serve)
else
  (cd "$root" && cargo build --release -q -p irsa-issuer --example serve)
  irsa=("$root/target/release/examples/serve")
fi

# Two keys, as during a rotation.
"${irsa[@]}" --issuer-url "https://127.0.0.1:$irsa_port" \
  --public-key-file "$fixtures/rsa2048.pub" --public-key-file "$fixtures/p256.pub" \
  --tls-cert-file "$work/tls.crt" --tls-key-file "$work/tls.key" \
  --listen "127.0.0.1:$irsa_port" --admin-listen "127.0.0.1:$admin_port" >"$work/irsa.log" 2>&1 &
pids+=($!)

for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null && break
  sleep 0.1
done
mkdir -p "$work/www/openid/v1"
curl -sfk "https://127.0.0.1:$irsa_port/openid/v1/jwks" -o "$work/www/openid/v1/jwks"

# nginx as one would deploy it for this: 2 workers (the machine's cores), TLS 1.3, keep-alive without a
# request cap, no access log, open-file cache, the same headers.
cat >"$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  open_file_cache max=100 valid=60s;
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $work/tls.crt;
    ssl_certificate_key $work/tls.key;
    ssl_protocols TLSv1.3;
    root $work/www;
    location = /openid/v1/jwks {
      default_type application/jwk-set+json;
      add_header Cache-Control "public, max-age=3600";
    }
  }
}
NGINX
mkdir -p "$work/tmp"
nginx -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"
for _ in $(seq 50); do [[ -s $work/nginx.pid ]] && break; sleep 0.1; done

cmp <(curl -sfk "https://127.0.0.1:$irsa_port/openid/v1/jwks") <(curl -sfk "https://127.0.0.1:$nginx_port/openid/v1/jwks") \
  || { echo "the two servers do not serve the same bytes" >&2; exit 1; }

run() { # name port -> prints requests/s
  wrk -t2 -c"$conns" -d"${duration}s" "https://127.0.0.1:$2/openid/v1/jwks" >"$work/wrk-$1.txt" 2>&1
  awk '/Requests\/sec/ {print $2}' "$work/wrk-$1.txt"
}

# Warm both, then alternate so neither always runs on a cooler machine.
wrk -t2 -c"$conns" -d2s "https://127.0.0.1:$irsa_port/openid/v1/jwks" >/dev/null
wrk -t2 -c"$conns" -d2s "https://127.0.0.1:$nginx_port/openid/v1/jwks" >/dev/null
i1=$(run irsa1 $irsa_port); n1=$(run nginx1 $nginx_port)
n2=$(run nginx2 $nginx_port); i2=$(run irsa2 $irsa_port)
irsa=$(echo "($i1 + $i2) / 2" | bc -l); nginx=$(echo "($n1 + $n2) / 2" | bc -l)
echo "--- wrk output (last runs) ---"
cat "$work/wrk-irsa2.txt" "$work/wrk-nginx2.txt"
printf 'jwks bytes: %s\n' "$(wc -c <"$work/www/openid/v1/jwks")"
printf 'irsa  req/s: %.0f (%s, %s)\n' "$irsa" "$i1" "$i2"
printf 'nginx req/s: %.0f (%s, %s)\n' "$nginx" "$n1" "$n2"
printf 'ratio irsa/nginx: %.2f\n' "$(echo "$irsa / $nginx" | bc -l)"
