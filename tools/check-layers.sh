#!/usr/bin/env bash
# Checks the layer rules of docs/ARCHITECTURE.md on the #include lines of
# src/ and include/fsrv/: each module may include only the modules below it,
# and a service only the service abstraction and its own headers (the
# registry excepted). Prints each violation; exits 1 if there is any.
#   tools/check-layers.sh            (run by make test)
set -euo pipefail
cd "$(dirname "$0")/.."

# module -> modules it may include (besides itself). Top to bottom:
# main > app > process > runtime > services > auth (accounts, password
# checks, login throttle), transfer > reactor, storage, stats > core > codec (pure, no dependency). client is a separate stack over
# codec and core.
declare -A allowed=(
  [main]="app process runtime services auth transfer reactor storage codec stats core"
  [app]="process runtime services auth transfer reactor storage codec stats core"
  [process]="runtime services auth transfer reactor storage codec stats core"
  [runtime]="services auth transfer reactor storage codec stats core"
  [services]="auth transfer reactor storage codec stats core"
  [auth]="reactor core codec"
  [transfer]="reactor storage codec core"
  [reactor]="stats core"
  [storage]="core codec"
  [codec]=""
  [stats]="core"
  [core]="codec"
  [client]="codec core"
)

fail=0
while IFS= read -r file; do
  case $file in
    src/*) rel=${file#src/} ;;
    include/fsrv/*) rel=${file#include/fsrv/} ;;
  esac
  module=${rel%%/*}
  if [[ -z ${allowed[$module]+x} ]]; then
    echo "check-layers: $file: module '$module' is not in the layer table (tools/check-layers.sh)"
    fail=1
    continue
  fi
  while IFS= read -r inc; do
    target=${inc#fsrv/}
    dep=${target%%/*}
    [[ $dep == "$module" ]] && continue
    if [[ " ${allowed[$module]} " != *" $dep "* ]]; then
      echo "check-layers: $file includes fsrv/$target: $module may not depend on $dep"
      fail=1
    fi
  done < <(sed -n 's/^#include "\(fsrv\/[^"]*\)".*/\1/p' "$file")
  # main reaches services through the registry only (services/service.hpp).
  if [[ $module == main ]]; then
    while IFS= read -r inc; do
      [[ $inc == fsrv/services/service.hpp ]] || {
        echo "check-layers: $file includes $inc: main may name no service (use the registry)"
        fail=1
      }
    done < <(sed -n 's/^#include "\(fsrv\/services\/[^"]*\)".*/\1/p' "$file")
  fi
  # A service sees the service abstraction, the stream-session kit
  # (services/kit, which names no service) and its own folder only.
  if [[ $module == services && $rel == services/*/* ]]; then
    own=${rel#services/}
    own=${own%%/*}
    while IFS= read -r inc; do
      case $inc in
        fsrv/services/service.hpp | fsrv/services/kit/* | fsrv/services/"$own"/*) ;;
        fsrv/services/*) echo "check-layers: $file includes $inc: service '$own' may not use another service"; fail=1 ;;
      esac
    done < <(sed -n 's/^#include "\(fsrv\/services\/[^"]*\)".*/\1/p' "$file")
  fi
done < <(find src include/fsrv -name '*.cpp' -o -name '*.hpp' | sort)

if [[ $fail -eq 0 ]]; then
  echo "check-layers: every #include follows the layer rules"
fi
exit $fail
