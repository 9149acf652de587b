#!/usr/bin/env bash
# scripts/check-layers can fail: in a copy of src/ and include/ where a src/shm file includes a
# src/pool header, it must exit 1 and name that file and line. (The check on the real tree is the
# ctest `check_layers`; this one shows that a pass there means something.)
#   tests/check_layers_fails.sh SOURCE_DIR
set -euo pipefail
root=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$root/src" "$root/include" "$tmp/"

victim=$(find "$tmp/src/shm" -name '*.cpp' | sort | head -n 1)
header=$(cd "$tmp/src" && find pool -name '*.hpp' | sort | head -n 1)
[ -n "$victim" ] || { echo "no src/shm/*.cpp to edit" >&2; exit 2; }
header=${header:-pool/engine.hpp}
echo "#include \"$header\"" >>"$victim"
line=$(wc -l <"$victim")
expect="src/shm/$(basename "$victim"):$line: src/shm includes \"$header\""

set +e
out=$("$root/scripts/check-layers" "$tmp" 2>&1)
rc=$?
set -e
printf '%s\n' "$out"
if [ "$rc" -ne 1 ]; then
  echo "FAIL: check-layers exited $rc on a tree where src/shm includes a src/pool header" >&2
  exit 1
fi
if ! grep -qF -- "$expect" <<<"$out"; then
  echo "FAIL: check-layers did not report: $expect" >&2
  exit 1
fi
echo "PASS: check-layers reported the injected violation ($expect)"
