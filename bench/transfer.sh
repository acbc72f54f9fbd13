#!/usr/bin/env bash
# bench-transfer: 100 MB (10^8 bytes) UPLOAD and GET through filecli against
# bin/fileserver (thread mode, then process mode if the server has it),
# with the downloaded copy verified, the server's peak RSS, and two
# yardsticks measured in the same run: iperf3 single-stream over 127.0.0.1
# and `dd bs=4M conv=fsync` into the server's root.
#
#   bench/transfer.sh [BIN_DIR]        (make bench-transfer)
#
# Env: BENCH_BYTES (default 100000000), BENCH_CODEC (fast|libb64, default
# fast), BENCH_CLIENTS (concurrent GETs of the aggregate row, default 50),
# BENCH_DIR (scratch parent, default $TMPDIR or /tmp).
# Figures are MB/s of file bytes (10^6 bytes/s); on the wire a GET or
# UPLOAD carries 4/3 as many base64 bytes. The server also listens with the
# file-raw service (seed 000's raw-bytes dialect): one row pair per mode
# puts bin/stress's raw GET and UPLOAD (sendfile, no base64) beside the
# base64 protocol's, measured in the same run.
set -euo pipefail

BIN=${1:-bin}
BYTES=${BENCH_BYTES:-100000000}
CODEC=${BENCH_CODEC:-fast}
STEP_TIMEOUT=120     # seconds for one transfer: generous for 100 MB, still ends a hung run
START_TIMEOUT=10     # seconds for the server to print its `listening file on` line
IPERF_SECONDS=3

cd "$(dirname "$0")/.."
if [[ ! -x $BIN/filecli || ! -x $BIN/fileserver || ! -x $BIN/stress || ! -x $BIN/echo-bench ]]; then
  make -s "$BIN/filecli" "$BIN/fileserver" "$BIN/stress" "$BIN/echo-bench"
fi
FILECLI=$(realpath "$BIN/filecli")
FILESERVER=$(realpath "$BIN/fileserver")
STRESS=$(realpath "$BIN/stress")
CLIENTS=${BENCH_CLIENTS:-50}   # concurrent GETs of the aggregate row (issue: 50 x 100 MB)

WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-transfer.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { echo "$EPOCHREALTIME"; }
# mbps BYTES SECONDS -> MB/s with one decimal
mbps() { python3 -c "import sys; b,s=float(sys.argv[1]),float(sys.argv[2]); print(f'{b/s/1e6:.1f}' if s>0 else 'inf')" "$1" "$2"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b>0 else '-')" "$1" "$2"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# peak_rss PID -> "N.N MB" of VmHWM (the process's resident-set high-water mark)
peak_rss() { awk '/^VmHWM:/ {printf "%.1f MB", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

ROWS=()
row() { ROWS+=("$(printf '%-34s %10s  %s' "$1" "$2" "$3")"); }

echo "bench-transfer: $BYTES bytes, codec $CODEC, scratch $WORK" >&2
SRC=$WORK/file.bin
head -c "$BYTES" /dev/urandom >"$SRC"

# --- yardsticks -------------------------------------------------------------
IPERF_BPS=0
if command -v iperf3 >/dev/null; then
  port=$(free_port)
  iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  PIDS+=($!)
  ok=0
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    sleep 0.3
    if timeout $((IPERF_SECONDS + 10)) iperf3 -c 127.0.0.1 -p "$port" -t "$IPERF_SECONDS" -J >"$WORK/iperf.json" 2>/dev/null; then
      ok=1
      break
    fi
  done
  if [[ $ok == 1 ]]; then
    IPERF_BPS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"]/8)' "$WORK/iperf.json")
    row "iperf3 1 stream 127.0.0.1" "$(mbps "$IPERF_BPS" 1)" "MB/s (TCP payload, ${IPERF_SECONDS} s)"
  else
    row "iperf3 1 stream 127.0.0.1" "-" "failed"
  fi
else
  row "iperf3 1 stream 127.0.0.1" "-" "iperf3 not installed"
fi

DD_ROOT=$WORK/ddroot
mkdir -p "$DD_ROOT"
dd_line=$(LC_ALL=C dd if="$SRC" of="$DD_ROOT/x" bs=4M conv=fsync 2>&1 | tail -1)
DD_SECS=$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) print $(i-1)}' <<<"$dd_line" | tail -1)
DD_MBPS=$(mbps "$BYTES" "$DD_SECS")
row "dd bs=4M conv=fsync" "$DD_MBPS" "MB/s (local disk write)"
rm -f "$DD_ROOT/x"

