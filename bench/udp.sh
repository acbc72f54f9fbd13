#!/usr/bin/env bash
# bench-udp: 100 MB (10^8 bytes) TFTP RRQ and WRQ on loopback against our
# bin/fileserver (thread mode) and Debian's tftpd-hpa, started in the same
# run on free ports with temporary roots (never port 69). curl at blksize
# 512, 1468 and 65464 against both; atftp at 65464 with windowsize 16
# against ours only (tftpd-hpa has no RFC 7440 windowsize). Every transfer
# is verified by sha256 and bounded by STEP_TIMEOUT.
#
#   bench/udp.sh [--write-doc] [BIN_DIR]        (make bench-udp)
#
# --write-doc puts the table into docs/PERFORMANCE.md between the
# <!-- bench-udp:begin --> and <!-- bench-udp:end --> markers (a
# "## TFTP (make bench-udp)" section is appended when they are absent).
# Env: BENCH_BYTES (default 100000000), BENCH_RUNS (runs per cell, default
# 10: the servers alternate, the first one changing every run; the table
# gives each one's median and min-max spread and the ratio of the medians),
# BENCH_DIR (scratch parent).
# A last line measures the fsync our WRQ does before its final ACK: the
# time of fsync(2) on a freshly written BENCH_BYTES file in the same
# directory, beside the median WRQ time at 65464 of both servers.
# Figures are MB/s of file bytes (10^6 bytes/s), wall time of the client.
set -euo pipefail

WRITE_DOC=0
if [[ ${1:-} == --write-doc ]]; then
  WRITE_DOC=1
  shift
fi
BIN=${1:-bin}
BYTES=${BENCH_BYTES:-100000000}
RUNS=${BENCH_RUNS:-10}  # runs per cell (median and spread shown; lock-step figures vary ~2x run to run)
STEP_TIMEOUT=300  # seconds for one transfer: 100 MB at 512-byte blocks takes ~10-60 s
START_TIMEOUT=10  # seconds for a server to come up

cd "$(dirname "$0")/.."
[[ -x $BIN/fileserver ]] || make -s "$BIN/fileserver"
FILESERVER=$(realpath "$BIN/fileserver")
for tool in curl atftp in.tftpd; do
  command -v "$tool" >/dev/null || { echo "bench-udp: $tool missing (make deps)" >&2; exit 1; }
done

WORK=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-udp.XXXXXX")
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

mbps() { python3 -c "import sys; b,s=float(sys.argv[1]),float(sys.argv[2]); print(f'{b/s/1e6:.1f}' if s>0 else 'inf')" "$1" "$2"; }
ratio() { python3 -c "import sys
try: print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}x')
except (ValueError, ZeroDivisionError): print('-')" "$1" "$2"; }
free_udp_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$WORK/ours" "$WORK/hpa" "$WORK/client"
SRC=$WORK/client/src.bin
head -c "$BYTES" /dev/urandom >"$SRC"
SUM=$(sha256sum "$SRC" | cut -d' ' -f1)
cp "$SRC" "$WORK/ours/f.bin"
cp "$SRC" "$WORK/hpa/f.bin"
chmod 666 "$WORK/hpa/f.bin"

# Our server, thread mode.
"$FILESERVER" --root "$WORK/ours" --listen tftp=127.0.0.1:0 --mode thread \
  >"$WORK/ours.out" 2>"$WORK/ours.err" &
