#!/bin/bash
# Peak of /proc/meminfo's Shmem (kB) while one program runs, sampled every 0.1 s.
# Usage: peak_shmem.sh PROGRAM ARGS...
"$@" &
pid=$!
peak=0
while kill -0 $pid 2>/dev/null; do
  s=$(awk '/^Shmem:/{print $2}' /proc/meminfo)
  [ "$s" -gt "$peak" ] && peak=$s
  sleep 0.1
done
wait $pid
echo "peak Shmem kB: $peak (before: $(awk '/^Shmem:/{print $2}' /proc/meminfo) now)"
