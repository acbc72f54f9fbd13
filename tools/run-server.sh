#!/usr/bin/env bash
# `make run-server`: every registered service on the course's ports, in the
# foreground, serving ./files (a few small sample files are created when the
# folder is empty). Prints a table: service, address, one command to try it.
#   ROOT=DIR HOST=ADDR SERVER_ARGS="--mode process" make run-server
set -euo pipefail
bin=${1:-bin}
root=${ROOT:-./files}
host=${HOST:-0.0.0.0}
mkdir -p "$root"
if [ -z "$(ls -A "$root" 2>/dev/null)" ]; then
  printf 'Halo dari server berkas!\n' > "$root/hello.txt"
  printf 'name,size\nalpha,1\nbeta,2\n' > "$root/data.csv"
  head -c 100000 /dev/urandom > "$root/random.bin"
  echo "created sample files in $root"
fi
shown=$host
[ "$shown" = 0.0.0.0 ] && shown=127.0.0.1
printf '%-12s %-20s %s\n' SERVICE ADDRESS "TRY (from another terminal)"
"$bin/fileserver" --services --porcelain | while IFS=$'\t' read -r name ports try; do
  IFS=, read -ra list <<<"$ports"
  for p in "${list[@]}"; do
    printf '%-12s %-20s %s\n' "$name" "$host:$p" "${try//\{port\}/$p}" | sed "s/127\.0\.0\.1/$shown/"
  done
done
echo "file protocol client: $bin/filecli -p 6666 list | get NAME | upload PATH"
echo "Stop with Ctrl-C (in-flight transfers get a grace period, then final stats)."
exec "$bin/fileserver" --all-services --host "$host" --root "$root" ${SERVER_ARGS:-}
