#!/usr/bin/env bash
# Requests/s for the JWKS over TLS keep-alive: `irsa issuer serve` against nginx serving the same bytes, in the
# same run, same certificate, same load generator. Loopback only; bounded in time; stops what it started.
#
# Usage: bench/issuer-jwks.sh [DURATION_S=10] [CONNECTIONS=64] [ROUNDS=3]
# Three servers run side by side: irsa, nginx configured as the Debian package ships it ("nginx-debian") and
# nginx tuned for this one file ("nginx-tuned"). Each round runs wrk against all three, rotating which goes
# first; the medians are reported, with each server's own CPU time per request (user+system from /proc),
# which a busy machine disturbs less than req/s.
# Needs: openssl, curl, nginx and wrk (Debian: apt-get install -y nginx wrk). IRSA_BIN=path/to/irsa uses
# `$IRSA_BIN issuer serve`; otherwise the release binary is built.
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
  for f in "$work"/nginx-*.pid; do [[ -f $f ]] && kill "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
[[ -n ${KEEP:-} ]] && trap - EXIT

for tool in openssl curl nginx wrk; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y nginx wrk curl openssl)" >&2; exit 1; }
done

declare -A port=([irsa]=18443 [nginx-debian]=18444 [nginx-tuned]=18445)
url() { echo "https://127.0.0.1:${port[$1]}/openid/v1/jwks"; } # the JWKS of a server, by name
admin_port=18081
fixtures=$root/issuer/tests/fixtures

# One certificate for all servers (P-256, the usual choice for a public issuer).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/tls.key" -out "$work/tls.crt" \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 2>/dev/null

if [[ -n ${IRSA_BIN:-} ]]; then
  irsa=("$IRSA_BIN")
else
  (cd "$root" && cargo build --release -q -p irsa)
  irsa=("$root/target/release/irsa")
fi

# Two keys, as during a rotation.
"${irsa[@]}" issuer serve --issuer-url "https://127.0.0.1:${port[irsa]}" \
  --public-key-file "$fixtures/rsa2048.pub" --public-key-file "$fixtures/p256.pub" \
  --tls-cert-file "$work/tls.crt" --tls-key-file "$work/tls.key" \
  --listen "127.0.0.1:${port[irsa]}" --admin-listen "127.0.0.1:$admin_port" >"$work/irsa.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null && break
  sleep 0.1
done
mkdir -p "$work/www/openid/v1"
curl -sfk "$(url irsa)" -o "$work/www/openid/v1/jwks"

# Both nginx instances: 2 workers (the machine's cores), TLS 1.3, the same headers. They differ in the http
# settings only:
# - debian: those of the Debian package's /etc/nginx/nginx.conf (sendfile, tcp_nopush, an access log line per
#   request, gzip on) and nginx's defaults elsewhere (1000 requests per keep-alive connection, no open-file
#   cache);
# - tuned: what one would set for serving this one file: keep-alive without a request cap, no access log,
#   open-file cache.
declare -A http_settings=(
  [nginx-debian]="access_log $work/access.log; sendfile on; tcp_nopush on; gzip on;"
  [nginx-tuned]="access_log off; sendfile on; keepalive_requests 10000000; keepalive_timeout 120s;
  open_file_cache max=100; open_file_cache_valid 60s;"
)
mkdir -p "$work/tmp"
for name in nginx-debian nginx-tuned; do
  cat >"$work/$name.conf" <<NGINX
worker_processes 2;
pid $work/$name.pid;
error_log $work/$name-error.log warn;
events { worker_connections 4096; }
http {
  ${http_settings[$name]}
  client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
  uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  server {
    listen 127.0.0.1:${port[$name]} ssl;
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
  nginx -c "$work/$name.conf" -p "$work" -e "$work/$name-error.log"
  for _ in $(seq 50); do [[ -s $work/$name.pid ]] && break; sleep 0.1; done
  cmp <(curl -sfk "$(url irsa)") \
    <(curl -sfk "$(url "$name")") \
    || { echo "irsa and $name do not serve the same bytes" >&2; exit 1; }
done

declare -A server_pids=(
  [irsa]=${pids[0]}
  [nginx-debian]=$(pgrep -P "$(cat "$work/nginx-debian.pid")" | tr '\n' ' ')
  [nginx-tuned]=$(pgrep -P "$(cat "$work/nginx-tuned.pid")" | tr '\n' ' ')
)
hz=$(getconf CLK_TCK)
cpu_ticks() { # pids... -> user+system clock ticks used so far
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
run() { # name -> prints "requests/s cpu-µs-per-request"
  local name=$1 before after
  # shellcheck disable=SC2086
  before=$(cpu_ticks ${server_pids[$name]})
  wrk -t2 -c"$conns" -d"${duration}s" "$(url "$name")" >"$work/wrk-$name.txt" 2>&1
  # shellcheck disable=SC2086
  after=$(cpu_ticks ${server_pids[$name]})
  awk -v ticks=$((after - before)) -v hz="$hz" '
    /requests in/ {n = $1}
    /Requests\/sec/ {rps = $2}
    END {printf "%s %.1f\n", rps, ticks / hz * 1e6 / n}' "$work/wrk-$name.txt"
}

servers=(irsa nginx-debian nginx-tuned)
load_before=$(cut -d" " -f1-3 /proc/loadavg)
for name in "${servers[@]}"; do # warm-up
  wrk -t2 -c"$conns" -d2s "$(url "$name")" >/dev/null
done
declare -A rps_of cpu_of
for r in $(seq "$rounds"); do
  # Rotate the order so no server always runs first (or last) in a round.
  first=$(((r - 1) % ${#servers[@]}))
  order=("${servers[@]:$first}" "${servers[@]:0:$first}")
  for name in "${order[@]}"; do
    read -r rps cpu < <(run "$name")
    rps_of[$name]+="$rps " cpu_of[$name]+="$cpu "
    echo "round $r $name: $rps req/s, $cpu us CPU/request" >&2
  done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
declare -A rps_median cpu_median
for name in "${servers[@]}"; do
  # shellcheck disable=SC2086
  rps_median[$name]=$(median ${rps_of[$name]}) cpu_median[$name]=$(median ${cpu_of[$name]})
done

echo "--- summary: $(nproc) cores, load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg) ---"
echo "--- $rounds rounds x ${duration}s per server, $conns connections, wrk -t2, TLS 1.3 keep-alive, medians ---"
printf 'jwks bytes: %s\n' "$(wc -c <"$work/www/openid/v1/jwks")"
for name in "${servers[@]}"; do
  printf '%-13s req/s: %6.0f  (%s)  server CPU/request: %s us  (%s)\n' "$name" "${rps_median[$name]}" \
    "${rps_of[$name]% }" "${cpu_median[$name]}" "${cpu_of[$name]% }"
done
for name in nginx-debian nginx-tuned; do
  printf 'irsa vs %-13s req/s ratio: %.2f   CPU per request ratio (%s/irsa): %.2f\n' "$name" \
    "$(echo "${rps_median[irsa]} / ${rps_median[$name]}" | bc -l)" "$name" \
    "$(echo "${cpu_median[$name]} / ${cpu_median[irsa]}" | bc -l)"
done