# --- our server -------------------------------------------------------------
# start_server MODE ROOT -> sets SERVER_PID, SERVER_PORT (file) and RAW_PORT
# (file-raw); returns 1 if the server exited or did not print both
# `listening ... on` lines in time.
start_server() {
  local mode=$1 root=$2 out=$WORK/server-$1.out
  : >"$out"
  "$FILESERVER" --host 127.0.0.1 --listen file=0 --listen file-raw=0 --root "$root" --mode "$mode" --codec "$CODEC" \
    >"$out" 2>"$WORK/server-$1.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local deadline=$((SECONDS + START_TIMEOUT))
  SERVER_PORT=
  while ((SECONDS < deadline)); do
    SERVER_PORT=$(sed -n '1s/^listening file on .*:\([0-9][0-9]*\)$/\1/p' "$out")
    RAW_PORT=$(sed -n 's/^listening file-raw on .*:\([0-9][0-9]*\)$/\1/p' "$out")
    [[ -n $SERVER_PORT && -n $RAW_PORT ]] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

GET_THREAD_MBPS=
for mode in thread process; do
  root=$WORK/root-$mode
  mkdir -p "$root"
  if ! start_server "$mode" "$root"; then
    stop_server
    if [[ $mode == process ]]; then
      echo "process mode: not available" >&2
      row "process mode" "-" "not available ($(head -c 120 "$WORK/server-$mode.err" | tr '\n' ' '))"
      continue
    fi
    echo "bench-transfer: the server did not start in $mode mode:" >&2
    cat "$WORK/server-$mode.err" >&2
    exit 1
  fi
  cli=(timeout "$STEP_TIMEOUT" "$FILECLI" -p "$SERVER_PORT" --codec "$CODEC")

  t0=$(now)
  "${cli[@]}" upload "$SRC" --as bench.bin >/dev/null
  t1=$(now)
  up_secs=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1")
  up_mbps=$(mbps "$BYTES" "$up_secs")

  t0=$(now)
  "${cli[@]}" get bench.bin -o "$WORK/down.bin" >/dev/null
  t1=$(now)
  get_secs=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1")
  get_mbps=$(mbps "$BYTES" "$get_secs")

  # The same GET into /dev/null: the transfer without the local disk write.
  t0=$(now)
  "${cli[@]}" get bench.bin -o /dev/null >/dev/null
  t1=$(now)
  null_secs=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$t0" "$t1")
  null_mbps=$(mbps "$BYTES" "$null_secs")

  if cmp -s "$SRC" "$WORK/down.bin" && cmp -s "$SRC" "$root/bench.bin"; then verdict="content verified"; else verdict="CONTENT MISMATCH"; fi

  # bin/stress decodes and checks each download's xxHash as it arrives (no
  # local disk write): one client, then CLIENTS at once.
  stress=(timeout $((STEP_TIMEOUT * 3)) "$STRESS" --port "$SERVER_PORT" --op download --size "$BYTES"
          --codec "$CODEC" --cache-dir "$WORK/stress-cache")
  one=$("${stress[@]}" --clients 1 | tail -1)
  one_mbps=$(sed -n 's/.*throughput\/client \([0-9.]*\) MB\/s.*/\1/p' <<<"$one")
  # What base64 costs: one client's GET and UPLOAD, raw (file-raw,
  # sendfile both ways) against base64 (the file protocol), same server.
  raw_get=$("${stress[@]}" --clients 1 --protocol raw --raw-port "$RAW_PORT" | tail -1)
  raw_get_mbps=$(sed -n 's/.*throughput\/client \([0-9.]*\) MB\/s.*/\1/p' <<<"$raw_get")
  up_stress=(timeout $((STEP_TIMEOUT * 3)) "$STRESS" --port "$SERVER_PORT" --op upload --size "$BYTES"
             --codec "$CODEC" --cache-dir "$WORK/stress-cache" --clients 1)
  b64_up=$("${up_stress[@]}" | tail -1)
  b64_up_mbps=$(sed -n 's/.*throughput\/client \([0-9.]*\) MB\/s.*/\1/p' <<<"$b64_up")
  raw_up=$("${up_stress[@]}" --protocol raw --raw-port "$RAW_PORT" --verify-uploads | tail -1)
  raw_up_mbps=$(sed -n 's/.*throughput\/client \([0-9.]*\) MB\/s.*/\1/p' <<<"$raw_up")
  raw_up_fail=$(sed -n 's/.*client ok \([0-9]*\) failed \([0-9]*\).*/\2/p' <<<"$raw_up")
  many=$("${stress[@]}" --clients "$CLIENTS" | tail -1)
  many_mbps=$(sed -n 's/.*aggregate \([0-9.]*\) MB\/s.*/\1/p' <<<"$many")
  many_fail=$(sed -n 's/.*client ok \([0-9]*\) failed \([0-9]*\).*/\1 ok, \2 failed/p' <<<"$many")

  rss="main $(peak_rss "$SERVER_PID")"
  total_kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)
  for child in $(pgrep -P "$SERVER_PID" 2>/dev/null || true); do
    rss+=", worker $(peak_rss "$child")"
    total_kb=$((total_kb + $(awk '/^VmHWM:/ {print $2}' "/proc/$child/status" 2>/dev/null || echo 0)))
  done
  rss+="; all processes $(awk -v k="$total_kb" 'BEGIN {printf "%.1f MB", k/1024}')"
  stop_server
  rm -f "$WORK/down.bin" "$root/bench.bin"

  get_vs="-"
  [[ $IPERF_BPS != 0 ]] && get_vs="$(ratio "$(python3 -c "print($BYTES/$get_secs)")" "$IPERF_BPS") of iperf3"
  up_vs="$(ratio "$up_mbps" "$DD_MBPS") of dd"
  row "UPLOAD $mode (filecli)" "$up_mbps" "MB/s, $up_vs"
  row "GET $mode (filecli)" "$get_mbps" "MB/s, $get_vs; $verdict"
  null_vs="-"
  [[ $IPERF_BPS != 0 ]] && null_vs="$(ratio "$(python3 -c "print($BYTES/$null_secs)")" "$IPERF_BPS") of iperf3"
  row "GET $mode -o /dev/null" "$null_mbps" "MB/s, $null_vs (no local disk write)"
  one_vs="-"; many_vs="-"
  if [[ $IPERF_BPS != 0 ]]; then
    [[ -n $one_mbps ]] && one_vs="$(ratio "$one_mbps" "$(mbps "$IPERF_BPS" 1)") of iperf3"
    [[ -n $many_mbps ]] && many_vs="$(ratio "$many_mbps" "$(mbps "$IPERF_BPS" 1)") of iperf3"
  fi
  row "GET $mode 1 client (stress, hashed)" "${one_mbps:--}" "MB/s, $one_vs; content checked by xxHash"
  raw_get_vs="-"; raw_up_vs="-"
  [[ -n $raw_get_mbps && -n $one_mbps ]] && raw_get_vs="$(ratio "$raw_get_mbps" "$one_mbps")x base64's $one_mbps"
  [[ -n $raw_up_mbps && -n $b64_up_mbps ]] && raw_up_vs="$(ratio "$raw_up_mbps" "$b64_up_mbps")x base64's $b64_up_mbps"
  row "GET $mode raw 1 client (file-raw)" "${raw_get_mbps:--}" "MB/s, $raw_get_vs (stress, xxHash checked)"
  row "UPLOAD $mode raw 1 client (file-raw)" "${raw_up_mbps:--}" "MB/s, $raw_up_vs (stress; ${raw_up_fail:-?} failed verification)"
  row "GET $mode ${CLIENTS} clients aggregate" "${many_mbps:--}" "MB/s, $many_vs; ${many_fail:-no result}"
  row "server peak RSS ($mode)" "" "$rss"
  [[ $verdict == "content verified" ]] || MISMATCH=1
