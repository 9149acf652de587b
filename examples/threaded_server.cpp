// A multi-threaded "server" on one mpp::Pool: several handler threads submit requests to the same
// pool at once (apply_async for single requests, map for batches, as_completed to answer in
// completion order), a logging thread writes the request log, and some requests crash the worker
// that runs them. A crash fails exactly that request (mpp::WorkerLost, with the crashed worker's
// stack); the pool forks a replacement and every other request is answered.
//
// The pool is created before any thread starts, so its workers are forks of a single-threaded
// program. Replacements are forked later, while the other threads run: the workers never touch
// the parent's locks (the log's mutex belongs to the parent's threads), and glibc resets malloc's
// and stdio's locks in a fork child. Code that a worker runs must not take a lock another thread
// of the parent may hold at the fork (see docs/fork-safety.md).
//
// Usage: threaded_server [requests_per_thread] [threads]. Exit status 0 when exactly the poison
// requests failed and every other answer is right.
// test-args: 150 4
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mpp/pool.hpp"

namespace {

// The work: a checksum of the request, and every 40th request is poison (it crashes the worker).
bool is_poison(int id) { return id % 40 == 13; }
// (Unsigned: the mixing wraps around, which signed arithmetic must not.)
std::uint64_t checksum(int id) {
  auto h = static_cast<std::uint64_t>(id);
  for (int i = 0; i < 2000; ++i) h = (h * 6364136223846793005ULL + 1442695040888963407ULL) >> 1;
  return h;
}
std::uint64_t handle_request(int id) {
  if (is_poison(id)) std::raise(SIGSEGV);
  return checksum(id);
}

// The request log: handler threads append lines, the logging thread writes them out.
class Log {
 public:
  void line(std::string s) {
    {
      const std::lock_guard lk(m_);
      lines_.push_back(std::move(s));
    }
    cv_.notify_one();
  }
  void run() {
    std::unique_lock lk(m_);
    for (;;) {
      cv_.wait(lk, [&] { return !lines_.empty() || done_; });
      while (!lines_.empty()) {
        std::string s = std::move(lines_.front());
        lines_.pop_front();
        ++written_;
        if (verbose_) std::printf("%s\n", s.c_str());
      }
      if (done_) return;
    }
  }
  void finish() {
    {
      const std::lock_guard lk(m_);
      done_ = true;
    }
    cv_.notify_one();
  }
  long written() const { return written_; }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::string> lines_;
  bool done_ = false;
  bool verbose_ = std::getenv("THREADED_SERVER_VERBOSE") != nullptr;
  long written_ = 0;
};

struct Tally {
  int answered = 0;
  int wrong = 0;
  int crashed = 0;  // requests that failed with WorkerLost
  int crashed_unexpectedly = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const int per_thread = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int nthreads = argc > 2 ? std::atoi(argv[2]) : 4;

  mpp::Pool pool(3);  // before any thread: its first workers are forks of one thread
  Log log;
  std::thread logger([&] { log.run(); });

  std::vector<Tally> tally(static_cast<std::size_t>(nthreads));
  std::vector<std::thread> handlers;
  for (int t = 0; t < nthreads; ++t) {
    handlers.emplace_back([&, t] {
      Tally& my = tally[static_cast<std::size_t>(t)];
      auto record = [&](int id, auto&& get) {
        try {
          const std::uint64_t v = get();
          ++my.answered;
          if (v != checksum(id)) ++my.wrong;
          log.line("request " + std::to_string(id) + " -> " + std::to_string(v));
        } catch (const mpp::WorkerLost& e) {
          ++my.crashed;
          if (!is_poison(id)) ++my.crashed_unexpectedly;
          log.line("request " + std::to_string(id) + " crashed its worker (pid " +
                   std::to_string(e.pid()) + ")");
        }
      };
      const int first = t * per_thread;
      // A third one at a time, a third as a batch answered in completion order, a third by map.
      const int third = per_thread / 3;
      for (int id = first; id < first + third; ++id) {
        auto r = pool.apply_async(handle_request, id);
        record(id, [&] { return r.get(); });
      }
      std::vector<mpp::AsyncResult<std::uint64_t>> batch;
      for (int id = first + third; id < first + 2 * third; ++id) {
        batch.push_back(pool.apply_async(handle_request, id));
      }
      for (auto& r : mpp::as_completed(batch, std::chrono::minutes(2))) {
        const int id = first + third + static_cast<int>(&r - batch.data());
        record(id, [&] { return r.get(); });
      }
      // map fails as a whole with the first failed input: split around the poison ones.
      std::vector<int> rest;
      for (int id = first + 2 * third; id < first + per_thread; ++id) {
        if (is_poison(id)) {
          record(id, [&] { return pool.apply(handle_request, id); });
        } else {
          rest.push_back(id);
        }
      }
      const auto values = pool.map(handle_request, rest);
      for (std::size_t i = 0; i < rest.size(); ++i) record(rest[i], [&] { return values[i]; });
    });
  }
  for (auto& h : handlers) h.join();
  log.finish();
  logger.join();

  Tally all;
  for (const Tally& x : tally) {
    all.answered += x.answered;
    all.wrong += x.wrong;
    all.crashed += x.crashed;
    all.crashed_unexpectedly += x.crashed_unexpectedly;
  }
  int poison = 0;
  for (int id = 0; id < nthreads * per_thread; ++id) poison += is_poison(id) ? 1 : 0;
  const mpp::PoolStats st = pool.stats();
  std::printf(
      "%d threads, %d requests: %d answered (%d wrong), %d crashed their worker (%d poison "
      "requests), %llu replacement workers, %ld log lines\n",
      nthreads, nthreads * per_thread, all.answered, all.wrong, all.crashed, poison,
      static_cast<unsigned long long>(st.restarts), log.written());
  pool.close();
  pool.join();
  const bool ok = all.wrong == 0 && all.crashed == poison && all.crashed_unexpectedly == 0 &&
                  all.answered + all.crashed == nthreads * per_thread;
  if (!ok) std::printf("FAILED: a request other than the poison ones was lost or wrong\n");
  return ok ? 0 : 1;
}
