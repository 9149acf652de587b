#!/bin/bash
# bench_codec on the 16-core machine (one core used; a second CPU type for the codec's ratios).
cd "$(dirname "$0")/.."
B=$PWD/.devbin
mkdir -p /work/main; [ -e /work/main/bench ] || ln -s "$PWD/bench" /work/main/bench
[ -x /usr/bin/python3 ] || ln -s "$(command -v python3)" /usr/bin/python3
/usr/bin/python3 --version; grep -m1 "model name" /proc/cpuinfo
for i in 1 2 3; do timeout 100 $B/bench_codec --reps 21; done
