#!/usr/bin/env bash
# `make bench-http`: our http service against Debian's nginx in the same run,
# same machine, same files, 2 workers each (docs/services/http.md).
#   bench/http.sh BIN_DIR      (BIN_DIR holds fileserver)
# Environment: BENCH_SECONDS (wrk duration, 10), AB_N (100000), CLIENTS (50),
# BIG_MB (size of the big file in MiB, 100).
#
# nginx runs from a config generated into a temp dir (no system config, no
# root-owned paths, workers as the current user), with sendfile on, access
# log off, WebDAV PUT/DELETE. Ours: --mode process --workers 2, log level
# warn (no access log either). Prints one table: ours / nginx per line.
set -euo pipefail
bin=$(cd "${1:-bin}" && pwd)
secs=${BENCH_SECONDS:-10}
ab_n=${AB_N:-100000}
clients=${CLIENTS:-50}
big_mb=${BIG_MB:-100}

for tool in nginx wrk ab curl dd python3; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "bench-http: $tool is missing (make deps installs nginx, wrk, apache2-utils, curl)" >&2
    exit 1
  fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d /tmp/fsrv-bench-http-XXXXXX)
ours_pid=""
nginx_pid=""
cleanup() {
  [ -n "$ours_pid" ] && kill "$ours_pid" 2>/dev/null && wait "$ours_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

files=$tmp/files
mkdir -p "$files" "$tmp/nginx" "$tmp/client"
head -c 4096 /dev/urandom >"$files/4k.bin"
head -c 1024 /dev/urandom >"$files/1k.bin"
head -c $((big_mb << 20)) /dev/urandom >"$files/big.bin"
cp "$files/big.bin" "$tmp/client/up.bin"
big_bytes=$((big_mb << 20))

read -r port_ours port_nginx < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

# --- nginx -------------------------------------------------------------
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
  client_max_body_size 0;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 127.0.0.1:$port_nginx;
    root $files;
    location / {
      dav_methods PUT DELETE;
      dav_access user:rw group:r all:r;
    }
  }
}
EOF
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" &
nginx_pid=$!

# --- ours --------------------------------------------------------------
"$bin/fileserver" --mode process --workers 2 --host 127.0.0.1 --listen "http=$port_ours" \
  --root "$files" --log-level warn --max-upload $((4 << 30)) >"$tmp/ours.out" 2>"$tmp/ours.err" &
ours_pid=$!

for p in $port_ours $port_nginx; do
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$p/1k.bin" && break
    sleep 0.1
  done
done

# Peak RSS (VmHWM) summed over a server's processes (master + workers), MiB.
peak_rss() {
  local pids="$1 $(pgrep -P "$1" | tr '\n' ' ')" total=0 kb
  for p in $pids; do
    kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    total=$((total + ${kb:-0}))
  done
  awk -v k="$total" 'BEGIN { printf "%.1f", k / 1024 }'
}

wrk_run() {  # url -> "req/s p99"
  local out
  out=$(wrk -t2 -c"$clients" -d"${secs}s" --latency "$1")
  local rps p99
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  echo "$rps $p99"
}

ab_run() {  # url -> "req/s failed"
  local out
  out=$(ab -q -k -n "$ab_n" -c "$clients" "$1" 2>&1)
  local rps failed
  rps=$(awk '/^Requests per second:/ {printf "%.0f", $4}' <<<"$out")
  failed=$(awk '/^Failed requests:/ {print $3}' <<<"$out")
  echo "$rps $failed"
}

one_download() {  # url -> MB/s
  curl -s -o /dev/null -w '%{speed_download}' "$1" | awk '{printf "%.0f", $1 / 1e6}'
}

many_downloads() {  # url -> aggregate MB/s over $clients parallel curls
  local start end pids=()
  start=$(date +%s.%N)
  for _ in $(seq "$clients"); do
    curl -s -o /dev/null "$1" &
    pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v n="$clients" -v b="$big_bytes" \
    'BEGIN { printf "%.0f", n * b / (e - s) / 1e6 }'
}

