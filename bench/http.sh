#!/usr/bin/env bash
# `make bench-http`: our http service against Debian's nginx in the same run,
# same machine, same files, 2 workers each (docs/services/http.md).
#   bench/http.sh BIN_DIR      (BIN_DIR holds fileserver)
# Environment: BENCH_SECONDS (wrk duration per run, 5), ROUNDS (alternating
# rounds of the small-file runs, 5), AB_N (100000), CLIENTS (50), BIG_MB
# (size of the big file in MiB, 100; 0 skips the big-file and upload rows),
# SIZES (small files measured, "4096 1024"), THINK_MS (think time of the
# paced runs, 1), THREAD_LOOPS (our thread mode's
# --loops, 2: as many event loops as nginx gets workers; the "before"
# build's thread mode runs without the option), BEFORE_BIN (a directory with
# another build's fileserver, e.g. of the main branch: its two modes join
# the small-file rounds as "before" columns, for a change's before/after
# rows from one run).
#
# Small files: ROUNDS rounds, each running wrk once against every server in
# turn (ours process, nginx, ours thread, nginx rotated each round so no
# server always runs first), so every server sees the same background load
# of this shared machine. The table gives each server's median req/s and
# median p99 latency, the min-max spread of req/s, the ratio of the
# medians, and the server's CPU time per request (user + system of all its
# processes over the run / requests; median and spread: the steadiest
# figure on a shared machine, since it does not count time others took).
# The first size is also run paced (THINK_MS per connection between a reply
# and its next request): p99 at the same offered load for every server.
# The load average is printed before and after.
#
# nginx is configured as a careful operator would for static files (config
# generated into a temp dir, no system config): 2 workers, sendfile on,
# tcp_nopush on, tcp_nodelay on, access_log off, keepalive_requests 100000,
# open_file_cache (descriptors, sizes and mtimes of open files kept, checked
# every 30 s), no worker_cpu_affinity (the load generator shares the two
# cores), WebDAV PUT/DELETE for the upload row. Ours: --workers 2 in each
# mode (thread mode: 2 pool threads and --loops THREAD_LOOPS event loops),
# log level warn (no access log either).
set -euo pipefail
bin=$(cd "${1:-bin}" && pwd)
secs=${BENCH_SECONDS:-5}
rounds=${ROUNDS:-5}
ab_n=${AB_N:-100000}
clients=${CLIENTS:-50}
big_mb=${BIG_MB:-100}
sizes=${SIZES:-4096 1024}
loops=${THREAD_LOOPS:-2}
think_ms=${THINK_MS:-1}

for tool in nginx wrk ab curl dd python3; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "bench-http: $tool is missing (make deps installs nginx, wrk, apache2-utils, curl)" >&2
    exit 1
  fi
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d /tmp/fsrv-bench-http-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

