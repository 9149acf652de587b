# The wiki's Queue example, verbatim apart from the sizes. Usage: wiki_queue.py PROCESSES WORDS
import multiprocessing
import random
import sys
import time

words = int(sys.argv[2])


def generate_pseudowords(q):
    for i in range(words):
        word = random.choice(['b', 'd', 'v', 'l']) + random.choice(['a', 'o', 'i']) + random.choice(['p', 'k', 'l'])
        q.put(word)


if __name__ == '__main__':
    n = int(sys.argv[1])
    t0 = time.perf_counter()
    q = multiprocessing.Queue()
    for i in range(n):
        p = multiprocessing.Process(target=generate_pseudowords, args=[q])
        p.start()
    results = []
    while len(results) < n * words:
        results.append(q.get())
    print(time.perf_counter() - t0)
