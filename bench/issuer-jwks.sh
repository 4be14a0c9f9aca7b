#!/usr/bin/env bash
# Requests/s for the JWKS over TLS keep-alive: `irsa issuer serve` against nginx serving the same bytes, in the
# same run, same certificate, same load generator. Loopback only; bounded in time; stops what it started.
#
# Usage: bench/issuer-jwks.sh [DURATION_S=10] [CONNECTIONS=64] [ROUNDS=3]
# Each round runs wrk against both servers, alternating which goes first; the medians are reported, with the
# server's own CPU time per request (user+system from /proc), which a busy machine disturbs less than req/s.
# Needs: openssl, curl, nginx and wrk (Debian: apt-get install -y nginx wrk). Builds the release binary.
# IRSA_BIN=path/to/irsa uses `$IRSA_BIN issuer serve` instead of the crate's example.
set -euo pipefail

duration=${1:-10}
conns=${2:-64}
rounds=${3:-3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
chmod 755 "$work" # nginx workers run unprivileged
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -f $work/nginx.pid ]] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
[[ -n ${KEEP:-} ]] && trap - EXIT

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
# request cap, no access log, open-file cache, the same headers. NGINX_ACCESS_LOG=on keeps the Debian package's
# default of logging every request (to a file in the work dir), for the comparison as the package ships.
if [[ ${NGINX_ACCESS_LOG:-off} == on ]]; then access_log="access_log $work/access.log;"; else access_log="access_log off;"; fi
cat >"$work/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  $access_log
  sendfile on;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  open_file_cache max=100;
  open_file_cache_valid 60s;
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

cpu_ticks() { # pids... -> user+system clock ticks used so far
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
irsa_pid=${pids[0]}
nginx_pids=$(pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' ')
hz=$(getconf CLK_TCK)

run() { # name port pids... -> prints "requests/s cpu-µs-per-request"
  local name=$1 port=$2; shift 2
  local before after
  before=$(cpu_ticks "$@")
  wrk -t2 -c"$conns" -d"${duration}s" "https://127.0.0.1:$port/openid/v1/jwks" >"$work/wrk-$name.txt" 2>&1
  after=$(cpu_ticks "$@")
  awk -v ticks=$((after - before)) -v hz="$hz" '
    /requests in/ {n = $1}
    /Requests\/sec/ {rps = $2}
    END {printf "%s %.1f\n", rps, ticks / hz * 1e6 / n}' "$work/wrk-$name.txt"
}

load_before=$(cut -d" " -f1-3 /proc/loadavg)
# Warm both, then alternate so neither always runs on a cooler machine.
wrk -t2 -c"$conns" -d2s "https://127.0.0.1:$irsa_port/openid/v1/jwks" >/dev/null
wrk -t2 -c"$conns" -d2s "https://127.0.0.1:$nginx_port/openid/v1/jwks" >/dev/null
irsa_rps=() irsa_cpu=() nginx_rps=() nginx_cpu=()
for r in $(seq "$rounds"); do
  order=(irsa nginx); (( r % 2 == 0 )) && order=(nginx irsa)
  for who in "${order[@]}"; do
    if [[ $who == irsa ]]; then
      read -r rps cpu < <(run "irsa$r" $irsa_port "$irsa_pid"); irsa_rps+=("$rps"); irsa_cpu+=("$cpu")
    else
      # shellcheck disable=SC2086
      read -r rps cpu < <(run "nginx$r" $nginx_port $nginx_pids); nginx_rps+=("$rps"); nginx_cpu+=("$cpu")
    fi
    echo "round $r $who: $rps req/s, $cpu us CPU/request" >&2
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
irsa=$(median "${irsa_rps[@]}"); nginx=$(median "${nginx_rps[@]}")
icpu=$(median "${irsa_cpu[@]}"); ncpu=$(median "${nginx_cpu[@]}")
echo "--- wrk output (last round) ---"
cat "$work/wrk-irsa$rounds.txt" "$work/wrk-nginx$rounds.txt"
echo "--- summary: $(nproc) cores, load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg) ---"
echo "--- $rounds rounds x ${duration}s per server, $conns connections, wrk -t2, TLS 1.3 keep-alive, medians, nginx access log ${NGINX_ACCESS_LOG:-off} ---"
printf 'jwks bytes: %s\n' "$(wc -c <"$work/www/openid/v1/jwks")"
printf 'irsa  req/s: %.0f  (%s)  server CPU/request: %s us  (%s)\n' "$irsa" "${irsa_rps[*]}" "$icpu" "${irsa_cpu[*]}"
printf 'nginx req/s: %.0f  (%s)  server CPU/request: %s us  (%s)\n' "$nginx" "${nginx_rps[*]}" "$ncpu" "${nginx_cpu[*]}"
printf 'ratio irsa/nginx req/s: %.2f   nginx/irsa CPU per request: %.2f\n' \
  "$(echo "$irsa / $nginx" | bc -l)" "$(echo "$ncpu / $icpu" | bc -l)"
