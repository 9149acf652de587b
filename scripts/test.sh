#!/usr/bin/env bash
# `make test`: the layering check, then every build configuration CI checks, one after the other;
# stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}

printf '\n==== layering rule (scripts/check-layers) ====\n'
scripts/check-layers

scripts/deps.sh test
scripts/deps.sh bench || true   # bench peers are optional for tests; benchmarks still build without them

step() { printf '\n==== %s ====\n' "$*"; }
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
# ctest's own summary lines are kept to print one total at the end.
run_ctest() { ctest --preset "$1" -j "$jobs" 2>&1 | tee -a "$summary"; return "${PIPESTATUS[0]}"; }

for preset in dev asan; do
  step "$preset: configure + build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  step "$preset: ctest"
  run_ctest "$preset"
done

step "tsan: thread-based stress tests of the shared-memory algorithms"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs"
run_ctest tsan

step "docs: API reference (doxygen, warnings are errors; every public name in the index)"
scripts/docs.sh build/docs

if [ -x scripts/fuzz.sh ]; then
  step "fuzz: decoders, fixed number of runs"
  scripts/fuzz.sh short
fi
step "all test configurations passed"
total=$(awk '/tests failed out of/ { n += $NF } END { print n + 0 }' "$summary")
echo "total: ${total} passed, 0 failed"
