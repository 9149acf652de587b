// Locks and pipes against their peers, in one run (alternating rounds, medians):
//   1. uncontended acquire+release: mpp::Lock vs a PTHREAD_PROCESS_SHARED pthread mutex (the
//      target: within 1.5x), its robust variant, Boost.Interprocess interprocess_mutex, and
//      Python's multiprocessing.Lock;
//   2. contended: 2 processes incrementing one counter under the lock (ns per increment);
//   3. Pipe ping-pong with a child: mpp::Pipe<int> vs a raw pair of pipes and Python's
//      multiprocessing.Pipe (round-trip microseconds);
//   4. one-way Pipe streams from a child: many Pipe<int> messages (M messages/s) and 1 MiB
//      Pipe<std::vector<char>> messages (GB/s), what a receiver's batching decides.
//
// Usage: bench_sync [rounds=11] [uncontended ops/round=2000000] [contended ops/process=300000]
//                   [ping-pongs/round=20000]
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mpp/pipe.hpp>
#include <mpp/shared.hpp>
#include <mpp/sync.hpp>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "bench_util.hpp"

#if MPP_HAVE_BOOST
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#endif

namespace {

// Pipe ends are held as `auto ends = Pipe...; auto& a = ends.first;`, not as structured
// bindings: clang 14 cannot capture structured bindings in lambdas.

void* shared_page(std::size_t bytes = 4096) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  return p;
}

pthread_mutex_t* make_pthread_mutex(bool robust) {
  auto* m = static_cast<pthread_mutex_t*>(shared_page());
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (robust) pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return m;
}

// Lock-like adaptors with the same shape, so every contender runs the same loop.
struct PthreadLock {
  pthread_mutex_t* m;
  void lock() { pthread_mutex_lock(m); }
  void unlock() { pthread_mutex_unlock(m); }
};

template <class L>
double uncontended_ns(L& l, long ops) {
  return bench::seconds([&] {
           for (long i = 0; i < ops; ++i) {
             l.lock();
             l.unlock();
           }
         }) /
         static_cast<double>(ops) * 1e9;
}

// Two processes (forked children) each do `ops` locked increments of a plain shared counter.
// Returns ns per increment (wall time / total increments); aborts if the total is wrong.
template <class L>
double contended_ns(L& l, long ops) {
  struct Shared {
    std::atomic<int> ready{0};
    std::atomic<int> go{0};
    long counter = 0;
  };
  auto* s = new (shared_page()) Shared;
  pid_t kids[2];
  for (pid_t& k : kids) {
    k = fork();
    if (k == 0) {
      s->ready.fetch_add(1);
      while (s->go.load() == 0) {
      }
      for (long i = 0; i < ops; ++i) {
        l.lock();
        ++s->counter;
        l.unlock();
      }
      _exit(0);
    }
  }
  while (s->ready.load() < 2) {
  }
  double t = bench::seconds([&] {
    s->go.store(1);
    for (pid_t k : kids) waitpid(k, nullptr, 0);
  });
  if (s->counter != 2 * ops) {
    std::fprintf(stderr, "contended total wrong: %ld\n", s->counter);
    std::abort();
  }
  munmap(s, 4096);
  return t / static_cast<double>(2 * ops) * 1e9;
}

// Two processes each do `ops` compound increments of a Value<long> under its lock, the way the
// shared_counter example (and Python's `with v.get_lock(): v.value += 1`) does. ns per increment.
double value_ns(long ops) {
  mpp::Value<long> v(0);
  pid_t kids[2];
  const double t = bench::seconds([&] {
    for (pid_t& k : kids) {
      k = fork();
      if (k == 0) {
        for (long i = 0; i < ops; ++i) {
          std::lock_guard g(v.get_lock());
          v.set(v.get() + 1);
        }
        _exit(0);
      }
    }
    for (pid_t k : kids) waitpid(k, nullptr, 0);
  });
  if (v.get() != 2 * ops) std::abort();
  return t / static_cast<double>(2 * ops) * 1e9;
}

