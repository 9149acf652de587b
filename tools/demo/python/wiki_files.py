# The wiki's first example, verbatim apart from the sizes and the final join (so it can be timed).
# Usage: wiki_files.py OUTDIR PROCESSES WORDS ; prints the elapsed seconds.
import multiprocessing
import os
import random
import sys
import time

words = int(sys.argv[3])


def generate_pseudowordfile(filename):
    f = open(filename, 'a')
    for i in range(words):
        word = random.choice(['b', 'd', 'v', 'l']) + random.choice(['a', 'o', 'i']) + random.choice(['p', 'k', 'l'])
        f.write(word + '\n')
    f.close()


if __name__ == '__main__':
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    ps = []
    for i in range(n):
        p = multiprocessing.Process(target=generate_pseudowordfile, args=[os.path.join(out, 'output' + str(i))])
        p.start()
        ps.append(p)
    for p in ps:
        p.join()
    print(time.perf_counter() - t0)
