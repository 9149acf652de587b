# Peer for bench_process: multiprocessing.Process start + join, fork context. Prints the median
# microseconds per start+join as its last line.
import multiprocessing as mp
import statistics
import sys
import time


def target():
    pass


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    ctx = mp.get_context("fork")
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n // 5):
            p = ctx.Process(target=target)
            p.start()
            p.join()
        samples.append((time.perf_counter() - t0) / (n // 5) * 1e6)
    print(statistics.median(samples))


if __name__ == "__main__":
    main()