double mpp_pipe_us(long n) {
  auto ends = mpp::Pipe<int>();
  auto& a = ends.first;
  auto& b = ends.second;
  pid_t kid = fork();
  if (kid == 0) {
    for (;;) {
      int v = b.recv();
      if (v < 0) _exit(0);
      b.send(v + 1);
    }
  }
  b.close();
  double t = bench::seconds([&] {
    for (long i = 0; i < n; ++i) {
      a.send(static_cast<int>(i));
      if (a.recv() != static_cast<int>(i) + 1) std::abort();
    }
  });
  a.send(-1);
  waitpid(kid, nullptr, 0);
  return t / static_cast<double>(n) * 1e6;
}

// A child sends n values of `item` one way; the parent receives them. Messages per second.
template <class T>
double mpp_pipe_stream_mps(long n, const T& item) {
  auto ends = mpp::Pipe<T>(false);
  auto& reader = ends.first;
  auto& writer = ends.second;
  pid_t kid = fork();
  if (kid == 0) {
    for (long i = 0; i < n; ++i) writer.send(item);
    _exit(0);
  }
  writer.close();
  const double t = bench::seconds([&] {
    for (long i = 0; i < n; ++i)
      if (reader.recv() != item) std::abort();
  });
  waitpid(kid, nullptr, 0);
  return static_cast<double>(n) / t;
}

