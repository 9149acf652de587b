#!/bin/bash
cd "$(dirname "$0")/.."
B=$PWD/.devbin
export LD_LIBRARY_PATH=$B
mkdir -p /work/main; [ -e /work/main/bench ] || ln -s "$PWD/bench" /work/main/bench
[ -x /usr/bin/python3 ] || ln -s "$(command -v python3)" /usr/bin/python3
echo "== wiki Queue snippet, mpp, P producers x 10^6 words (M words/s)"
for p in 1 2 4 8 16 32; do for i in 1 2; do timeout 60 $B/queue_pseudowords --processes $p --words 1000000 | grep -o "in .* s (.* M words/s)" | tr '\n' ' '; done; echo " <- P=$p"; done
echo "== same, pinned: taskset -c 0,1 (2 cores, like the reference VM)"
for p in 2 32; do timeout 60 taskset -c 0,1 $B/queue_pseudowords --processes $p --words 1000000 | grep -o "in .* s (.* M words/s)"; echo " <- P=$p"; done
echo "== bench_queue"
timeout 200 $B/bench_queue
