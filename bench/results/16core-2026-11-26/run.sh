#!/bin/bash
# Multi-core scaling of the wiki workloads on the 16-core device machine (one prepared run).
cd "$(dirname "$0")/.."
B=$PWD/.devbin
export LD_LIBRARY_PATH=$B
echo "== machine"; nproc; uname -r; head -1 /etc/os-release; ldd --version | head -1
mkdir -p /work/main; [ -e /work/main/bench ] || ln -s "$PWD/bench" /work/main/bench
[ -x /usr/bin/python3 ] || ln -s "$(command -v python3)" /usr/bin/python3
/usr/bin/python3 --version
echo "== wiki Queue snippet, mpp, 32 processes x 10^6 words (the wiki's size)"
for i in 1 2 3; do timeout 60 $B/queue_pseudowords --processes 32 --words 1000000 || echo "rc=$?"; done
echo "== wiki Queue snippet, mpp, 2 processes x 10^6 words (the bench's size)"
for i in 1 2 3; do timeout 60 $B/queue_pseudowords --processes 2 --words 1000000 || echo "rc=$?"; done
echo "== wiki Queue snippet, Python multiprocessing.Queue, words/s (median of 3)"
echo -n "32 x 50000: "; timeout 150 /usr/bin/python3 bench/queue_peer.py wiki 32 50000 || echo "rc=$?"
echo -n "2 x 50000: "; timeout 60 /usr/bin/python3 bench/queue_peer.py wiki 2 50000 || echo "rc=$?"
echo "== wiki Pool example, mpp (16 letters x 10^6 words, Pool(32))"
for i in 1 2 3; do timeout 60 $B/pool_pseudowords || echo "rc=$?"; done
echo "== bench_pool --only 1 (Python Pool(32), fork+pipe, sequential) and --only 4 (scaling)"
timeout 240 $B/bench_pool --only 1 || echo "rc=$?"
timeout 120 $B/bench_pool --only 4 --no-python || echo "rc=$?"
