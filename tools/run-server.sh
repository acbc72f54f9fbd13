#!/usr/bin/env bash
# `make run-server`: serve ./files on port 6666 in the foreground, creating a
# few small sample files when the folder is empty, and show how to try it.
set -euo pipefail
bin=${1:-bin}
root=${ROOT:-./files}
port=${PORT:-6666}
mkdir -p "$root"
if [ -z "$(ls -A "$root" 2>/dev/null)" ]; then
  printf 'Halo dari server berkas!\n' > "$root/hello.txt"
  printf 'name,size\nalpha,1\nbeta,2\n' > "$root/data.csv"
  head -c 100000 /dev/urandom > "$root/random.bin"
  echo "created sample files in $root"
fi
cat <<MSG
Try, from another terminal:
  $bin/filecli -p $port list
  $bin/filecli -p $port get hello.txt -o /tmp/hello.txt
  $bin/filecli -p $port upload README.md --as readme.md
Stop with Ctrl-C (in-flight transfers get a grace period, then final stats).
MSG
exec "$bin/fileserver" --port "$port" --root "$root" ${SERVER_ARGS:-}
