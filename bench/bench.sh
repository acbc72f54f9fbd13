#!/usr/bin/env bash
# make bench: hyperfine times whole tools against our server, in thread and
# process mode: `filecli get` and `filecli upload` of 10 and 100 MB
# (MB = 10^6 bytes). Results (Markdown + JSON per server mode, and a summary
# bench.md) go to results/bench-<timestamp>/.
#
# Usage: bench/bench.sh BIN_DIR
# Environment: BENCH_RUNS (3), BENCH_WARMUP (1), BENCH_WORKERS (server pool, 4),
#   BENCH_SIZES_MB ("10 100"), BENCH_MODES ("thread process"), BENCH_OUT (results).
# Every server it starts is stopped and every temp folder removed on exit,
# Ctrl-C included; every wait is bounded.
set -euo pipefail

BIN=${1:?usage: bench/bench.sh BIN_DIR}
RUNS=${BENCH_RUNS:-3}
WARMUP=${BENCH_WARMUP:-1}
WORKERS=${BENCH_WORKERS:-4}
SIZES_MB=${BENCH_SIZES_MB:-"10 100"}
MODES=${BENCH_MODES:-"thread process"}
MB=1000000
START_TIMEOUT_S=10   # server must print "listening file on" within this
STOP_TIMEOUT_S=10    # then SIGKILL
HOST=127.0.0.1

for tool in hyperfine; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (make deps)" >&2; exit 1; }
done
for prog in fileserver filecli stress; do
  [[ -x "$BIN/$prog" ]] || { echo "bench: $BIN/$prog missing (make all)" >&2; exit 1; }
done

out="${BENCH_OUT:-results}/bench-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/fsrv-bench-XXXXXX")
server_pid=""
port=""

stop_server() {
  [[ -n "$server_pid" ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server MODE: sets server_pid and port; returns 1 (reason in
# start_error) if the server does not come up. Not run in a subshell, so the
# server stays our child.
start_server() {
  local mode=$1 root="$work/root-$1" log="$work/server-$1"
  mkdir -p "$root"
  "$BIN/fileserver" --host "$HOST" --port 0 --root "$root" --workers "$WORKERS" --mode "$mode" \
    >"$log.out" 2>"$log.err" &
  server_pid=$!
  for ((i = 0; i < START_TIMEOUT_S * 10; i++)); do
    if line=$(grep -m1 '^listening file on ' "$log.out" 2>/dev/null); then
      port=${line##*:}
      return 0
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid" 2>/dev/null || true
      server_pid=""
      start_error="server --mode $mode exited: $(tail -n1 "$log.err" 2>/dev/null | sed -E 's/^[0-9:.]+ \[[0-9]+\] [a-z]+: //')"
      return 1
    fi
    sleep 0.1
  done
  stop_server
  start_error="server --mode $mode did not print 'listening file on' within ${START_TIMEOUT_S}s"
  return 1
}

notes=()
{
  echo "# filecli benchmark $(date -Iseconds)"
  echo
  echo "hyperfine --runs $RUNS --warmup $WARMUP; server --workers $WORKERS; sizes in MB = 10^6 bytes."
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores,"
  echo "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr);"
  echo "server root on $(findmnt -n -o SOURCE,FSTYPE --target "$work" | tr -s ' ')."
  echo "Commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
} >"$out/bench.md"

for mode in $MODES; do
  start_error=""
  if ! start_server "$mode"; then
    echo "bench: skipping $mode mode: $start_error" >&2
    notes+=("$mode mode skipped: $start_error")
    continue
  fi
  echo "bench: $mode server on port $port" >&2
  cli=("$BIN/filecli" -H "$HOST" -p "$port")
  args=()
  for size in $SIZES_MB; do
    file=$("$BIN/stress" --prepare-only --size $((size * MB)) --op upload)
    # The GET source, uploaded once (not timed).
    "${cli[@]}" upload "$file" --as "bench-${size}MB.bin" >/dev/null
    args+=(-n "get ${size} MB ($mode)" "${cli[*]} get bench-${size}MB.bin -o $work/download.bin")
    args+=(-n "upload ${size} MB ($mode)" "${cli[*]} upload $file --as up-${size}MB.bin")
  done
  hyperfine --runs "$RUNS" --warmup "$WARMUP" --style basic \
    --export-markdown "$out/$mode.md" --export-json "$out/$mode.json" "${args[@]}"
  stop_server
  { echo; echo "## Server mode: $mode"; echo; cat "$out/$mode.md"; } >>"$out/bench.md"
done

if ((${#notes[@]})); then
  { echo; echo "## Notes"; echo; for n in "${notes[@]}"; do echo "- $n"; done; } >>"$out/bench.md"
fi
echo "$out"
