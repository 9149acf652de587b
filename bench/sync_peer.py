# Peer for bench_sync: Python's multiprocessing Lock (uncontended acquire/release) and Pipe
# (ping-pong round trip with a child process, fork context). Prints the median microseconds per
# operation as its last line.
#
# Usage: sync_peer.py lock N | sync_peer.py pipe N | sync_peer.py value N (nanoseconds per
# locked increment of a shared Value, 2 processes)
import multiprocessing as mp
import statistics
import sys
import time


def echo(conn):
    while True:
        v = conn.recv()
        if v < 0:
            return
        conn.send(v + 1)


def bench_lock(n):
    lock = mp.get_context("fork").Lock()
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            lock.acquire()
            lock.release()
        samples.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(samples)


def add(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def bench_value(n):
    # Two processes, n locked increments each (the README's "N processes x increments" example).
    ctx = mp.get_context("fork")
    samples = []
    for _ in range(3):
        v = ctx.Value("l", 0)
        ps = [ctx.Process(target=add, args=(v, n)) for _ in range(2)]
        t0 = time.perf_counter()
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        samples.append((time.perf_counter() - t0) / (2 * n) * 1e9)
        assert v.value == 2 * n
    return statistics.median(samples)


def bench_pipe(n):
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    p = ctx.Process(target=echo, args=(b,))
    p.start()
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        for i in range(n):
            a.send(i)
            a.recv()
        samples.append((time.perf_counter() - t0) / n * 1e6)
    a.send(-1)
    p.join()
    return statistics.median(samples)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "lock"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    if mode == "lock":
        print(bench_lock(n))
    elif mode == "value":
        print(bench_value(n))
    else:
        print(bench_pipe(n))


if __name__ == "__main__":
    main()
