#!/usr/bin/env bash
# `make test`: every build configuration CI checks, one after the other; stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
scripts/deps.sh test
scripts/deps.sh bench || true   # bench peers are optional for tests; benchmarks still build without them

step() { printf '\n==== %s ====\n' "$*"; }

for preset in dev asan; do
  step "$preset: configure + build"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  step "$preset: ctest"
  ctest --preset "$preset" -j "$jobs"
done

step "tsan: thread-based stress tests of the shared-memory algorithms"
cmake --preset tsan >/dev/null
cmake --build --preset tsan -j "$jobs"
ctest --preset tsan -j "$jobs"

if [ -x scripts/fuzz.sh ]; then
  step "fuzz: decoders, fixed number of runs"
  scripts/fuzz.sh short
fi
step "all test configurations passed"
