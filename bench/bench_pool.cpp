// bench_pool: mpp::Pool against its peers, measured in the same run, printing ratios.
//
//  1. The wiki's Pool example (16 letters x 1,000,000 words returned to the parent, Pool(32),
//     pool start included) vs Python multiprocessing.Pool (/usr/bin/python3), a hand-written C++
//     fork+pipe version (32 processes, the wiki's "cut the string in 32 parts"), sequential C++.
//  2. map(x -> x + 1) over 10^6 ints on a started pool, ns/item, vs Python Pool.map (default
//     chunksize) and a TBB parallel_for map (threads).
//  3. apply_async(f, x).get() round trip vs Python ProcessPoolExecutor and a raw futex ping-pong
//     between two processes.
//  4. CPU-bound ~1 ms tasks: speedup and parallel efficiency with 1..cpu_count() workers.
//  5. cancel() of a running task: time until the replacement worker runs the next task, vs the
//     raw floor (SIGTERM, waitpid, fork, the child runs) and vs what one did without cancel()
//     (terminate the pool, start a new one, apply).
//  6. apply_async throughput with 4 threads submitting to one pool vs one thread (issue 20:
//     >= 0.8x, no collapse under the pool's mutex and driver hand-over).
//
// Usage: bench_pool [--quick] [--no-python] [--words N] [--only 1..6]. Medians of several
// repetitions.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <ranges>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "mpp/pool.hpp"
#include "mpp/sync.hpp"
#include "sys/crash_stack.hpp"
#include "sys/futex.hpp"
#include "sys/proc.hpp"
#include "sys/sched.hpp"

#if MPP_HAVE_TBB
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

template <class F>
double median_of(int reps, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(f());
  return median(t);
}

// Runs the Python peer; returns its RESULT number, or a negative value if it failed.
double run_python(const std::string& args) {
  const std::string cmd = "/usr/bin/python3 " MPP_BENCH_DIR "/pool_peer.py " + args;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char line[256];
  double v = -1;
  while (std::fgets(line, sizeof line, p) != nullptr) {
    if (std::strncmp(line, "RESULT ", 7) == 0) v = std::strtod(line + 7, nullptr);
  }
  ::pclose(p);
  return v;
}

// ---- 1. the wiki example ---------------------------------------------------------------------

std::size_t g_words = 1000000;
const std::string kWiki =
    "thisisaverylongstringthatcontainsalotofwordsandwewantamillionrandomwordsgeneratedforeachl"
    "etter";

std::vector<std::string> words_from(char starting_letter, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  const char vowels[] = {'a', 'o', 'i'};
  const char consonants[] = {'p', 'k', 'l'};
  std::vector<std::string> words;
  words.reserve(g_words);
  for (std::size_t i = 0; i < g_words; ++i) {
    const std::uint64_t r = random();
    words.push_back(
        std::string{starting_letter, vowels[(r & 0xffffffff) % 3], consonants[(r >> 32) % 3]});
  }
  return words;
}

std::vector<std::string> generate_pseudowords(char starting_letter) {
  return words_from(starting_letter, mpp::task_seed());
}

std::uint64_t seed_for(std::int64_t index) { return mpp::detail::mix_seed(2013, index); }