upload() {  # method url -> MB/s (the reply comes after the server's fsync for ours)
  local t
  if [ "$1" = POST ]; then
    t=$(curl -s -o /dev/null -w '%{time_total}' --data-binary "@$tmp/client/up.bin" "$2")
  else
    t=$(curl -s -o /dev/null -w '%{time_total}' -T "$tmp/client/up.bin" "$2")
  fi
  awk -v t="$t" -v b="$big_bytes" 'BEGIN { printf "%.0f", b / t / 1e6 }'
}

declare -A R
for who in ours nginx; do
  port=port_$who
  base="http://127.0.0.1:${!port}"
  echo "bench-http: $who on ${!port}..." >&2
  read -r "R[$who.w4.rps]" "R[$who.w4.p99]" < <(wrk_run "$base/4k.bin")
  read -r "R[$who.w1.rps]" "R[$who.w1.p99]" < <(wrk_run "$base/1k.bin")
  read -r "R[$who.ab.rps]" "R[$who.ab.failed]" < <(ab_run "$base/4k.bin")
  R[$who.one]=$(one_download "$base/big.bin")
  R[$who.many]=$(many_downloads "$base/big.bin")
  R[$who.put]=$(upload PUT "$base/put-$who.bin")
  cmp -s "$files/put-$who.bin" "$tmp/client/up.bin" || echo "bench-http: $who PUT corrupted the file" >&2
  if [ $who = ours ]; then
    R[$who.post]=$(upload POST "$base/upload/post-$who.bin")
    cmp -s "$files/post-$who.bin" "$tmp/client/up.bin" || echo "bench-http: POST corrupted the file" >&2
  else
    R[$who.post]="-"
  fi
done
R[ours.rss]=$(peak_rss "$ours_pid")
R[nginx.rss]=$(peak_rss "$nginx_pid")
dd_start=$(date +%s.%N)
dd if="$tmp/client/up.bin" of="$files/dd.bin" bs=1M conv=fsync status=none
dd_end=$(date +%s.%N)
dd_mbs=$(awk -v s="$dd_start" -v e="$dd_end" -v b="$big_bytes" 'BEGIN { printf "%.0f", b / (e - s) / 1e6 }')

row() { printf '| %-44s | %14s | %14s |\n' "$1" "$2" "$3"; }
echo
echo "bench-http $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, 2 workers each, $clients clients, big file ${big_mb} MiB"
row "measure" "ours" "nginx"
row "---" "---:" "---:"
row "wrk -t2 -c$clients -d${secs}s 4 KiB: req/s" "${R[ours.w4.rps]}" "${R[nginx.w4.rps]}"
row "wrk 4 KiB: p99 latency" "${R[ours.w4.p99]}" "${R[nginx.w4.p99]}"
row "wrk -t2 -c$clients -d${secs}s 1 KiB: req/s" "${R[ours.w1.rps]}" "${R[nginx.w1.rps]}"
row "wrk 1 KiB: p99 latency" "${R[ours.w1.p99]}" "${R[nginx.w1.p99]}"
row "ab -k -n $ab_n -c $clients 4 KiB: req/s" "${R[ours.ab.rps]}" "${R[nginx.ab.rps]}"
row "ab -k: failed requests" "${R[ours.ab.failed]}" "${R[nginx.ab.failed]}"
row "1 curl of ${big_mb} MiB: MB/s" "${R[ours.one]}" "${R[nginx.one]}"
row "$clients concurrent curls of ${big_mb} MiB: aggregate MB/s" "${R[ours.many]}" "${R[nginx.many]}"
row "upload ${big_mb} MiB PUT: MB/s" "${R[ours.put]} (fsync)" "${R[nginx.put]} (no fsync)"
row "upload ${big_mb} MiB POST /upload: MB/s" "${R[ours.post]} (fsync)" "${R[nginx.post]}"
row "dd conv=fsync of the same file: MB/s" "$dd_mbs" "$dd_mbs"
row "peak RSS, all processes: MiB" "${R[ours.rss]}" "${R[nginx.rss]}"
