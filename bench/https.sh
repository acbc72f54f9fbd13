#!/usr/bin/env bash
# `make bench-http`, HTTPS rows (after bench/http.sh): our http service over
# TLS against Debian's nginx with `ssl` on the same certificate (make certs),
# same machine, same files, 2 workers each (docs/TLS.md).
#   bench/https.sh BIN_DIR CERT_DIR
# Environment: BENCH_SECONDS (wrk duration, 10), CLIENTS (50), AB_N (new
# connections per handshake run, 5000), HS_ROUNDS (handshake runs per
# server, alternating, 5), BIG_MB (the big file, 100), GET_RUNS (big-file
# GETs per server, alternating, 5: median and spread).
#
# Rows: 4 KiB GETs over keep-alive (wrk), new connections per second with a
# full handshake each (ab without -k), one GET of the big file (curl), for
# ours in process mode (2 workers) and thread mode (2 loops) and nginx (2
# workers). The handshake row is the median of HS_ROUNDS alternating runs
# with their spread (one ab run swings +-20% on a 2-core machine that also
# runs ab), and beside it the servers' CPU time per handshake (utime +
# stime of the server's processes over the runs, from /proc), which the
# load of other work moves far less than the rate.
# Both servers: TLS 1.2 and 1.3, OpenSSL's default ciphers (TLS 1.3 with
# AES-256-GCM for these clients), no session resumption across ab's
# connections (ab makes a fresh session per connection).
set -euo pipefail
bin=$(cd "${1:-bin}" && pwd)
certs=$(cd "${2:-build/certs}" && pwd)
secs=${BENCH_SECONDS:-10}
clients=${CLIENTS:-50}
ab_n=${AB_N:-5000}
hs_rounds=${HS_ROUNDS:-5}
big_mb=${BIG_MB:-100}
get_runs=${GET_RUNS:-5}

for tool in nginx wrk ab curl python3; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "bench-https: $tool is missing (make deps installs nginx, wrk, apache2-utils, curl)" >&2
    exit 1
  fi
done
[ -f "$certs/cert.pem" ] || { echo "bench-https: no $certs/cert.pem (make certs)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d /tmp/fsrv-bench-https-XXXXXX)
ours_pid=""
thread_pid=""
nginx_pid=""
cleanup() {
  [ -n "$ours_pid" ] && kill "$ours_pid" 2>/dev/null && wait "$ours_pid" 2>/dev/null || true
  [ -n "$thread_pid" ] && kill "$thread_pid" 2>/dev/null && wait "$thread_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

files=$tmp/files
mkdir -p "$files" "$tmp/nginx"
head -c 4096 /dev/urandom >"$files/4k.bin"
head -c $((big_mb << 20)) /dev/urandom >"$files/big.bin"

read -r port_ours port_thread port_nginx < <(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

user_line=""
[ "$(id -u)" = 0 ] && user_line="user $(id -un) $(id -gn);"
cat >"$tmp/nginx/nginx.conf" <<EOF
$user_line
worker_processes 2;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  default_type application/octet-stream;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 127.0.0.1:$port_nginx ssl;
    ssl_certificate $certs/cert.pem;
    ssl_certificate_key $certs/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    root $files;
  }
}
EOF
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
nginx_pid=$!

"$bin/fileserver" --mode process --workers 2 --host 127.0.0.1 --listen "http=$port_ours,tls" \
  --tls-cert "$certs/cert.pem" --tls-key "$certs/key.pem" \
  --root "$files" --log-level warn >"$tmp/ours.out" 2>"$tmp/ours.err" &
ours_pid=$!
"$bin/fileserver" --mode thread --loops 2 --host 127.0.0.1 --listen "http=$port_thread,tls" \
  --tls-cert "$certs/cert.pem" --tls-key "$certs/key.pem" \
  --root "$files" --log-level warn >"$tmp/thread.out" 2>"$tmp/thread.err" &
thread_pid=$!

for p in $port_ours $port_thread $port_nginx; do
  for _ in $(seq 100); do
    curl -s -o /dev/null --cacert "$certs/cert.pem" "https://127.0.0.1:$p/4k.bin" && break
    sleep 0.1
  done
done

wrk_run() {  # url -> req/s
  wrk -t2 -c"$clients" -d"${secs}s" "$1" | awk '/^Requests\/sec:/ {printf "%.0f", $2}'
}

ab_new() {  # url -> "handshakes/s failed": one request per new TLS connection
  local out
  out=$(ab -q -n "$ab_n" -c "$clients" "$1" 2>&1)
  echo "$(awk '/^Requests per second:/ {printf "%.0f", $4}' <<<"$out")" \
    "$(awk '/^Failed requests:/ {print $3}' <<<"$out")"
}

cpu_ticks() {  # pid -> utime + stime of it (all its threads) and its children
  local t=0 p
  for p in "$1" $(pgrep -P "$1"); do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}

median() {  # numbers... -> "median min max"
  printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1} END {printf "%s %s %s\n", v[int((NR + 1) / 2)], v[1], v[NR]}'
}

