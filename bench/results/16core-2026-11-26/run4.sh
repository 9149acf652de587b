#!/bin/bash
# put() per word vs put_many(1000 words) through one Queue, P producers, on the 16-core machine.
cd "$(dirname "$0")/.."
B=$PWD/.devbin
for a in "" many; do
  timeout 30 $B/qmany 1 1000000 $a; timeout 30 $B/qmany 2 1000000 $a
  timeout 30 $B/qmany 8 1000000 $a; timeout 60 $B/qmany 32 250000 $a
done 2>&1
