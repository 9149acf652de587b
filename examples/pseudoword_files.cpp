// The wiki's first example, one-to-one: 32 processes, each writing a file of 1,000,000 pseudowords.
//
//   def generate_pseudowordfile(filename):              void generate_pseudowordfile(filename)
//       f = open(filename,'a')                            std::ofstream f(filename, std::ios::app)
//       for i in range(1000000):                          for (i < words)
//           word = random.choice(...) + ...                 word = choice("bdvl") + ...
//           f.write(word+'\n')                              f << word << '\n'
//   for i in range(32):                                 for (i < 32)
//       p = multiprocessing.Process(target=..., args=[...])   procs.emplace_back(target, args...)
//       p.start()                                           procs.back().start()
//
// Seeding: a forked child starts with a copy of its parent's RNG state, so an RNG seeded once in
// the parent would make all 32 files identical. Each process seeds its own generator when it
// starts (from std::random_device), like Python re-seeds `random` after fork.
//
// Usage: pseudoword_files [processes=32] [words=1000000]
// test-args: 4 20000
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mpp/mpp.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

// Like random.choice over a string of letters.
char choice(std::mt19937_64& rng, const char* letters, std::size_t n) {
  return letters[std::uniform_int_distribution<std::size_t>(0, n - 1)(rng)];
}

void generate_pseudowordfile(const std::string& filename, long words) {
  std::ofstream f(filename, std::ios::app);
  std::mt19937_64 rng(std::random_device{}());  // seeded in the child, after fork
  for (long i = 0; i < words; ++i) {
    char word[4] = {choice(rng, "bdvl", 4), choice(rng, "aoi", 3), choice(rng, "pkl", 3), '\n'};
    f.write(word, 4);
  }
}

int main(int argc, char** argv) {
  const int processes = argc > 1 ? std::stoi(argv[1]) : 32;
  const long words = argc > 2 ? std::stol(argv[2]) : 1000000;
  std::filesystem::create_directories("pseudoword_files_out");
  for (int i = 0; i < processes; ++i)  // 'a' mode appends: start from empty files on re-runs
    std::filesystem::remove("pseudoword_files_out/output" + std::to_string(i));

  std::vector<mpp::Process> procs;
  for (int i = 0; i < processes; ++i) {
    procs.emplace_back(generate_pseudowordfile, "pseudoword_files_out/output" + std::to_string(i),
                       words);
    procs.back().start();
  }
  for (auto& p : procs) p.join();  // Python joins non-daemon processes at exit; we do it here

  // Check what the processes wrote: every file complete, and no two files alike.
  std::set<std::string> first_lines;
  for (int i = 0; i < processes; ++i) {
    std::ifstream in("pseudoword_files_out/output" + std::to_string(i));
    std::string line, head;
    long n = 0;
    while (std::getline(in, line)) {
      if (n < 32) head += line;
      ++n;
    }
    if (n != words || procs[static_cast<std::size_t>(i)].exitcode() != 0) {
      std::fprintf(stderr, "output%d: %ld words, expected %ld\n", i, n, words);
      return 1;
    }
    first_lines.insert(head);
  }
  if (words >= 32 && static_cast<int>(first_lines.size()) != processes) {
    std::fprintf(stderr, "some processes wrote identical files: RNG state was shared\n");
    return 1;
  }
  std::printf("%d files of %ld pseudowords written by %d processes\n", processes, words, processes);
  return 0;
}