double raw_pipe_us(long n) {
  int to[2], from[2];
  if (pipe2(to, O_CLOEXEC) != 0 || pipe2(from, O_CLOEXEC) != 0) std::abort();
  pid_t kid = fork();
  if (kid == 0) {
    close(to[1]);
    close(from[0]);
    int v;
    while (read(to[0], &v, sizeof v) == sizeof v && v >= 0) {
      ++v;
      if (write(from[1], &v, sizeof v) != sizeof v) _exit(1);
    }
    _exit(0);
  }
  close(to[0]);
  close(from[1]);
  double t = bench::seconds([&] {
    for (long i = 0; i < n; ++i) {
      int v = static_cast<int>(i);
      if (write(to[1], &v, sizeof v) != sizeof v || read(from[0], &v, sizeof v) != sizeof v ||
          v != static_cast<int>(i) + 1)
        std::abort();
    }
  });
  int stop = -1;
  if (write(to[1], &stop, sizeof stop) != sizeof stop) std::abort();
  waitpid(kid, nullptr, 0);
  close(to[1]);
  close(from[0]);
  return t / static_cast<double>(n) * 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 11;
  const long ops = argc > 2 ? std::atol(argv[2]) : 2'000'000;
  const long cops = argc > 3 ? std::atol(argv[3]) : 300'000;
  const long pings = argc > 4 ? std::atol(argv[4]) : 20'000;

  mpp::Lock lock;
  PthreadLock plain{make_pthread_mutex(false)};
  PthreadLock robust{make_pthread_mutex(true)};
#if MPP_HAVE_BOOST
  auto* bm = new (shared_page()) boost::interprocess::interprocess_mutex;
#endif

  std::vector<double> u_mpp, u_plain, u_robust, u_boost, u_ratio;
  std::vector<double> c_mpp, c_plain, c_boost;
  std::vector<double> p_mpp, p_raw, v_mpp, s_small, s_big;
  const std::vector<char> mib(1 << 20, 'm');
  for (int r = 0; r < rounds; ++r) {
    // Alternate who goes first, so drift (frequency, neighbours) does not favour anyone.
    double m, p;
    if (r % 2 == 0) {
      m = uncontended_ns(lock, ops);
      p = uncontended_ns(plain, ops);
    } else {
      p = uncontended_ns(plain, ops);
      m = uncontended_ns(lock, ops);
    }
    u_mpp.push_back(m);
    u_plain.push_back(p);
    u_ratio.push_back(m / p);
    u_robust.push_back(uncontended_ns(robust, ops));
#if MPP_HAVE_BOOST
    u_boost.push_back(uncontended_ns(*bm, ops));
#endif
    c_mpp.push_back(contended_ns(lock, cops));
    c_plain.push_back(contended_ns(plain, cops));
#if MPP_HAVE_BOOST
    c_boost.push_back(contended_ns(*bm, cops));
#endif
    v_mpp.push_back(value_ns(cops));
    p_mpp.push_back(mpp_pipe_us(pings));
    p_raw.push_back(raw_pipe_us(pings));
    s_small.push_back(mpp_pipe_stream_mps(pings * 10, 7) / 1e6);
    s_big.push_back(mpp_pipe_stream_mps(pings / 100 + 1, mib) * (1 << 20) / 1e9);
  }
  const double py_lock = bench::python_peer("sync_peer.py", "lock 200000");
  const double py_value = bench::python_peer("sync_peer.py", "value " + std::to_string(cops / 3));
  const double py_pipe = bench::python_peer("sync_peer.py", "pipe " + std::to_string(pings / 4));

  std::printf("bench_sync: %d rounds; medians\n", rounds);
  std::printf("uncontended acquire+release (%ld per round), ns:\n", ops);
  std::printf("  mpp::Lock (robust futex word)            %8.2f\n", bench::median(u_mpp));
  std::printf("  pthread mutex PROCESS_SHARED              %8.2f\n", bench::median(u_plain));
  std::printf("  pthread mutex PROCESS_SHARED + ROBUST     %8.2f\n", bench::median(u_robust));
  if (!u_boost.empty())
    std::printf("  boost::interprocess::interprocess_mutex   %8.2f\n", bench::median(u_boost));
  std::printf(
      "  ratio mpp::Lock / pthread pshared (median of per-round ratios): %.3f  "
      "(target <= 1.5)\n",
      bench::median(u_ratio));
  if (!u_boost.empty())
    bench::print_ratio_line("vs boost interprocess_mutex", bench::median(u_mpp),
                            bench::median(u_boost), "ns");
  bench::print_ratio_line("vs Python multiprocessing.Lock", bench::median(u_mpp) / 1000, py_lock,
                          "us");

  std::printf("contended, 2 processes x %ld locked increments, ns per increment:\n", cops);
  std::printf("  mpp::Lock                                 %8.2f\n", bench::median(c_mpp));
  std::printf("  pthread mutex PROCESS_SHARED              %8.2f\n", bench::median(c_plain));
  if (!c_boost.empty())
    std::printf("  boost::interprocess::interprocess_mutex   %8.2f\n", bench::median(c_boost));
  bench::print_ratio_line("contended vs pthread pshared", bench::median(c_mpp),
                          bench::median(c_plain), "ns");
  if (!c_boost.empty())
    bench::print_ratio_line("contended vs boost interprocess_mutex", bench::median(c_mpp),
                            bench::median(c_boost), "ns");

  std::printf(
      "Value<long> locked increments, 2 processes x %ld (fork included), ns per increment:\n",
      cops);
  std::printf("  mpp::Value + get_lock()                   %8.2f\n", bench::median(v_mpp));
  bench::print_ratio_line("vs Python Value + get_lock()", bench::median(v_mpp), py_value, "ns");

  std::printf("Pipe ping-pong with a child (%ld round trips per round), us per round trip:\n",
              pings);
  std::printf("  mpp::Pipe<int>                            %8.2f\n", bench::median(p_mpp));
  std::printf("  raw pipe pair (write/read 4 bytes)        %8.2f\n", bench::median(p_raw));
  bench::print_ratio_line("Pipe vs raw pipes (the floor)", bench::median(p_mpp),
                          bench::median(p_raw), "us");
  bench::print_ratio_line("Pipe vs Python multiprocessing.Pipe", bench::median(p_mpp), py_pipe,
                          "us");
  std::printf("Pipe one-way stream from a child (%ld ints, %ld x 1 MiB per round):\n", pings * 10,
              pings / 100 + 1);
  std::printf("  mpp::Pipe<int>, M messages/s              %8.3f\n", bench::median(s_small));
  std::printf("  mpp::Pipe<std::vector<char>> 1 MiB, GB/s  %8.3f\n", bench::median(s_big));
  bench::result("latency", "mpp_Pipe_ping-pong", 0, bench::median(p_mpp));
  bench::result("latency", "raw_pipe_ping-pong", 0, bench::median(p_raw));
  if (py_pipe > 0) bench::result("latency", "Python_mp.Pipe_ping-pong", 0, py_pipe);
  return 0;
}