// The hand-written version: fork `procs` processes, give each a contiguous part of the string,
// each writes [u64 total bytes] then per letter [u64 n][n x (u8 len, bytes)] to its own pipe;
// the parent polls the pipes, then decodes.
std::vector<std::vector<std::string>> fork_pipe(const std::string& s, unsigned procs) {
  struct Part {
    pid_t pid = -1;
    int fd = -1;
    std::size_t begin = 0, end = 0;
    std::vector<char> buf;
    std::size_t have = 0;
    std::uint64_t need = 0;
    bool sized = false;
  };
  std::vector<Part> parts;
  const std::size_t per = (s.size() + procs - 1) / procs;
  for (std::size_t b = 0; b < s.size(); b += per) {
    Part p;
    p.begin = b;
    p.end = std::min(s.size(), b + per);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    std::fflush(nullptr);
    p.pid = ::fork();
    if (p.pid == 0) {
      ::close(fds[0]);
      std::vector<char> out(sizeof(std::uint64_t));
      for (std::size_t i = p.begin; i < p.end; ++i) {
        auto words = words_from(s[i], seed_for(static_cast<std::int64_t>(i)));
        const std::uint64_t n = words.size();
        const std::size_t at = out.size();
        out.resize(at + sizeof n + n * 4);
        char* o = out.data() + at;
        std::memcpy(o, &n, sizeof n);
        o += sizeof n;
        for (const auto& w : words) {
          *o++ = static_cast<char>(w.size());
          std::memcpy(o, w.data(), w.size());
          o += w.size();
        }
        out.resize(static_cast<std::size_t>(o - out.data()));
      }
      const std::uint64_t total = out.size() - sizeof(std::uint64_t);
      std::memcpy(out.data(), &total, sizeof total);
      const char* q = out.data();
      std::size_t left = out.size();
      while (left > 0) {
        const ssize_t k = ::write(fds[1], q, left);
        if (k <= 0) ::_exit(1);
        q += k;
        left -= static_cast<std::size_t>(k);
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    p.fd = fds[0];
    parts.push_back(std::move(p));
  }
  std::size_t open = parts.size();
  std::vector<pollfd> pfds;
  while (open > 0) {
    pfds.clear();
    for (auto& p : parts) {
      if (p.fd >= 0) pfds.push_back({p.fd, POLLIN, 0});
    }
    ::poll(pfds.data(), pfds.size(), -1);
    for (auto& p : parts) {
      if (p.fd < 0) continue;
      if (!p.sized) {
        const ssize_t k = ::read(p.fd, &p.need, sizeof p.need);  // 8 bytes arrive together
        if (k == sizeof p.need) {
          p.sized = true;
          p.buf.resize(p.need);
        } else if (k == 0) {
          ::close(p.fd);
          p.fd = -1;
          --open;
        }
        continue;
      }
      const ssize_t k = ::read(p.fd, p.buf.data() + p.have, p.buf.size() - p.have);
      if (k > 0) p.have += static_cast<std::size_t>(k);
      if (k == 0 || p.have == p.buf.size()) {
        ::close(p.fd);
        p.fd = -1;
        --open;
      }
    }
  }
  std::vector<std::vector<std::string>> result(s.size());
  for (auto& p : parts) {
    const char* q = p.buf.data();
    for (std::size_t i = p.begin; i < p.end; ++i) {
      std::uint64_t n = 0;
      std::memcpy(&n, q, sizeof n);
      q += sizeof n;
      auto& words = result[i];
      words.reserve(n);
      for (std::uint64_t j = 0; j < n; ++j) {
        const auto len = static_cast<unsigned char>(*q++);
        words.emplace_back(q, len);
        q += len;
      }
    }
    int st = 0;
    ::waitpid(p.pid, &st, 0);
  }
  return result;
}

void bench_wiki(int reps, bool python) {
  const std::string letters = kWiki.substr(0, 16);
  std::printf("\n== 1. wiki Pool example: %zu letters x %zu words, Pool(32), start included ==\n",
              letters.size(), g_words);
  std::size_t check = 0;
  const double t_mpp = median_of(reps, [&] {
    const auto t0 = Clock::now();
    mpp::PoolOptions o;
    o.processes = 32;
    o.seed = 2013;
    {
      mpp::Pool p(o);
      auto r = p.map(generate_pseudowords, letters);
      check += r.size() + r[0].size();
    }
    return seconds_since(t0);
  });
  // The same on a pool started once and reused (its workers' heaps are warm after the first
  // call, as in a long-running program): what map itself costs.
  double t_warm = 0;
  {
    mpp::PoolOptions o;
    o.processes = 32;
    o.seed = 2013;
    mpp::Pool p(o);
    check += p.map(generate_pseudowords, letters).size();
    t_warm = median_of(reps, [&] {
      const auto t0 = Clock::now();
      auto r = p.map(generate_pseudowords, letters);
      check += r.size() + r[0].size();
      return seconds_since(t0);
    });
  }
  const double t_fp = median_of(reps, [&] {
    const auto t0 = Clock::now();
    auto r = fork_pipe(letters, 32);
    check += r.size() + r[0].size();
    return seconds_since(t0);
  });
  const double t_seq = median_of(reps, [&] {
    const auto t0 = Clock::now();
    std::vector<std::vector<std::string>> r;
    for (std::size_t i = 0; i < letters.size(); ++i) {
      r.push_back(words_from(letters[i], seed_for(static_cast<std::int64_t>(i))));
    }
    check += r.size() + r[0].size();
    return seconds_since(t0);
  });
  const double t_py = python ? run_python("wiki " + std::to_string(letters.size()) + " " +
                                          std::to_string(g_words) + " 32")
                             : -1;
  std::printf("mpp::Pool          %8.3f s\n", t_mpp);
  std::printf("mpp, started pool  %8.3f s   (map only, pool reused)\n", t_warm);
  std::printf("C++ fork+pipe      %8.3f s   mpp/fork+pipe = %.2fx (target <= 1.3)\n", t_fp,
              t_mpp / t_fp);
  std::printf("C++ sequential     %8.3f s   speedup of mpp = %.2fx\n", t_seq, t_seq / t_mpp);
  if (t_py > 0) {
    std::printf(
        "Python Pool(32)    %8.3f s   python/mpp = %.1fx (target >= 100), %.1fx vs the "
        "started pool\n",
        t_py, t_py / t_mpp, t_py / t_warm);
  }
  if (check == 0) std::printf("(impossible)\n");
}

// ---- 2. map(x + 1) ---------------------------------------------------------------------------

void bench_map(int reps, bool python) {
  constexpr int kN = 1'000'000;
  const unsigned w = mpp::sys::cpus_allowed();
  std::printf("\n== 2. map(x -> x + 1) over 10^6 ints, started pool of %u ==\n", w);
  mpp::Pool pool(w);
  std::vector<int> in(kN);
  std::iota(in.begin(), in.end(), 0);
  (void)pool.map([](int x) { return x + 1; }, in);  // warm
  long long check = 0;
  const double t_mpp = median_of(reps * 4, [&] {
    const auto t0 = Clock::now();
    auto out = pool.map([](int x) { return x + 1; }, in);
    const double t = seconds_since(t0);
    check += out.back();
    return t;
  });
  std::printf("mpp::Pool::map     %8.1f ns/item\n", t_mpp * 1e9 / kN);
#if MPP_HAVE_TBB
  const double t_tbb = median_of(reps * 4, [&] {
    const auto t0 = Clock::now();
    std::vector<int> out(kN);
    tbb::parallel_for(tbb::blocked_range<std::size_t>(0, kN), [&](const auto& r) {
      for (std::size_t i = r.begin(); i != r.end(); ++i) out[i] = in[i] + 1;
    });
    const double t = seconds_since(t0);
    check += out.back();
    return t;
  });
  std::printf("TBB parallel_for   %8.1f ns/item   mpp/tbb = %.2fx\n", t_tbb * 1e9 / kN,
              t_mpp / t_tbb);
#endif
  if (python) {
    const double t_py = run_python("map " + std::to_string(kN) + " " + std::to_string(w));
    if (t_py > 0) {
      std::printf("Python Pool.map    %8.1f ns/item   python/mpp = %.1fx\n", t_py * 1e9 / kN,
                  t_py / t_mpp);
    }
  }
  std::printf("target: mpp <= 25 ns/item\n");
  if (check == 0) std::printf("(impossible)\n");
}

// ---- 3. round trip ---------------------------------------------------------------------------

int plus_one(int x) { return x + 1; }

double futex_ping_pong(int rounds) {
  void* mem = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  auto* word = new (mem) std::atomic<std::uint32_t>(0);
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    for (std::uint32_t i = 0;; i += 2) {
      while (word->load() == i) mpp::sys::futex_wait(word, i);
      if (word->load() == 0xffffffff) ::_exit(0);
      word->store(i + 2);
      mpp::sys::futex_wake(word);
    }
  }
  const auto t0 = Clock::now();
  for (std::uint32_t i = 0; i < static_cast<std::uint32_t>(rounds); ++i) {
    word->store(2 * i + 1);
    mpp::sys::futex_wake(word);
    while (word->load() == 2 * i + 1) mpp::sys::futex_wait(word, 2 * i + 1);
  }
  const double t = seconds_since(t0) / rounds;
  word->store(0xffffffff);
  mpp::sys::futex_wake(word);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ::munmap(mem, 4096);
  return t;
}

void bench_round_trip(int reps, bool python) {
  constexpr int kRounds = 20000;
  std::printf("\n== 3. apply_async(f, x).get() round trip ==\n");
  mpp::Pool pool(1);
  (void)pool.apply(plus_one, 1);
  long long check = 0;
  const double t_mpp = median_of(reps, [&] {
    const auto t0 = Clock::now();
    for (int i = 0; i < kRounds; ++i) check += pool.apply_async(plus_one, i).get();
    return seconds_since(t0) / kRounds;
  });
  const double t_fx = median_of(reps, [&] { return futex_ping_pong(kRounds); });
  std::printf("mpp apply_async    %8.2f us\n", t_mpp * 1e6);
  // A capturing lambda makes the call fork its own worker (it must see the caller's state).
  const int offset = 1;
  const double t_cap = median_of(reps, [&] {
    const auto t0 = Clock::now();
    for (int i = 0; i < 20; ++i) check += pool.apply([offset](int x) { return x + offset; }, i);
    return seconds_since(t0) / 20;
  });
  std::printf("(apply with a capturing lambda, one fork per call: %.2f ms)\n", t_cap * 1e3);
  std::printf("futex ping-pong    %8.2f us   mpp/futex = %.2fx (target <= 2)\n", t_fx * 1e6,
              t_mpp / t_fx);
  bench::result("latency", "mpp_Pool_apply_async", 0, t_mpp * 1e6);
  {
    // What the crash-stack handler costs (issue 17: <= 1.05x): the same round trip with workers
    // forked without it, interleaved with ones forked with it, medians of the ratios.
    std::vector<double> ratios;
    for (int r = 0; r < std::max(reps, 3); ++r) {
      double t[2];
      for (int with = 1; with >= 0; --with) {
        mpp::sys::set_crash_stacks_enabled(with == 1);
        mpp::Pool p(1);
        (void)p.apply(plus_one, 1);
        const auto s0 = Clock::now();
        for (int i = 0; i < kRounds; ++i) check += p.apply_async(plus_one, i).get();
        t[with] = seconds_since(s0) / kRounds;
      }
      ratios.push_back(t[1] / t[0]);
    }
    mpp::sys::set_crash_stacks_enabled(true);
    const double ratio = median(ratios);
    std::printf("crash handler installed / not: %.3fx (round trip, median of %zu)\n", ratio,
                ratios.size());
    bench::result("ratio", "apply_round_trip_with_crash_handler", 0, ratio);
  }
  bench::result("latency", "raw_futex_ping-pong_(pool_run)", 0, t_fx * 1e6);
  if (python) {
    const double t_py = run_python("apply 2000");
    if (t_py > 0) {
      std::printf("Python executor    %8.2f us   python/mpp = %.1fx\n", t_py * 1e6, t_py / t_mpp);
      bench::result("latency", "Python_ProcessPoolExecutor", 0, t_py * 1e6);
    }
  }
  if (check == 0) std::printf("(impossible)\n");
}

// ---- 4. CPU-bound tasks ----------------------------------------------------------------------

std::uint64_t g_spin_iters = 1;

std::uint64_t spin_task(int x) {
  std::uint64_t h = static_cast<std::uint64_t>(x) + 1;
  for (std::uint64_t i = 0; i < g_spin_iters; ++i)
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
  return h;
}

void bench_cpu(int reps) {
  // Calibrate ~1 ms per task (before any pool forks, so the workers inherit it).
  g_spin_iters = 100000;
  auto t0 = Clock::now();
  volatile std::uint64_t sink = spin_task(1);
  const double per = seconds_since(t0) / static_cast<double>(g_spin_iters);
  g_spin_iters = static_cast<std::uint64_t>(1e-3 / per);
  constexpr int kTasks = 400;
  std::printf("\n== 4. CPU-bound tasks of ~1 ms (%d tasks) ==\n", kTasks);
  auto sequential = [&] {
    const auto s0 = Clock::now();
    for (int i = 0; i < kTasks; ++i) sink = sink + spin_task(i);
    return seconds_since(s0);
  };
  const unsigned maxw = std::max(2u, mpp::sys::cpus_allowed());
  std::vector<std::unique_ptr<mpp::Pool>> pools;
  for (unsigned w = 1; w <= maxw; ++w) {
    pools.push_back(std::make_unique<mpp::Pool>(w));
    (void)pools.back()->map(spin_task, std::views::iota(0, 8));
  }
  // Each repetition runs sequential and every pool size back to back, and the speedups are
  // medians of per-repetition ratios: other load on the machine then hits both sides alike.
  std::vector<double> seq_times;
  std::vector<std::vector<double>> speedups(maxw), times(maxw);
  for (int r = 0; r < reps * 2; ++r) {
    const double ts = sequential();
    seq_times.push_back(ts);
    for (unsigned w = 1; w <= maxw; ++w) {
      const auto s0 = Clock::now();
      auto out = pools[w - 1]->map(spin_task, std::views::iota(0, kTasks));
      const double t = seconds_since(s0);
      sink = sink + out.back();
      times[w - 1].push_back(t);
      speedups[w - 1].push_back(ts / t);
    }
  }
  const double t_seq = median(seq_times);
  std::printf("sequential         %8.3f s  (%.3f ms/task)\n", t_seq, t_seq * 1e3 / kTasks);
  for (unsigned w = 1; w <= maxw; ++w) {
    const double sp = median(speedups[w - 1]);
    std::printf("mpp %u worker%s      %8.3f s   speedup %.2fx  efficiency %.2f%s\n", w,
                w == 1 ? " " : "s", median(times[w - 1]), sp, sp / w,
                w == 2 ? " (target >= 0.9)" : "");
    bench::result("speedup", "mpp_Pool", w, sp);  // bench/report's speedup plot
    bench::result("speedup", "ideal", w, w);
  }
}

// ---- 5. cancel -> replacement ----------------------------------------------------------------

mpp::Semaphore* g_started = nullptr;  // made before the pools fork: the workers share it

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}
// The running task that gets cancelled: says it started, then waits to be stopped.
int blocked_task(int x) {
  g_started->release();
  for (;;) ::pause();
  return x;
}
int blocked_ignoring_sigterm(int x) {
  std::signal(SIGTERM, SIG_IGN);
  return blocked_task(x);
}
// The next task: when it runs (steady_clock is CLOCK_MONOTONIC, one clock for all processes).
std::int64_t stamp(int) { return now_ns(); }

