// Workload 3 of the wiki: Pool.map(generate_pseudowords, letters), each task returning a list of
// words that starts with its letter. Seeds come from task_seed(), so the result must be identical
// whatever the number of workers; the demo checks that by comparing a 1-worker and an N-worker run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mpp/mpp.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "demo.hpp"

namespace demo {
namespace {

const std::string kWikiString =
    "thisisaverylongstringthatcontainsalotofwordsandwewantamillionrandomwordsgeneratedforeachlette"
    "r";

long g_words = 1000000;  // set before the pool forks its workers, so they see it too

std::vector<std::string> generate_pseudowords(char starting_letter) {
  Rng rng(mpp::task_seed());
  std::vector<std::string> words;
  words.reserve(static_cast<std::size_t>(g_words));
  for (long i = 0; i < g_words; ++i)
    words.push_back(std::string{starting_letter, rng.choice("aoi", 3), rng.choice("pkl", 3)});
  return words;
}

void verify(const std::vector<std::vector<std::string>>& result, const std::string& letters,
            long words) {
  if (result.size() != letters.size()) throw std::runtime_error("pool: wrong number of results");
  for (std::size_t i = 0; i < letters.size(); ++i) {
    if (static_cast<long>(result[i].size()) != words)
      throw std::runtime_error("pool: wrong number of words");
    for (const auto& w : result[i])
      if (w.size() != 3 || w[0] != letters[i] ||
          std::string_view("aoi").find(w[1]) == std::string_view::npos ||
          std::string_view("pkl").find(w[2]) == std::string_view::npos)
        throw std::runtime_error("pool: malformed word '" + w + "' for letter " + letters[i]);
  }
}

}  // namespace

std::vector<Row> run_pool(const Options& o) {
  std::vector<Row> rows;
  g_words = o.words;
  std::string letters;
  while (static_cast<int>(letters.size()) < o.tasks) letters += kWikiString;
  letters.resize(static_cast<std::size_t>(o.tasks));
  const double total = static_cast<double>(letters.size()) * static_cast<double>(o.words);
  const unsigned jobs = o.jobs ? o.jobs : mpp::cpu_count();

  std::vector<std::vector<std::string>> sequential;
  rows.push_back(timed("pool", "sequential", [&] {
    for (char c : letters) sequential.push_back(generate_pseudowords(c));
    return total;
  }));
  verify(sequential, letters, o.words);
  sequential.clear();
  sequential.shrink_to_fit();

  std::vector<std::vector<std::string>> one_worker;
  rows.push_back(timed("pool", "Pool(1).map", [&] {
    mpp::Pool pool(mpp::PoolOptions{.processes = 1, .seed = o.seed});
    one_worker = pool.map(generate_pseudowords, letters);
    return total;
  }));
  verify(one_worker, letters, o.words);

  mpp::PoolStats stats;  // of the last run, printed at the end (Pool::stats())
  auto run = [&](const std::string& variant, std::optional<int> nice) {
    std::vector<std::vector<std::string>> result;
    rows.push_back(timed("pool", variant, [&] {
      mpp::Pool pool(mpp::PoolOptions{
          .processes = jobs, .nice = nice, .seed = o.seed, .progress = o.progress});
      result = pool.map(generate_pseudowords, letters);
      stats = pool.stats();
      return total;
    }));
    verify(result, letters, o.words);
    if (result != one_worker)
      throw std::runtime_error("pool: results differ between 1 and " + std::to_string(jobs) +
                               " workers");
    rows.back().note = "same words as Pool(1)";
  };
  run("Pool(" + std::to_string(jobs) + ").map", std::nullopt);
  if (o.with_nice)
    run("Pool(" + std::to_string(jobs) + ").map, nice +" + std::to_string(o.nice), o.nice);
  if (o.python_scale > 0) {
    long w = std::max(1L, o.words / o.python_scale);
    if (auto py = run_python(
            "pool", "wiki_pool.py",
            std::to_string(jobs) + " " + std::to_string(letters.size()) + " " + std::to_string(w),
            static_cast<double>(letters.size()) * static_cast<double>(w), o.python_scale))
      rows.push_back(*py);
  }
  std::printf("pool stats of the last Pool(%u) run (Pool::stats()):\n", jobs);
  std::printf("  %-5s %-8s %8s %10s %9s %12s\n", "slot", "pid", "tasks", "busy s", "restarts",
              "peak RSS MB");
  for (std::size_t i = 0; i < stats.workers.size(); ++i) {
    const auto& w = stats.workers[i];
    std::printf("  %-5zu %-8d %8llu %10.3f %9llu %12.1f\n", i, static_cast<int>(w.pid),
                static_cast<unsigned long long>(w.tasks_done),
                std::chrono::duration<double>(w.busy).count(),
                static_cast<unsigned long long>(w.restarts),
                static_cast<double>(w.peak_rss) / (1024.0 * 1024.0));
  }
  return rows;
}

}  // namespace demo
