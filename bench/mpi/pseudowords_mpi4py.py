"""The wiki's Pool example on mpi4py.futures, the peer of examples/mpi/pseudowords_mpi.cpp.

Run as: mpirun -n N python3 -m mpi4py.futures pseudowords_mpi4py.py [words_per_letter]
Rank 0 runs this script; MPIPoolExecutor uses the other N-1 ranks as workers.
"""
import random
import sys
import time

from mpi4py.futures import MPIPoolExecutor

# Under `-m mpi4py.futures` the worker ranks see the script's path first in sys.argv.
WORDS = int(sys.argv[-1]) if len(sys.argv) > 1 and sys.argv[-1].isdigit() else 1000000


def generate_pseudowords(starting_letter):
    words = []
    for i in range(WORDS):
        words.append(starting_letter + random.choice(['a', 'o', 'i']) + random.choice(['p', 'k', 'l']))
    return words


string = ('thisisaverylongstringthatcontainsalotofwordsandwewantamillionrandomwordsgeneratedforeachl'
          'etter')

if __name__ == '__main__':
    t0 = time.time()
    with MPIPoolExecutor() as p:
        result = list(p.map(generate_pseudowords, string))
    secs = time.time() - t0
    assert len(result) == len(string) and all(len(w) == WORDS for w in result)
    print(f"{len(result)} letters, {WORDS} words each, {secs:.3f} s with mpi4py.futures")
