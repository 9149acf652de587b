#!/usr/bin/env bash
# Builds the codec's libFuzzer target (`fuzz` preset: clang, ASan+UBSan) and runs it.
#   scripts/fuzz.sh short            a fixed number of runs from the seed corpus (make test)
#   scripts/fuzz.sh long [SECONDS]   a longer exploration, default 600 s
# Findings are written to build/fuzz/artifacts/ and make the script fail. The checked-in seed
# corpus (fuzz/corpus) is only read; inputs the fuzzer finds go to build/fuzz/corpus-new/.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-short}
jobs=${JOBS:-$(nproc)}

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$jobs" --target codec_fuzzer

fuzzer=build/fuzz/fuzz/codec_fuzzer
mkdir -p build/fuzz/artifacts build/fuzz/corpus-new
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -rss_limit_mb / -malloc_limit_mb: a decoder that allocates from an unchecked length is a finding.
common=(-artifact_prefix=build/fuzz/artifacts/ -rss_limit_mb=2048 -malloc_limit_mb=256
        -print_final_stats=1 build/fuzz/corpus-new fuzz/corpus)
case "$mode" in
  short)
    "$fuzzer" -runs=300000 -seed=1 -max_len=4096 "${common[@]}"
    ;;
  long)
    "$fuzzer" -max_total_time="${2:-600}" -max_len=65536 "${common[@]}"
    ;;
  *)
    echo "usage: $0 short|long [seconds]" >&2
    exit 2
    ;;
esac
