#!/bin/bash
# Queue diagnostics on the 16-core machine: is membarrier available, and where do waits go.
cd "$(dirname "$0")/.."
B=$PWD/.devbin
grep -i membarrier /proc/kallsyms 2>/dev/null | head -2; zcat /proc/config.gz 2>/dev/null | grep MEMBARRIER
for v in base nomb spin; do
  echo "== $v"; $B/diag-$v mb
  for i in 1 2; do timeout 30 $B/diag-$v ints 1 5000000; done
  for i in 1 2; do timeout 30 $B/diag-$v words 1 1000000; done
  for i in 1 2; do timeout 30 $B/diag-$v words 2 1000000; done
  timeout 60 $B/diag-$v words 8 1000000
done 2>&1
echo "== base pinned to cpus 0,1"; timeout 30 taskset -c 0,1 $B/diag-base ints 1 5000000 2>&1
echo "== base pinned to cpus 0,8"; timeout 30 taskset -c 0,8 $B/diag-base ints 1 5000000 2>&1
