// The wiki's "Collecting the output" example, one to one: 32 processes each put 1,000,000
// pseudowords into one Queue; the main process gets 32,000,000 words and stops.
//
// clang-format off
//   def generate_pseudowords(q):
//       for i in range(1000000):
//           word = random.choice(['b','d','v','l']) + random.choice(['a','o','i']) + random.choice(['p','k','l'])
//           q.put(word)
//   q = multiprocessing.Queue()
//   for i in range(32):
//       p = multiprocessing.Process(target=generate_pseudowords, args=[q])
//       p.start()
//   results = []
//   while len(results) < 32000000:
//       results.append(q.get())
// clang-format on
//
// Usage: queue_pseudowords [--processes N] [--words M]   (defaults: the wiki's 32 and 1,000,000)
// test-args: --processes 4 --words 20000
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mpp/process.hpp>
#include <mpp/queue.hpp>
#include <random>
#include <string>
#include <vector>

namespace {

char choice(std::mt19937_64& rng, std::string_view letters) {
  return letters[std::uniform_int_distribution<std::size_t>(0, letters.size() - 1)(rng)];
}

void generate_pseudowords(mpp::Queue<std::string> q, long words, std::uint64_t seed) {
  // Every process seeds its own generator (a fork would otherwise copy the parent's state and
  // all 32 processes would produce the same sequence).
  std::mt19937_64 rng(seed);
  for (long i = 0; i < words; ++i) {
    std::string word{choice(rng, "bdvl"), choice(rng, "aoi"), choice(rng, "pkl")};
    q.put(word);
  }
}

bool is_pseudoword(const std::string& w) {
  return w.size() == 3 && std::string_view("bdvl").find(w[0]) != std::string_view::npos &&
         std::string_view("aoi").find(w[1]) != std::string_view::npos &&
         std::string_view("pkl").find(w[2]) != std::string_view::npos;
}

}  // namespace

int main(int argc, char** argv) {
  long processes = 32;
  long words = 1'000'000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--processes") == 0) processes = std::atol(argv[i + 1]);
    if (std::strcmp(argv[i], "--words") == 0) words = std::atol(argv[i + 1]);
  }
  if (processes <= 0 || words <= 0) {
    std::fprintf(stderr, "usage: %s [--processes N] [--words M]\n", argv[0]);
    return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();

  mpp::Queue<std::string> q;
  std::random_device entropy;
  std::vector<mpp::Process> ps;
  for (long i = 0; i < processes; ++i) {
    const std::uint64_t seed =
        (std::uint64_t{entropy()} << 32) ^ entropy() ^ static_cast<std::uint64_t>(i);
    ps.emplace_back(generate_pseudowords, q, words, seed);
    ps.back().start();
  }
  std::vector<std::string> results;
  const auto total = static_cast<std::size_t>(processes * words);
  results.reserve(total);
  while (results.size() < total) results.push_back(q.get());

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& p : ps) p.join();

  std::size_t bad = 0;
  std::array<std::size_t, 256> first{};
  for (const auto& w : results) {
    bad += !is_pseudoword(w);
    ++first[static_cast<unsigned char>(w[0])];
  }
  std::printf(
      "%zu words from %ld processes in %.3f s (%.2f M words/s); first letters b=%zu d=%zu "
      "v=%zu l=%zu; malformed=%zu\n",
      results.size(), processes, secs, static_cast<double>(results.size()) / secs / 1e6, first['b'],
      first['d'], first['v'], first['l'], bad);
  for (auto& p : ps) {
    if (p.exitcode() != 0) return 1;
  }
  return bad == 0 ? 0 : 1;
}