files=$tmp/files
mkdir -p "$files" "$tmp/nginx" "$tmp/client"
for s in $sizes; do head -c "$s" /dev/urandom >"$files/$s.bin"; done
# Served files are old, as a site's static files are: ours does not cache a
# file modified in the last second (storage::SmallFileCache::kSettleNs).
touch -d '-1 minute' "$files"/*.bin
big_bytes=$((big_mb << 20))
if [ "$big_mb" -gt 0 ]; then
  head -c "$big_bytes" /dev/urandom >"$files/big.bin"
  cp "$files/big.bin" "$tmp/client/up.bin"
fi

before=${BEFORE_BIN:+$(cd "$BEFORE_BIN" && pwd)}
read -r port_proc port_thread port_nginx port_bproc port_bthread < <(python3 -c '
import socket
s = [socket.socket() for _ in range(5)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

# --- nginx -------------------------------------------------------------
user_line=""
[ "$(id -u)" = 0 ] && user_line="user $(id -un) $(id -gn);"
cat >"$tmp/nginx/nginx.conf" <<EOF
$user_line
worker_processes 2;
worker_rlimit_nofile 65536;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 100000;
  open_file_cache max=10000 inactive=60s;
  open_file_cache_valid 30s;
  open_file_cache_errors on;
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
pids+=("$nginx_pid")

# --- ours, both modes (and the "before" build's) ------------------------
start_ours() {  # binary mode port [extra options...] -> pid in $started
  "$1" --mode "$2" --workers 2 --host 127.0.0.1 --listen "http=$3" "${@:4}" \
    --root "$files" --log-level warn --max-upload $((4 << 30)) --max-conns 16384 \
    >"$tmp/ours-$2-$3.out" 2>"$tmp/ours-$2-$3.err" &
  started=$!
  pids+=("$started")
}
start_ours "$bin/fileserver" process "$port_proc"; pid_process=$started
start_ours "$bin/fileserver" thread "$port_thread" --loops "$loops"; pid_thread=$started
servers="proc thread nginx"
if [ -n "$before" ]; then
  start_ours "$before/fileserver" process "$port_bproc"; pid_bproc=$started
  start_ours "$before/fileserver" thread "$port_bthread"; pid_bthread=$started
  servers="bproc bthread $servers"
fi

first=${sizes%% *}
for p in $port_proc $port_thread $port_nginx ${before:+$port_bproc $port_bthread}; do
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$p/$first.bin" && break
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

# CPU time (user + system, clock ticks) of a server: its processes summed.
cpu_ticks() {
  local t=0 p
  for p in $1 $(pgrep -P "$1"); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)

# wrk's p99 in milliseconds (wrk prints us, ms or s), and the server's CPU
# microseconds per request (its processes' user + system time over the run
# divided by the requests: what a request costs, whatever else runs).
wrk_run() {  # url server-pid [wrk options...] -> "req/s p99ms cpu-us-per-request"
  local out t0 t1
  t0=$(cpu_ticks "$2")
  out=$(wrk -t2 -c"$clients" -d"${secs}s" --latency "${@:3}" "$1")
  t1=$(cpu_ticks "$2")
  awk -v ticks=$((t1 - t0)) -v hz="$hz" '/ requests in / {n = $1}
       /^Requests\/sec:/ {rps = $2}
       $1 == "99%" { v = $2; m = 1
                     if (v ~ /us$/) m = 0.001; else if (v ~ /ms$/) m = 1; else if (v ~ /s$/) m = 1000
                     sub(/[a-z]+$/, "", v); p99 = v * m }
       END { printf "%.0f %.2f %.1f\n", rps, p99, n ? ticks / hz * 1e6 / n : 0 }' <<<"$out"
}

# "median min max" of numbers on stdin.
stats() { sort -g | awk '{v[NR] = $1} END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                                           printf "%s %s %s\n", m, v[1], v[NR] }'; }

declare -A port_of=([proc]=$port_proc [thread]=$port_thread [nginx]=$port_nginx
                    [bproc]=$port_bproc [bthread]=$port_bthread)
declare -A pid_of=([proc]=$pid_process [thread]=$pid_thread [nginx]=$nginx_pid
                   [bproc]=${pid_bproc:-0} [bthread]=${pid_bthread:-0})
# Closed-loop wrk saturates the servers and itself on 2 cores, so its p99
# there is mostly how the scheduler shares the cores between 4 busy
# threads (and the faster server leaves wrk the bottleneck). The paced runs
# compare latency at the same offered load: THINK_MS per connection
# between a reply and the next request (50 connections, 1 ms: about 25k
# req/s, below every server's saturation).
echo "function delay() return $think_ms end" >"$tmp/think.lua"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
for s in $sizes; do
  for r in $(seq "$rounds"); do
    # Rotate the order each round: proc nginx thread nginx, thread nginx proc nginx...
    if [ $((r % 2)) = 1 ]; then order="proc nginx thread nginx2"; else order="thread nginx proc nginx2"; fi
    [ -n "$before" ] && order="$order bproc nginx3 bthread"
    for who in $order; do
      key=${who%[23]}
      read -r rps p99 cpu < <(wrk_run "http://127.0.0.1:${port_of[$key]}/$s.bin" "${pid_of[$key]}")
      echo "bench-http: $s B round $r $key: $rps req/s, p99 $p99 ms, $cpu us CPU/request" >&2
      echo "$rps" >>"$tmp/rps.$s.$key"
      echo "$p99" >>"$tmp/p99.$s.$key"
      echo "$cpu" >>"$tmp/cpu.$s.$key"
      [ "$s" = "$first" ] || continue
      # The same server at an offered load every server sustains: each
      # connection waits THINK_MS after each reply (wrk's delay() hook).
      read -r rps p99 _ < <(wrk_run "http://127.0.0.1:${port_of[$key]}/$s.bin" "${pid_of[$key]}" -s "$tmp/think.lua")
      echo "bench-http: $s B round $r $key paced: $rps req/s, p99 $p99 ms" >&2
      echo "$rps" >>"$tmp/paced-rps.$key"
      echo "$p99" >>"$tmp/paced-p99.$key"
    done
  done
done
load_small=$(cut -d' ' -f1-3 /proc/loadavg)

row() {
  local line c
  line=$(printf '| %-40s' "$1")
  shift
  for c in "$@"; do line+=$(printf ' | %22s' "$c"); done
  echo "$line |"
}
table_small() {
  local s=$1 k med lo hi p
  declare -A M
  for k in $servers; do
    read -r med lo hi < <(stats <"$tmp/rps.$s.$k")
    read -r p _ _ < <(stats <"$tmp/p99.$s.$k")
    M[$k.rps]=$med; M[$k.lo]=$lo; M[$k.hi]=$hi; M[$k.p99]=$p
    read -r med lo hi < <(stats <"$tmp/cpu.$s.$k")
    M[$k.cpu]="$med ($lo-$hi)"
  done
  local -a a=() b=() c=() d=()
  for k in $servers; do
    a+=("$(printf '%.0f (%.0f-%.0f)' "${M[$k.rps]}" "${M[$k.lo]}" "${M[$k.hi]}")")
    b+=("${M[$k.p99]}")
    c+=("$(awk -v a="${M[$k.rps]}" -v b="${M[nginx.rps]}" 'BEGIN { printf "%.2f", a / b }')")
    d+=("${M[$k.cpu]}")
  done
  row "wrk $s B: median req/s (min-max)" "${a[@]}"
  row "wrk $s B: median p99 latency, ms" "${b[@]}"
  row "wrk $s B: / nginx (median req/s)" "${c[@]}"
  row "wrk $s B: server CPU us/request" "${d[@]}"
}

ab_run() {  # url -> "req/s failed"
  local out
  out=$(ab -q -k -n "$ab_n" -c "$clients" "$1" 2>&1)
  awk '/^Requests per second:/ {r = $4} /^Failed requests:/ {f = $3} END { printf "%.0f %s\n", r, f }' <<<"$out"
}

one_download() {  # url -> MB/s
  curl -s -o /dev/null -w '%{speed_download}' "$1" | awk '{printf "%.0f", $1 / 1e6}'
}

many_downloads() {  # url -> aggregate MB/s over $clients parallel curls
  local start end cp=()
  start=$(date +%s.%N)
  for _ in $(seq "$clients"); do
    curl -s -o /dev/null "$1" &
    cp+=($!)
  done
  wait "${cp[@]}"
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

# One run per server and line, the servers alternating line by line.
declare -A R
for who in proc nginx thread; do
  read -r "R[$who.ab.rps]" "R[$who.ab.failed]" < <(ab_run "http://127.0.0.1:${port_of[$who]}/$first.bin")
done
if [ "$big_mb" -gt 0 ]; then
  for who in proc nginx thread; do R[$who.one]=$(one_download "http://127.0.0.1:${port_of[$who]}/big.bin"); done
  for who in proc nginx thread; do R[$who.many]=$(many_downloads "http://127.0.0.1:${port_of[$who]}/big.bin"); done
  for who in proc nginx thread; do
    R[$who.put]=$(upload PUT "http://127.0.0.1:${port_of[$who]}/put-$who.bin")
    cmp -s "$files/put-$who.bin" "$tmp/client/up.bin" || echo "bench-http: $who PUT corrupted the file" >&2
  done
  for who in proc thread; do
    R[$who.post]=$(upload POST "http://127.0.0.1:${port_of[$who]}/upload/post-$who.bin")
    cmp -s "$files/post-$who.bin" "$tmp/client/up.bin" || echo "bench-http: $who POST corrupted the file" >&2
  done
  dd_start=$(date +%s.%N)
  dd if="$tmp/client/up.bin" of="$files/dd.bin" bs=1M conv=fsync status=none
  dd_end=$(date +%s.%N)
  dd_mbs=$(awk -v s="$dd_start" -v e="$dd_end" -v b="$big_bytes" 'BEGIN { printf "%.0f", b / (e - s) / 1e6 }')
fi
R[proc.rss]=$(peak_rss "$pid_process")
R[thread.rss]=$(peak_rss "$pid_thread")
R[nginx.rss]=$(peak_rss "$nginx_pid")

echo
echo "bench-http $start_utc, $(nproc) cores, 2 workers each, $clients clients, wrk ${secs} s x $rounds alternating rounds"
echo "load average (1/5/15 min): $load_before at the start, $load_small after the small-file rounds, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
heads=() dashes=()
for k in $servers; do
  case $k in
    proc) heads+=("ours process") ;; thread) heads+=("ours thread, $loops loops") ;; nginx) heads+=("nginx") ;;
    bproc) heads+=("before process") ;; bthread) heads+=("before thread") ;;
  esac
  dashes+=("---:")
done
row "measure" "${heads[@]}"
row "---" "${dashes[@]}"
for s in $sizes; do table_small "$s"; done
paced_a=() paced_b=()
for k in $servers; do
  read -r med lo hi < <(stats <"$tmp/paced-rps.$k")
  paced_a+=("$(printf '%.0f (%.0f-%.0f)' "$med" "$lo" "$hi")")
  read -r med lo hi < <(stats <"$tmp/paced-p99.$k")
  paced_b+=("$med ($lo-$hi)")
done
row "wrk $first B, ${think_ms} ms think: req/s" "${paced_a[@]}"
row "wrk $first B, ${think_ms} ms think: p99 ms" "${paced_b[@]}"
pad=()
[ -n "$before" ] && pad=("-" "-")
row "ab -k -n $ab_n -c $clients $first B: req/s" "${pad[@]}" "${R[proc.ab.rps]}" "${R[thread.ab.rps]}" "${R[nginx.ab.rps]}"
row "ab -k: failed requests" "${pad[@]}" "${R[proc.ab.failed]}" "${R[thread.ab.failed]}" "${R[nginx.ab.failed]}"
if [ "$big_mb" -gt 0 ]; then
  row "1 curl of ${big_mb} MiB: MB/s" "${pad[@]}" "${R[proc.one]}" "${R[thread.one]}" "${R[nginx.one]}"
  row "$clients curls of ${big_mb} MiB at once: MB/s" "${pad[@]}" "${R[proc.many]}" "${R[thread.many]}" "${R[nginx.many]}"
  row "upload ${big_mb} MiB PUT: MB/s" "${pad[@]}" "${R[proc.put]} (fsync)" "${R[thread.put]} (fsync)" "${R[nginx.put]} (no fsync)"
  row "upload ${big_mb} MiB POST /upload: MB/s" "${pad[@]}" "${R[proc.post]} (fsync)" "${R[thread.post]} (fsync)" "-"
  row "dd conv=fsync of the same file: MB/s" "${pad[@]}" "$dd_mbs" "$dd_mbs" "$dd_mbs"
fi
row "peak RSS, all processes: MiB" "${pad[@]}" "${R[proc.rss]}" "${R[thread.rss]}" "${R[nginx.rss]}"