// cancel() of a running task on a Pool(1) -> the replacement worker runs the next task, seconds.
double cancel_to_next(mpp::Pool& pool, int (*task)(int)) {
  auto r = pool.apply_async(task, 0);
  g_started->acquire();
  const std::int64_t t0 = now_ns();
  (void)r.cancel();
  return static_cast<double>(pool.apply(stamp, 0) - t0) * 1e-9;
}

// The floor: SIGTERM a child that runs, reap it, fork the next, which reports when it runs.
double raw_kill_and_respawn() {
  int up[2], ran[2];
  if (::pipe(up) != 0 || ::pipe(ran) != 0) return -1;
  std::fflush(nullptr);
  const pid_t victim = ::fork();
  if (victim == 0) {
    char c = 1;
    (void)!::write(up[1], &c, 1);
    for (;;) ::pause();
  }
  char c = 0;
  (void)!::read(up[0], &c, 1);
  const std::int64_t t0 = now_ns();
  ::kill(victim, SIGTERM);
  int st = 0;
  ::waitpid(victim, &st, 0);
  const pid_t next = ::fork();
  if (next == 0) {
    const std::int64_t t = now_ns();
    (void)!::write(ran[1], &t, sizeof t);
    ::_exit(0);
  }
  std::int64_t t = t0;
  (void)!::read(ran[0], &t, sizeof t);
  ::waitpid(next, &st, 0);
  for (int fd : {up[0], up[1], ran[0], ran[1]}) ::close(fd);
  return static_cast<double>(t - t0) * 1e-9;
}

