# The wiki's Pool example, verbatim apart from the sizes. Usage: wiki_pool.py PROCESSES LETTERS WORDS
import multiprocessing
import random
import sys
import time

words = int(sys.argv[3])
string = 'thisisaverylongstringthatcontainsalotofwordsandwewantamillionrandomwordsgeneratedforeachletter'


def generate_pseudowords(starting_letter):
    words_ = []
    for i in range(words):
        words_.append(starting_letter + random.choice(['a', 'o', 'i']) + random.choice(['p', 'k', 'l']))
    return words_


if __name__ == '__main__':
    n, letters = int(sys.argv[1]), int(sys.argv[2])
    s = (string * (letters // len(string) + 1))[:letters]
    t0 = time.perf_counter()
    p = multiprocessing.Pool(n)
    result = p.map(generate_pseudowords, s)
    p.close()
    p.join()
    assert len(result) == letters and all(len(r) == words for r in result)
    print(time.perf_counter() - t0)
