// P producers x N words through one mpp::Queue<std::string>: put() per word vs put_many of 1000.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mpp/process.hpp>
#include <mpp/queue.hpp>
#include <random>
#include <string>
#include <vector>
int main(int argc, char** argv) {
  const long P = std::atol(argv[1]), N = std::atol(argv[2]);
  const bool many = argc > 3;
  auto t0 = std::chrono::steady_clock::now();
  mpp::Queue<std::string> q;
  std::vector<mpp::Process> ps;
  for (long i = 0; i < P; ++i) {
    ps.emplace_back([q, N, i, many]() mutable {
      std::mt19937_64 rng(i + 1);
      auto pick = [&](std::string_view s) {
        return s[std::uniform_int_distribution<std::size_t>(0, s.size() - 1)(rng)];
      };
      std::vector<std::string> batch;
      for (long k = 0; k < N; ++k) {
        std::string w{pick("bdvl"), pick("aoi"), pick("pkl")};
        if (!many) {
          q.put(w);
          continue;
        }
        batch.push_back(std::move(w));
        if (batch.size() == 1000) {
          (void)q.put_many(batch);
          batch.clear();
        }
      }
      if (!batch.empty()) (void)q.put_many(batch);
    });
    ps.back().start();
  }
  std::vector<std::string> results;
  results.reserve(P * N);
  while ((long)results.size() < P * N) {
    if (many)
      (void)q.get_many(results, 4096);
    else
      results.push_back(q.get());
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& p : ps) p.join();
  std::printf("P=%ld %s: %.2f M words/s\n", P, many ? "put_many/get_many" : "put/get",
              P * N / secs / 1e6);
}
