#!/usr/bin/env bash
# `make docs`: the API reference site from the public headers (doxygen, docs/api/Doxyfile), into
# build/docs/html (or $1/html), warnings as errors; then checks that every public name of
# include/mpp/*.hpp is in the generated index (docs/api/check_index.py, with libclang).
# Needs doxygen and python3-clang-14 (scripts/deps.sh docs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/docs}
mkdir -p "$out"
rm -rf "$out/html" "$out/xml" "$out/warnings.log"
version=$(sed -n 's/^project(mpp VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
export MPP_ROOT=$root MPP_DOCS_OUT=$out MPP_VERSION=$version
# Doxygen goes on when the input filter fails (docs/api/filter.py: a header without an example):
# anything on its stderr fails the build, as do its warnings.
if ! (cd "$root" && doxygen docs/api/Doxyfile) 2>"$out/stderr.log" || [ -s "$out/stderr.log" ] ||
   [ -s "$out/warnings.log" ]; then
  cat "$out/stderr.log" "$out/warnings.log" >&2 2>/dev/null || true
  echo "docs: doxygen failed or warned (warnings are errors)" >&2
  exit 1
fi
python3 "$root/docs/api/check_index.py" "$root" "$out/xml"
echo "docs: $out/html/index.html"