// Without cancel(): terminate the pool with the stuck task, start a new one, run the next task.
double terminate_and_restart() {
  auto pool = std::make_unique<mpp::Pool>(1);
  auto r = pool->apply_async(blocked_task, 0);
  g_started->acquire();
  const std::int64_t t0 = now_ns();
  pool->terminate();
  pool = std::make_unique<mpp::Pool>(1);
  return static_cast<double>(pool->apply(stamp, 0) - t0) * 1e-9;
}

void bench_cancel(int reps) {
  std::printf("\n== 5. cancel() of a running task -> replacement worker runs the next task ==\n");
  mpp::Semaphore started(0);
  g_started = &started;
  const int n = reps * 4;
  std::vector<double> t_mpp, t_raw, t_new, r_raw, r_new, t_ignore;
  {
    mpp::Pool pool(1);
    (void)pool.apply(stamp, 0);
    for (int i = 0; i < n; ++i) {
      // The three side by side in each repetition, ratios per repetition: other load on the
      // machine then hits them alike.
      t_mpp.push_back(cancel_to_next(pool, blocked_task));
      t_raw.push_back(raw_kill_and_respawn());
      t_new.push_back(terminate_and_restart());
      r_raw.push_back(t_mpp.back() / t_raw.back());
      r_new.push_back(t_new.back() / t_mpp.back());
    }
    for (int i = 0; i < std::max(3, reps); ++i) {
      t_ignore.push_back(cancel_to_next(pool, blocked_ignoring_sigterm));
    }
  }
  g_started = nullptr;
  const double m = median(t_mpp);
  std::printf("mpp cancel -> next task runs      %8.1f us (Pool(1), median of %d)\n", m * 1e6, n);
  std::printf("raw SIGTERM+waitpid+fork+run      %8.1f us   mpp/raw = %.2fx (median ratio)\n",
              median(t_raw) * 1e6, median(r_raw));
  std::printf("terminate + new Pool(1) + apply   %8.1f us   new-pool/mpp = %.2fx (median ratio)\n",
              median(t_new) * 1e6, median(r_new));
  std::printf("task ignoring SIGTERM (SIGKILL after the 100 ms grace): %.1f ms\n",
              median(t_ignore) * 1e3);
  bench::result("latency", "mpp_cancel_to_next_task", 0, m * 1e6);
  bench::result("latency", "raw_sigterm_waitpid_fork_run", 0, median(t_raw) * 1e6);
  bench::result("latency", "terminate_new_pool_apply", 0, median(t_new) * 1e6);
}

