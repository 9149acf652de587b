# Peer for bench_queue: Python's multiprocessing.Queue (fork context), same workloads.
#   queue_peer.py small N        one producer process puts N ints, main gets them: items/s
#   queue_peer.py wiki P N       the wiki's snippet with P processes x N pseudowords: words/s
# Prints the median rate of 3 runs as its last line.
import multiprocessing as mp
import random
import statistics
import sys
import time


def produce_ints(q, n):
    for i in range(n):
        q.put(i)


def generate_pseudowords(q, n):
    for i in range(n):
        word = random.choice(['b', 'd', 'v', 'l']) + random.choice(['a', 'o', 'i']) + \
            random.choice(['p', 'k', 'l'])
        q.put(word)


def run(target, procs, n):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    t0 = time.perf_counter()
    ps = [ctx.Process(target=target, args=(q, n)) for _ in range(procs)]
    for p in ps:
        p.start()
    results = []
    total = procs * n
    while len(results) < total:
        results.append(q.get())
    dt = time.perf_counter() - t0
    for p in ps:
        p.join()
    return total / dt


def main():
    mode = sys.argv[1]
    if mode == "small":
        rates = [run(produce_ints, 1, int(sys.argv[2])) for _ in range(3)]
    else:
        rates = [run(generate_pseudowords, int(sys.argv[2]), int(sys.argv[3])) for _ in range(3)]
    print(statistics.median(rates))


if __name__ == "__main__":
    main()
