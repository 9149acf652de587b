// The wiki's Pool example, one to one:
//
//   def generate_pseudowords(starting_letter):
//       words = []
//       for i in range(1000000):
//           words.append(starting_letter + random.choice(['a','o','i']) +
//           random.choice(['p','k','l']))
//       return words
//   p = multiprocessing.Pool(32)
//   result = p.map(generate_pseudowords, string)
//
// Each task seeds its generator with mpp::task_seed() (derived from the pool's seed and the
// input index), so the words are the same whatever the number of workers: `--check` verifies
// that against a 3-worker pool. `--spawn`: every worker is a fresh execution of this program
// (mpp::StartMethod::spawn) instead of a fork.
// Usage: pool_pseudowords [words_per_letter] [--check] [--progress] [--spawn]
// test-args keep the ctest run small:
// test-args: 20000 --check
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "mpp/pool.hpp"

namespace {

// Set in main() from the arguments, before mpp::init: forked workers see it because they are
// forks, spawned ones because they get the same arguments and parse them the same way before
// mpp::init diverts them (they see the program as it was when init returned).
std::size_t g_words_per_letter = 1000000;

std::vector<std::string> generate_pseudowords(char starting_letter) {
  std::mt19937_64 random(mpp::task_seed());
  const char vowels[] = {'a', 'o', 'i'};
  const char consonants[] = {'p', 'k', 'l'};
  std::vector<std::string> words;
  words.reserve(g_words_per_letter);
  for (std::size_t i = 0; i < g_words_per_letter; ++i) {
    const std::uint64_t r = random();
    words.push_back(
        std::string{starting_letter, vowels[(r & 0xffffffff) % 3], consonants[(r >> 32) % 3]});
  }
  return words;
}

std::uint64_t fingerprint(const std::vector<std::vector<std::string>>& result) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a over every word
  for (const auto& words : result) {
    for (const auto& w : words) {
      for (char c : w) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    }
  }
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  bool check = false;
  mpp::PoolOptions options;
  options.processes = 32;  // Pool(32), as in the wiki
  options.seed = 2013;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--check") == 0) {
      check = true;
    } else if (std::strcmp(argv[i], "--progress") == 0) {
      options.progress = true;
    } else if (std::strcmp(argv[i], "--spawn") == 0) {
      options.start_method = mpp::StartMethod::spawn;
    } else {
      g_words_per_letter = std::strtoull(argv[i], nullptr, 10);
    }
  }
  mpp::init(argc, argv);  // a spawned worker of this program stops here
  const std::string string =
      "thisisaverylongstringthatcontainsalotofwordsandwewantamillionrandomwordsgeneratedforeachl"
      "etter";

  const auto t0 = std::chrono::steady_clock::now();
  mpp::Pool p(options);  // Start a pool with 32 processes
  auto result = p.map(generate_pseudowords, string);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::printf("%zu letters, %zu words each, first: %s %s %s ... last: %s\n", result.size(),
              result.empty() ? 0 : result[0].size(), result[0][0].c_str(), result[0][1].c_str(),
              result[0][2].c_str(), result.back().back().c_str());
  std::printf("fingerprint %016llx, %.3f s with %u workers\n",
              static_cast<unsigned long long>(fingerprint(result)), secs, p.processes());
  if (result.size() != string.size()) return 1;
  for (std::size_t i = 0; i < result.size(); ++i) {
    if (result[i].size() != g_words_per_letter || result[i][0][0] != string[i]) return 1;
  }
  if (check) {
    options.processes = 3;
    options.progress = false;
    mpp::Pool q(options);
    const auto again = q.map(generate_pseudowords, string);
    const bool same = fingerprint(again) == fingerprint(result);
    std::printf("with 3 workers: %s\n", same ? "identical words" : "DIFFERENT words");
    if (!same) return 1;
  }
  return 0;
}