one_get() {  # url -> MB/s of one GET of the big file (curl's wall time, 3 decimals)
  curl -s -o /dev/null --cacert "$certs/cert.pem" -w '%{time_total}' "$1" |
    awk -v b="$((big_mb << 20))" '{ printf "%.0f\n", b / $1 / 1e6 }'
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
negotiated() {  # who -> "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519": the same for a fair row
  ab -n 1 "$(base_of "$1")/4k.bin" 2>/dev/null | awk -F': *' '
    /^SSL\/TLS Protocol/ {split($2, p, ","); v = p[1] " " p[2]}
    /^Server Temp Key/ {split($2, k, " "); g = k[1]}
    END {print v " " g}'
}
load_before=$(load)

# Row by row, each server in turn, so both meet the same load from other
# work on a shared machine (running all of one server's rows first let the
# two halves of a run see different machines).
declare -A R
declare -A PID=([ours]=$ours_pid [thread]=$thread_pid [nginx]=$nginx_pid)
WHO=(ours thread nginx)
base_of() { local port=port_$1; echo "https://127.0.0.1:${!port}"; }
echo "bench-https: ours on $port_ours (process), $port_thread (thread), nginx on $port_nginx..." >&2
for who in "${WHO[@]}"; do R[$who.w4]=$(wrk_run "$(base_of $who)/4k.bin"); done
declare -A HS_RATES HS_CPU
for who in "${WHO[@]}"; do R[$who.hs.failed]=0; done
for round in $(seq "$hs_rounds"); do
  for who in "${WHO[@]}"; do
    t0=$(cpu_ticks "${PID[$who]}")
    read -r rate failed < <(ab_new "$(base_of $who)/4k.bin")
    t1=$(cpu_ticks "${PID[$who]}")
    HS_RATES[$who]+="$rate "
    # clock ticks (1/100 s) -> microseconds per handshake
    HS_CPU[$who]+="$(((t1 - t0) * 10000 * 100 / $(getconf CLK_TCK) / ab_n)) "
    R[$who.hs.failed]=$((R[$who.hs.failed] + ${failed:-0}))
  done
  echo "bench-https: handshake round $round of $hs_rounds done" >&2
done
for who in "${WHO[@]}"; do
  # shellcheck disable=SC2086 # word splitting wanted: one number each
  read -r "R[$who.hs]" "R[$who.hs.min]" "R[$who.hs.max]" < <(median ${HS_RATES[$who]})
  # shellcheck disable=SC2086
  read -r "R[$who.hs.cpu]" _ _ < <(median ${HS_CPU[$who]})
done
# The big GET likewise: GET_RUNS alternating rounds, the median and spread
# of MB/s, and the server's CPU time per GET (ms), steadier than the rate.
declare -A GET_RATES GET_CPU
for _ in $(seq "$get_runs"); do
  for who in "${WHO[@]}"; do
    t0=$(cpu_ticks "${PID[$who]}")
    GET_RATES[$who]+="$(one_get "$(base_of $who)/big.bin") "
    t1=$(cpu_ticks "${PID[$who]}")
    GET_CPU[$who]+="$(((t1 - t0) * 1000 / $(getconf CLK_TCK))) "
  done
done
for who in "${WHO[@]}"; do
  # shellcheck disable=SC2086 # word splitting wanted: one number each
  read -r "R[$who.big]" "R[$who.big.min]" "R[$who.big.max]" < <(median ${GET_RATES[$who]})
  # shellcheck disable=SC2086
  read -r "R[$who.big.cpu]" _ _ < <(median ${GET_CPU[$who]})
done

row() { printf '| %-52s | %18s | %18s | %14s |\n' "$1" "$2" "$3" "$4"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "bench-https $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, 2 workers (or loops) each, $clients clients, $(openssl version | cut -d' ' -f1-2), ECDSA P-256 certificate"
echo "load average (1, 5, 15 min): $load_before before, $(load) after"
echo "negotiated with ab: ours $(negotiated ours), nginx $(negotiated nginx)"
row "measure (HTTPS)" "ours, process" "ours, thread" "nginx"
row "---" "---:" "---:" "---:"
row "wrk -t2 -c$clients -d${secs}s 4 KiB keep-alive: req/s" \
  "${R[ours.w4]} ($(ratio "${R[ours.w4]}" "${R[nginx.w4]}"))" \
  "${R[thread.w4]} ($(ratio "${R[thread.w4]}" "${R[nginx.w4]}"))" "${R[nginx.w4]}"
row "ab -n $ab_n -c $clients, new connection each: conn/s, median of $hs_rounds" \
  "${R[ours.hs]} ($(ratio "${R[ours.hs]}" "${R[nginx.hs]}"))" \
  "${R[thread.hs]} ($(ratio "${R[thread.hs]}" "${R[nginx.hs]}"))" "${R[nginx.hs]}"
row "  spread (min-max)" "${R[ours.hs.min]}-${R[ours.hs.max]}" \
  "${R[thread.hs.min]}-${R[thread.hs.max]}" "${R[nginx.hs.min]}-${R[nginx.hs.max]}"
row "  server CPU per handshake, us (median)" "${R[ours.hs.cpu]}" "${R[thread.hs.cpu]}" \
  "${R[nginx.hs.cpu]}"
row "  failed" "${R[ours.hs.failed]}" "${R[thread.hs.failed]}" "${R[nginx.hs.failed]}"
row "1 curl of ${big_mb} MiB: MB/s, median of $get_runs" \
  "${R[ours.big]} ($(ratio "${R[ours.big]}" "${R[nginx.big]}"))" \
  "${R[thread.big]} ($(ratio "${R[thread.big]}" "${R[nginx.big]}"))" "${R[nginx.big]}"
row "  spread (min-max)" "${R[ours.big.min]}-${R[ours.big.max]}" \
  "${R[thread.big.min]}-${R[thread.big.max]}" "${R[nginx.big.min]}-${R[nginx.big.max]}"
row "  server CPU per GET, ms (median)" "${R[ours.big.cpu]}" "${R[thread.big.cpu]}" "${R[nginx.big.cpu]}"
