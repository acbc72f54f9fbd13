#!/usr/bin/env bash
# `make test-install`: `make install` into a temporary DESTDIR (PREFIX=/usr
# and the default /usr/local) lays out exactly the expected tree; the
# installed unit passes `systemd-analyze verify` (its ExecStart pointed at the
# installed binary, man pages found through MANPATH); the installed binary
# reads the installed configuration; `make uninstall` leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "test-install: FAIL: $*" >&2; exit 1; }

check_prefix() {
  local prefix=$1 etc=$2 dest=$tmp/dest-${1//\//_}
  make --no-print-directory -s install DESTDIR="$dest" PREFIX="$prefix" >/dev/null
  local want got
  want=$(printf '%s\n' \
    "$prefix/bin/chatcli" "$prefix/bin/filecli" "$prefix/bin/fileserver" \
    "$prefix/lib/systemd/system/fsrv.service" "$prefix/lib/sysusers.d/fsrv.conf" \
    "$prefix/share/doc/fsrv/fsrv.toml.example" \
    "$prefix/share/man/man1/chatcli.1" "$prefix/share/man/man1/filecli.1" \
    "$prefix/share/man/man1/fileserver.1" \
    "$etc/fsrv/fsrv.toml" "$etc/logrotate.d/fsrv" | sort)
  got=$(cd "$dest" && find . -type f | sed 's|^\.||' | sort)
  [[ $got == "$want" ]] || fail "PREFIX=$prefix tree differs:"$'\n'"$(diff <(echo "$want") <(echo "$got"))"
  for p in fileserver filecli chatcli; do
    [[ -x $dest$prefix/bin/$p ]] || fail "$p not executable"
    # The hand-written description is in each page, and the page renders.
    grep -q '^\.SH DESCRIPTION' "$dest$prefix/share/man/man1/$p.1" || fail "$p.1: no DESCRIPTION"
    grep -q '^\.SH OPTIONS' "$dest$prefix/share/man/man1/$p.1" || fail "$p.1: no OPTIONS from --help"
    man -l "$dest$prefix/share/man/man1/$p.1" 2>&1 >/dev/null | grep . && fail "$p.1 does not render"
  done
  grep -q "signals" <(man -l "$dest$prefix/share/man/man1/fileserver.1" 2>/dev/null | tr A-Z a-z) ||
    fail "fileserver.1 lacks its SIGNALS section"
  local unit=$dest$prefix/lib/systemd/system/fsrv.service
  grep -qx "ExecStart=$prefix/bin/fileserver --config $etc/fsrv/fsrv.toml" "$unit" ||
    fail "unit ExecStart does not follow PREFIX: $(grep ExecStart= "$unit")"
  # The installed binary accepts the installed configuration.
  "$dest$prefix/bin/fileserver" --config "$dest$etc/fsrv/fsrv.toml" --print-config >/dev/null ||
    fail "installed fileserver refuses the installed fsrv.toml"
  if command -v systemd-analyze >/dev/null; then
    mkdir -p "$tmp/verify"
    sed "s|$prefix/bin/fileserver|$dest$prefix/bin/fileserver|" "$unit" > "$tmp/verify/fsrv.service"
    MANPATH=$dest$prefix/share/man systemd-analyze verify "$tmp/verify/fsrv.service" ||
      fail "systemd-analyze verify"
  fi
  # An edited configuration survives both install and uninstall.
  echo 'max-conns = 5' >> "$dest$etc/fsrv/fsrv.toml"
  make --no-print-directory -s install DESTDIR="$dest" PREFIX="$prefix" >/dev/null
  grep -q '^max-conns = 5$' "$dest$etc/fsrv/fsrv.toml" || fail "install overwrote an edited config"
  make --no-print-directory -s uninstall DESTDIR="$dest" PREFIX="$prefix" >/dev/null
  got=$(cd "$dest" && find . -type f | sed 's|^\.||')
  [[ $got == "$etc/fsrv/fsrv.toml" ]] || fail "uninstall left: $got"
  echo "test-install: PREFIX=$prefix ok"
}

check_prefix /usr /etc
check_prefix /usr/local /usr/local/etc
echo "test-install: ok"
