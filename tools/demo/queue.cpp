// Workload 2 of the wiki: N processes put pseudowords in one mpp::Queue, the main process gets
// them all. Also the batched form (put_many/get_many) that mpp adds for throughput.
#include <algorithm>
#include <array>
#include <mpp/mpp.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "demo.hpp"

namespace demo {
namespace {

std::uint64_t fresh_seed(const Options& o, int i) {
  return o.seed ? o.seed * 7919u + static_cast<std::uint64_t>(i)
                : (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
}

std::string word(Rng& rng) {
  return std::string{rng.choice("bdvl", 4), rng.choice("aoi", 3), rng.choice("pkl", 3)};
}

// The wiki's generate_pseudowords(q): one put per word.
void generate_pseudowords(mpp::Queue<std::string> q, long words, std::uint64_t seed) {
  Rng rng(seed);
  for (long i = 0; i < words; ++i) q.put(word(rng));
}

// Same words, handed over 1024 at a time.
void generate_pseudowords_batched(mpp::Queue<std::string> q, long words, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::string> batch;
  batch.reserve(1024);
  for (long i = 0; i < words; ++i) {
    batch.push_back(word(rng));
    if (batch.size() == 1024 || i + 1 == words) {
      q.put_many(batch);
      batch.clear();
    }
  }
}

void verify(const std::vector<std::string>& results, long expected) {
  if (static_cast<long>(results.size()) != expected)
    throw std::runtime_error("queue: got " + std::to_string(results.size()) + " words, expected " +
                             std::to_string(expected));
  std::array<long, 256> first{};
  for (const auto& w : results) {
    if (w.size() != 3 || std::string_view("bdvl").find(w[0]) == std::string_view::npos ||
        std::string_view("aoi").find(w[1]) == std::string_view::npos ||
        std::string_view("pkl").find(w[2]) == std::string_view::npos)
      throw std::runtime_error("queue: malformed word '" + w + "'");
    ++first[static_cast<unsigned char>(w[0])];
  }
  // Each of the 4 first letters should be drawn about a quarter of the time.
  for (char c : std::string("bdvl")) {
    double share =
        static_cast<double>(first[static_cast<unsigned char>(c)]) / static_cast<double>(expected);
    if (expected >= 10000 && (share < 0.2 || share > 0.3))
      throw std::runtime_error("queue: skewed letters");
  }
}

}  // namespace

// Every run collects into a vector of its own, reserved before the timing and freed after the
// check: no run reuses memory an earlier run touched (the sequential baseline used to pay the
// first touch of the shared buffer for every later row). With --seed the producers' streams are
// the same in every run, so every variant must collect the same multiset of words (an
// order-independent fingerprint: the processes interleave differently each time).
std::vector<Row> run_queue(const Options& o) {
  const int n = o.tasks;
  const long total = static_cast<long>(n) * o.words;
  auto finish = [&](std::vector<std::string>& results, Sample s) {
    verify(results, total);
    if (o.seed) {
      for (const auto& w : results) {
        Fnv f;
        f.add(w);
        s.fingerprint += f.h;  // a sum: the same for any order
      }
    }
    return s;
  };
  auto fresh = [&] {
    std::vector<std::string> results;
    results.reserve(static_cast<std::size_t>(total));
    return results;
  };
  std::vector<Variant> variants;
  variants.push_back({"sequential (no queue)",
                      [&] {
                        auto results = fresh();
                        return finish(results, time_it([&] {
                                        for (int i = 0; i < n; ++i) {
                                          Rng rng(fresh_seed(o, i));
                                          for (long k = 0; k < o.words; ++k)
                                            results.push_back(word(rng));
                                        }
                                      }));
                      },
                      o.seed != 0});
  auto parallel = [&](bool batched) {
    return [&, batched] {
      auto results = fresh();
      return finish(results, time_it([&] {
                      mpp::Queue<std::string> q;
                      std::vector<mpp::Process> procs;
                      for (int i = 0; i < n; ++i) {
                        if (batched) {
                          procs.emplace_back(generate_pseudowords_batched, q, o.words,
                                             fresh_seed(o, i));
                        } else {
                          procs.emplace_back(generate_pseudowords, q, o.words, fresh_seed(o, i));
                        }
                        procs.back().start();
                      }
                      if (batched) {
                        while (static_cast<long>(results.size()) < total) q.get_many(results, 4096);
                      } else {
                        while (static_cast<long>(results.size()) < total)
                          results.push_back(q.get());  // as the wiki
                      }
                      for (auto& p : procs) {
                        p.join();
                        if (p.exitcode() != 0) throw std::runtime_error("queue: a producer failed");
                      }
                    }));
    };
  };
  const std::string note = o.seed ? "same words as sequential" : "";
  variants.push_back(
      {std::to_string(n) + " processes, put/get", parallel(false), o.seed != 0, note});
  variants.push_back(
      {std::to_string(n) + " processes, put_many/get_many", parallel(true), o.seed != 0, note});
  std::vector<Row> rows = measure("queue", variants, static_cast<double>(total), o);
  if (o.python_scale > 0) {
    long w = std::max(1L, o.words / o.python_scale);
    if (auto py = run_python("queue", "wiki_queue.py", std::to_string(n) + " " + std::to_string(w),
                             static_cast<double>(n) * static_cast<double>(w), o.python_scale))
      rows.push_back(*py);
  }
  return rows;
}

}  // namespace demo
