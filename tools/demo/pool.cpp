// Workload 3 of the wiki: Pool.map(generate_pseudowords, letters), each task returning a list of
// words that starts with its letter. Seeds come from task_seed(), so the result must be identical
// whatever the number of workers; the demo checks that by comparing the fingerprints of every
// 1-worker and N-worker run.
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

std::uint64_t fingerprint(const std::vector<std::vector<std::string>>& result) {
  Fnv f;
  for (const auto& words : result)
    for (const auto& w : words) f.add(w);
  return f.h;
}

}  // namespace

// Every variant builds its result (97 x 10^6 words at the wiki's size: ~3 GB), verifies it and
// keeps only its fingerprint: no run pays for fresh memory while another run's result is still
// held (which made Pool(2) look slower than Pool(1): the first touch of 3 GB more, mostly system
// time). The pool runs must all give the same words (task_seed() makes them independent of the
// number of workers); the sequential run calls the function outside a pool, with other seeds.
std::vector<Row> run_pool(const Options& o) {
  g_words = o.words;
  std::string letters;
  while (static_cast<int>(letters.size()) < o.tasks) letters += kWikiString;
  letters.resize(static_cast<std::size_t>(o.tasks));
  const double total = static_cast<double>(letters.size()) * static_cast<double>(o.words);
  const unsigned jobs = o.jobs ? o.jobs : mpp::cpu_count();

  mpp::PoolStats stats;  // of the last N-worker run, printed at the end (Pool::stats())
  auto pool_run = [&](unsigned processes, std::optional<int> nice) {
    return [&, processes, nice] {
      std::vector<std::vector<std::string>> result;
      Sample s = time_it([&] {
        mpp::Pool pool(mpp::PoolOptions{.processes = processes,
                                        .nice = nice,
                                        .seed = o.seed,
                                        .progress = o.progress && processes == jobs});
        result = pool.map(generate_pseudowords, letters);
        if (processes == jobs) stats = pool.stats();
      });
      verify(result, letters, o.words);
      s.fingerprint = fingerprint(result);
      return s;
    };
  };
  std::vector<Variant> variants;
  variants.push_back({"sequential", [&] {
                        std::vector<std::vector<std::string>> result;
                        Sample s = time_it([&] {
                          for (char c : letters) result.push_back(generate_pseudowords(c));
                        });
                        verify(result, letters, o.words);
                        return s;
                      }});
  variants.push_back({"Pool(1).map", pool_run(1, std::nullopt), true, "same words in every run"});
  const std::string n = "Pool(" + std::to_string(jobs) + ").map";
  variants.push_back({n, pool_run(jobs, std::nullopt), true, "same words as Pool(1)"});
  if (o.with_nice)
    variants.push_back({n + ", nice +" + std::to_string(o.nice), pool_run(jobs, o.nice), true,
                        "same words as Pool(1)"});
  std::vector<Row> rows = measure("pool", variants, total, o);
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