PIDS+=($!)
OURS_PORT=
for _ in $(seq $((START_TIMEOUT * 10))); do
  OURS_PORT=$(sed -n 's/^listening tftp on 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/ours.out")
  [[ -n $OURS_PORT ]] && break
  sleep 0.1
done
[[ -n $OURS_PORT ]] || { echo "bench-udp: our server did not start" >&2; cat "$WORK/ours.err" >&2; exit 1; }

# tftpd-hpa in the foreground, chrooted, creating files, largest blksize.
HPA_PORT=$(free_udp_port)
in.tftpd --foreground --listen --address "127.0.0.1:$HPA_PORT" --secure --create --user root \
  --blocksize 65464 "$WORK/hpa" 2>"$WORK/hpa.err" &
PIDS+=($!)
sleep 0.3
kill -0 "${PIDS[-1]}" || { echo "bench-udp: in.tftpd did not start" >&2; cat "$WORK/hpa.err" >&2; exit 1; }

echo "bench-udp: $BYTES bytes, ours on $OURS_PORT, tftpd-hpa on $HPA_PORT, scratch $WORK" >&2

# xfer SERVER(ours|hpa) PORT DIR(get|put) CLIENT(curl|atftp) BLKSIZE [WINDOW] -> MB/s or FAIL
xfer() {
  local server=$1 port=$2 dir=$3 client=$4 bs=$5 ws=${6:-} cmd=() got t0 t1 sum
  local name="up-$client-$bs-${ws:-1}.bin"
  rm -f "$WORK/client/out.bin"
  if [[ $client == curl ]]; then
    if [[ $dir == get ]]; then
      cmd=(curl -sS --tftp-blksize "$bs" "tftp://127.0.0.1:$port/f.bin" -o "$WORK/client/out.bin")
    else
      cmd=(curl -sS --tftp-blksize "$bs" -T "$SRC" "tftp://127.0.0.1:$port/$name")
    fi
  else
    if [[ $dir == get ]]; then
      cmd=(atftp -g -r f.bin -l "$WORK/client/out.bin")
    else
      cmd=(atftp -p -r "$name" -l "$SRC")
    fi
    cmd+=(--option "blksize $bs")
    [[ -n $ws ]] && cmd+=(--option "windowsize $ws")
    cmd+=(127.0.0.1 "$port")
  fi
  # Before a write, no dirty page cache from the run before: our WRQ fsyncs
  # before its final ACK, and on ext4 that commit also waits for the
  # writeback of whatever the previous run (tftpd-hpa's unsynced file)
  # left dirty, which would charge one server's writes to the other.
  [[ $dir == put ]] && sync
  t0=$EPOCHREALTIME
  if ! timeout "$STEP_TIMEOUT" "${cmd[@]}" >"$WORK/client.log" 2>&1; then
    echo "bench-udp: FAILED $server $dir $client $bs ${ws:-}: $(tail -c 300 "$WORK/client.log")" >&2
    echo FAIL
    return
  fi
  t1=$EPOCHREALTIME
  if [[ $dir == get ]]; then got=$WORK/client/out.bin; else got=$WORK/$server/$name; fi
  sum=$(sha256sum "$got" | cut -d' ' -f1)
  if [[ $sum != "$SUM" ]]; then
    echo "bench-udp: WRONG CONTENT $server $dir $client $bs ${ws:-}" >&2
    echo WRONG
    return
  fi
  [[ $dir == put ]] && rm -f "$got"
  mbps "$BYTES" "$(python3 -c "print($t1 - $t0)")"
}

# spread RUN... -> "min-max" MB/s, or FAIL/WRONG if any run was.
spread() {
  local v
  for v in "$@"; do [[ $v == FAIL || $v == WRONG ]] && { echo "$v"; return; }; done
  python3 -c "import sys; v = [float(x) for x in sys.argv[1:]]; print(f'{min(v):.1f}-{max(v):.1f}')" "$@"
}

# median RUN... -> the median MB/s, or FAIL/WRONG if any run was. Lock-step
# rows vary by 2x from run to run on this kind of virtual machine (each
# block waits for two wake-ups), so only a median of many runs means much.
median() {
  local v
  for v in "$@"; do [[ $v == FAIL || $v == WRONG ]] && { echo "$v"; return; }; done
  python3 -c "import sys, statistics; print(f'{statistics.median(map(float, sys.argv[1:])):.1f}')" "$@"
}

row() {  # row LABEL OURS_MEDIAN OURS_SPREAD HPA_MEDIAN HPA_SPREAD
  printf '| %-34s | %10s | %13s | %10s | %13s | %6s |' "$1" "$2" "$3" "$4" "$5" "$(ratio "$2" "$4")"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
ROWS=()
WRQ_MED_OURS=
WRQ_MED_HPA=
for dir in get put; do
  for bs in 512 1468 65464; do
    o=() h=()
    for r in $(seq "$RUNS"); do  # alternate the servers, the first one changing every run
      if ((r % 2)); then
        o+=("$(xfer ours "$OURS_PORT" "$dir" curl "$bs")")
        h+=("$(xfer hpa "$HPA_PORT" "$dir" curl "$bs")")
      else
        h+=("$(xfer hpa "$HPA_PORT" "$dir" curl "$bs")")
        o+=("$(xfer ours "$OURS_PORT" "$dir" curl "$bs")")
      fi
    done
    label="$( [[ $dir == get ]] && echo RRQ || echo WRQ ) curl blksize $bs"
    ROWS+=("$(row "$label" "$(median "${o[@]}")" "$(spread "${o[@]}")" "$(median "${h[@]}")" "$(spread "${h[@]}")")")
    echo "${ROWS[-1]}" >&2
    if [[ $dir == put && $bs == 65464 ]]; then
      WRQ_MED_OURS=$(median "${o[@]}")
      WRQ_MED_HPA=$(median "${h[@]}")
    fi
  done
  o=()
  for _ in $(seq "$RUNS"); do o+=("$(xfer ours "$OURS_PORT" "$dir" atftp 65464 16)"); done
  label="$( [[ $dir == get ]] && echo RRQ || echo WRQ ) atftp blksize 65464 window 16"
  ROWS+=("$(row "$label" "$(median "${o[@]}")" "$(spread "${o[@]}")" - -)")
  echo "${ROWS[-1]}" >&2
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# The fsync before our final ACK: fsync(2) of a freshly written file of the
# same size in our root's filesystem, median of 3.
FSYNC_S=$(python3 - "$WORK/ours" "$BYTES" <<'PY'
import os, statistics, sys, time
root, size = sys.argv[1], int(sys.argv[2])
block = os.urandom(1 << 20)
times = []
for i in range(3):
    path = os.path.join(root, f".fsync-probe-{i}")
    with open(path, "wb") as f:
        left = size
        while left > 0:
            left -= f.write(block[:min(left, len(block))])
        f.flush()
        t0 = time.perf_counter()
        os.fsync(f.fileno())
        times.append(time.perf_counter() - t0)
    os.unlink(path)
print(f"{statistics.median(times):.3f}")
PY
)
FSYNC_LINE=$(python3 -c "import sys
b, f, o, h = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
try:
    to, th = b / float(o) / 1e6, b / float(h) / 1e6
    print(f'fsync of a freshly written {b / 1e6:.0f} MB file here: {f:.3f} s (median of 3); WRQ at 65464, median: '
          f'ours {to:.3f} s, tftpd-hpa {th:.3f} s (no fsync); the fsync is {f / to * 100:.0f} % of ours, '
          f'and ours without it would take {to - f:.3f} s ({(to - f) / th:.2f}x the time of tftpd-hpa).')
except (ValueError, ZeroDivisionError):
    print(f'fsync of a freshly written {b / 1e6:.0f} MB file here: {f:.3f} s (median of 3)')" \
  "$BYTES" "$FSYNC_S" "$WRQ_MED_OURS" "$WRQ_MED_HPA")

TABLE=$WORK/table.md
{
  echo "Command: \`make bench-udp\` ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $LOAD_START at the"
  echo "start and $LOAD_END at the end, $BYTES-byte file on loopback, our server in thread mode, $RUNS runs per"
  echo "cell alternating the servers (the first one changing every run), median and min-max of each, every"
  echo "transfer verified by sha256). MB/s = 10^6 file bytes per second of client wall time. tftpd-hpa"
  echo "$(dpkg-query -W -f='${Version}' tftpd-hpa 2>/dev/null || echo '?'), curl $(curl --version | head -1 | cut -d' ' -f2), atftp $(dpkg-query -W -f='${Version}' atftp 2>/dev/null || echo '?')."
  echo
  printf '| %-34s | %10s | %13s | %10s | %13s | %6s |\n' "transfer ($((BYTES / 1000000)) MB)" \
    "fsrv med." "fsrv min-max" "hpa med." "hpa min-max" "med."
  d12=$(printf -- '-%.0s' {1..12})
  d15=$(printf -- '-%.0s' {1..15})
  d8=$(printf -- '-%.0s' {1..8})
  printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..36})" "$d12" "$d15" "$d12" "$d15" "$d8"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "$FSYNC_LINE"
} >"$TABLE"
cat "$TABLE"

if [[ $WRITE_DOC == 1 ]]; then
  python3 - "$TABLE" docs/PERFORMANCE.md <<'EOF'
import sys
table = open(sys.argv[1]).read().rstrip("\n")
path = sys.argv[2]
doc = open(path).read()
begin, end = "<!-- bench-udp:begin -->", "<!-- bench-udp:end -->"
block = begin + "\n" + table + "\n" + end
if begin in doc and end in doc:
    doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
else:
    doc = doc.rstrip("\n") + "\n\n## TFTP (make bench-udp)\n\n" + block + "\n"
open(path, "w").write(doc)
print("bench-udp: table written to " + path, file=sys.stderr)
EOF
fi
if grep -q -e FAIL -e WRONG "$TABLE"; then
  exit 1
fi
