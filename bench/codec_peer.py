#!/usr/bin/python3
"""Python pickle peer for bench_codec: round-trips the same shapes of data and prints medians.

Usage: codec_peer.py WORDS DOUBLES MAPKEYS MAPVALS REPS
Prints one line per case: "<case> <median thread CPU seconds for dumps+loads> <encoded bytes>".
Run with Debian's /usr/bin/python3 (the peer the acceptance criteria name).
"""
import pickle
import random
import statistics
import sys
import time


WARMUP_SECONDS = 0.2  # as bench_codec: untimed round trips first, for at least this long


def median_round_trip(value, reps):
    times = []
    size = 0
    start = time.thread_time()
    while time.thread_time() - start < WARMUP_SECONDS:
        back = pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        del back
    for _ in range(reps):
        # Thread CPU time, as bench_codec measures: immune to preemption on a shared machine.
        t0 = time.thread_time()
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        back = pickle.loads(data)
        times.append(time.thread_time() - t0)
        size = len(data)
        del back
    return statistics.median(times), size


def main():
    words, doubles, map_keys, map_vals, reps = (int(a) for a in sys.argv[1:6])
    rng = random.Random(1)
    # The wiki's pseudowords: three random letters, each word its own object (as in the wiki).
    w = [rng.choice(['b', 'd', 'v', 'l']) + rng.choice(['a', 'o', 'i']) + rng.choice(['p', 'k', 'l'])
         for _ in range(words)]
    d = [rng.random() for _ in range(doubles)]
    m = {'key%d' % i: [rng.randrange(1 << 30) for _ in range(map_vals)] for i in range(map_keys)}
    for name, value in (('words', w), ('doubles', d), ('map', m)):
        t, size = median_round_trip(value, reps)
        print(name, repr(t), size, flush=True)


if __name__ == '__main__':
    main()