// ---- 6. threads submitting to one pool -------------------------------------------------------

// `threads` threads share `total` apply_async calls on `pool`, each keeping `window` of its own in
// flight (submit `window`, then get them); returns tasks per second.
double apply_throughput(mpp::Pool& pool, int threads, int total, int window) {
  std::atomic<long long> check{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      const int mine = total / threads;
      std::vector<mpp::AsyncResult<int>> rs;
      long long sum = 0;
      for (int done = 0; done < mine; done += window) {
        rs.clear();
        for (int i = 0; i < window && done + i < mine; ++i) {
          rs.push_back(pool.apply_async(plus_one, t + i));
        }
        for (auto& r : rs) sum += r.get();
      }
      check += sum;
    });
  }
  for (auto& th : ts) th.join();
  const double secs = seconds_since(t0);
  if (check.load() == 0) std::printf("(impossible)\n");
  return total / secs;
}

void bench_threads(int reps) {
  constexpr int kTotal = 40000;
  std::printf("\n== 6. apply_async throughput: 4 threads on one pool vs 1 thread ==\n");
  mpp::Pool pool(2);
  (void)pool.map(plus_one, std::views::iota(0, 100));
  for (int window : {64, 1}) {
    // Interleaved: each repetition measures both, and the ratio is the median of theirs.
    std::vector<double> one, four, ratios;
    for (int r = 0; r < reps; ++r) {
      const double a = apply_throughput(pool, 1, kTotal / (window == 1 ? 4 : 1), window);
      const double b = apply_throughput(pool, 4, kTotal / (window == 1 ? 4 : 1), window);
      one.push_back(a);
      four.push_back(b);
      ratios.push_back(b / a);
    }
    const double ratio = median(ratios);
    std::printf("%s: 1 thread %8.0f tasks/s, 4 threads %8.0f tasks/s   4/1 = %.2fx%s\n",
                window == 1 ? "round trips (1 in flight per thread)"
                            : "batches of 64 per thread            ",
                median(one), median(four), ratio, window == 1 ? "" : " (target >= 0.8)");
    bench::result(
        "ratio",
        window == 1 ? "apply_round_trip_4_threads_vs_1" : "apply_async_throughput_4_threads_vs_1",
        0, ratio);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, python = true;
  int only = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--no-python") == 0) python = false;
    if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = std::atoi(argv[++i]);
    if (std::strcmp(argv[i], "--words") == 0 && i + 1 < argc)
      g_words = std::strtoull(argv[++i], nullptr, 10);
  }
  const int reps = quick ? 3 : 5;
  std::printf("bench_pool: %u cpus, medians of %d runs\n", mpp::sys::cpus_allowed(), reps);
  if (only == 0 || only == 6) bench_threads(reps);
  if (only == 0 || only == 4) bench_cpu(reps);
  if (only == 0 || only == 3) bench_round_trip(reps, python);
  if (only == 0 || only == 2) bench_map(reps, python);
  if (only == 0 || only == 1) bench_wiki(reps, python);
  if (only == 0 || only == 5) bench_cancel(reps);
  return 0;
}