done

# --- echo service: 1 client echoing ECHO_BYTES (default 1 GB), thread mode ---
ECHO_BYTES=${ECHO_BYTES:-1000000000}
mkdir -p "$WORK/root-echo"
"$FILESERVER" --host 127.0.0.1 --listen echo=0 --root "$WORK/root-echo" --log-level warn \
  >"$WORK/echo.out" 2>"$WORK/echo.err" &
ECHO_PID=$!
PIDS+=("$ECHO_PID")
for _ in $(seq 100); do
  ECHO_PORT=$(sed -n '1s/^listening echo on .*:\([0-9][0-9]*\)$/\1/p' "$WORK/echo.out")
  [[ -n $ECHO_PORT ]] && break
  sleep 0.05
done
if [[ -n ${ECHO_PORT:-} ]] &&
  echo_line=$(timeout "$STEP_TIMEOUT" "$(realpath "$BIN/echo-bench")" --port "$ECHO_PORT" --bytes "$ECHO_BYTES"); then
  echo_mbps=$(sed -n 's/.* \([0-9.]*\) MB\/s.*/\1/p' <<<"$echo_line")
  echo_vs="-"
  [[ $IPERF_BPS != 0 ]] && echo_vs="$(ratio "$echo_mbps" "$(mbps "$IPERF_BPS" 1)") of iperf3"
  row "echo 1 client $((ECHO_BYTES / 1000000)) MB (thread)" "$echo_mbps" "MB/s each way, $echo_vs; content hashed"
else
  row "echo 1 client (thread)" "-" "failed: ${echo_line:-no listening line}"
  MISMATCH=1
fi
kill "$ECHO_PID" 2>/dev/null || true
wait "$ECHO_PID" 2>/dev/null || true

echo
printf '%-34s %10s  %s\n' "measure" "value" "note"
printf '%-34s %10s  %s\n' "----------------------------------" "----------" "----"
printf '%s\n' "${ROWS[@]}"
[[ -z ${MISMATCH:-} ]]
