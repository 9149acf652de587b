#!/usr/bin/python3
"""Python peers of bench_pool (run with Debian's /usr/bin/python3).

Usage:
  pool_peer.py wiki LETTERS WORDS PROCESSES   the wiki's Pool example: seconds, Pool start included
  pool_peer.py map N PROCESSES                Pool.map(x+1) over range(N), default chunksize:
                                              seconds on a started pool
  pool_peer.py apply ROUNDS                   ProcessPoolExecutor submit().result() round trip:
                                              seconds per round trip (1 worker, started)
Prints one line: "RESULT <seconds>" (median of REPS=3 runs for map/apply).
"""
import multiprocessing
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

WORDS = 1000000


def generate_pseudowords(starting_letter):
    words = []
    for i in range(WORDS):
        words.append(starting_letter + random.choice(['a', 'o', 'i']) + random.choice(['p', 'k', 'l']))
    return words


def plus_one(x):
    return x + 1


def main():
    global WORDS
    mode = sys.argv[1]
    if mode == 'wiki':
        letters, WORDS, procs = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        string = ('thisisaverylongstringthatcontainsalotofwordsandwewantamillionrandomwords'
                  'generatedforeachletter')[:int(letters)]
        t0 = time.perf_counter()
        with multiprocessing.Pool(procs) as p:
            result = p.map(generate_pseudowords, string)
        dt = time.perf_counter() - t0
        assert len(result) == len(string) and len(result[0]) == WORDS
        print('RESULT %.6f' % dt)
    elif mode == 'map':
        n, procs = int(sys.argv[2]), int(sys.argv[3])
        with multiprocessing.Pool(procs) as p:
            p.map(plus_one, range(1000))  # started and warm
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                r = p.map(plus_one, range(n))
                times.append(time.perf_counter() - t0)
                assert r[-1] == n
        print('RESULT %.6f' % statistics.median(times))
    elif mode == 'apply':
        rounds = int(sys.argv[2])
        with ProcessPoolExecutor(1) as ex:
            ex.submit(plus_one, 1).result()
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                for i in range(rounds):
                    ex.submit(plus_one, i).result()
                times.append((time.perf_counter() - t0) / rounds)
        print('RESULT %.9f' % statistics.median(times))


if __name__ == '__main__':
    main()
