// bench_queue: mpp::Queue against its peers, in one run, printing medians and ratios.
//
// Peers: Python's multiprocessing.Queue (bench/queue_peer.py, /usr/bin/python3), Boost.Interprocess
// message_queue, a plain pipe, a minimal single-producer single-consumer shared-memory ring (the
// practical ceiling for 8-byte items), memcpy into shared memory (the ceiling for big items) and
// a raw futex ping-pong on a shared word (the ceiling for latency).
//
// Usage: bench_queue [--quick] [--wiki]   (--quick: fewer items, for a smoke run; --wiki: only
// the wiki snippet's sections, about a minute)
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mpp/process.hpp>
#include <mpp/queue.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "sys/futex.hpp"
#include "sys/mem.hpp"

#if MPP_HAVE_BOOST
#include <boost/interprocess/ipc/message_queue.hpp>
#endif

namespace {

long g_scale = 1;  // divides item counts with --quick
constexpr int kRuns = 5;

// Forks `n` children running fn(i); returns after all exited (exit status must be 0).
void run_children(int n, const std::function<void(int)>& fn, const std::function<void()>& parent) {
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    pid_t p = fork();
    if (p == 0) {
      fn(i);
      _exit(0);
    }
    pids.push_back(p);
  }
  parent();
  for (pid_t p : pids) {
    int st = 0;
    waitpid(p, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) std::fprintf(stderr, "child failed\n");
  }
}

// Median items/s of kRuns runs of `once` (which returns elapsed seconds for `items` items).
double rate(std::size_t items, const std::function<double()>& once) {
  std::vector<double> r;
  for (int i = 0; i < kRuns; ++i) r.push_back(static_cast<double>(items) / once());
  return bench::median(r);
}

// ---- mpp -------------------------------------------------------------------------------------

double mpp_small(int producers, int consumers, long per_producer, bool batched) {
  mpp::Queue<std::uint64_t> q(mpp::QueueOptions{.capacity_bytes = 1 << 20});
  const long total = per_producer * producers;
  auto produce = [&] {
    if (batched) {
      std::vector<std::uint64_t> v(4096);
      for (long k = 0; k < per_producer; k += 4096) {
        for (std::size_t j = 0; j < v.size(); ++j) v[j] = static_cast<std::uint64_t>(k) + j;
        q.put_many(v);
      }
    } else {
      for (long k = 0; k < per_producer; ++k) q.put(static_cast<std::uint64_t>(k));
    }
  };
  // Consumes until `limit` items (or QueueClosed); returns how many.
  auto consume = [&](long limit) {
    long got = 0;
    std::vector<std::uint64_t> out;
    out.reserve(4096);
    try {
      while (got < limit) {
        if (batched) {
          out.clear();
          got += static_cast<long>(q.get_many(out, 4096));
        } else {
          (void)q.get();
          ++got;
        }
      }
    } catch (const mpp::QueueClosed&) {
    }
    return got;
  };
  return bench::seconds([&] {
    if (consumers == 1) {
      run_children(
          producers, [&](int) { produce(); }, [&] { consume(total); });
      return;
    }
    // Several consumers: all children; the parent closes the queue once the producers are done,
    // and the consumers drain it and stop.
    std::vector<pid_t> prods, cons;
    for (int i = 0; i < consumers; ++i) {
      if (pid_t p = fork(); p == 0) {
        consume(total + 1);
        _exit(0);
      } else {
        cons.push_back(p);
      }
    }
    for (int i = 0; i < producers; ++i) {
      if (pid_t p = fork(); p == 0) {
        produce();
        _exit(0);
      } else {
        prods.push_back(p);
      }
    }
    for (pid_t p : prods) waitpid(p, nullptr, 0);
    q.close();
    for (pid_t p : cons) waitpid(p, nullptr, 0);
  });
}

// ---- peers -----------------------------------------------------------------------------------

struct alignas(64) Spsc {
  alignas(64) std::atomic<std::uint64_t> tail;
  alignas(64) std::atomic<std::uint64_t> head;
  alignas(64) std::uint64_t slots[1 << 16];
};

double spsc_small(long n) {
  auto map = mpp::sys::map_anonymous_shared(sizeof(Spsc), true);
  auto* r = new (map.data()) Spsc{};
  constexpr std::uint64_t C = 1 << 16;
  return bench::seconds([&] {
    r->tail = 0;
    r->head = 0;
    run_children(
        1,
        [&](int) {
          std::uint64_t hc = 0;
          for (long i = 0; i < n; ++i) {
            std::uint64_t t = r->tail.load(std::memory_order_relaxed);
            while (t - hc >= C) hc = r->head.load(std::memory_order_acquire);
            r->slots[t & (C - 1)] = static_cast<std::uint64_t>(i);
            r->tail.store(t + 1, std::memory_order_release);
          }
        },
        [&] {
          std::uint64_t tc = 0, h = 0, s = 0;
          for (long i = 0; i < n; ++i) {
            while (h == tc) {
              tc = r->tail.load(std::memory_order_acquire);
              if (h == tc) mpp::sys::cpu_relax();
            }
            s += r->slots[h & (C - 1)];
            r->head.store(++h, std::memory_order_release);
          }
          if (s != static_cast<std::uint64_t>(n) * (n - 1) / 2) std::fprintf(stderr, "spsc bad\n");
        });
  });
}

double pipe_small(int producers, long per_producer, std::size_t item = 8) {
  return bench::seconds([&] {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) std::abort();
    std::vector<char> buf(item);
    run_children(
        producers,
        [&](int) {
          close(fds[0]);
          for (long i = 0; i < per_producer; ++i) {
            std::size_t off = 0;
            while (off < item) {
              ssize_t w = write(fds[1], buf.data() + off, item - off);
              if (w > 0) off += static_cast<std::size_t>(w);
            }
          }
        },
        [&] {
          close(fds[1]);
          std::vector<char> in(item * 512);
          const std::size_t want = item * static_cast<std::size_t>(per_producer) * producers;
          std::size_t got = 0;
          while (got < want) {
            ssize_t r = read(fds[0], in.data(), std::min(in.size(), want - got));
            if (r <= 0) break;
            got += static_cast<std::size_t>(r);
          }
          close(fds[0]);
        });
  });
}

#if MPP_HAVE_BOOST
namespace bip = boost::interprocess;
double boost_small(int producers, long per_producer, std::size_t item = 8,
                   std::size_t max_msgs = 1024) {
  const std::string name = "mpp-bench-q-" + std::to_string(getpid());
  bip::message_queue::remove(name.c_str());
  double s = 0;
  {
    bip::message_queue mq(bip::create_only, name.c_str(), max_msgs, item);
    std::vector<char> buf(item);
    s = bench::seconds([&] {
      run_children(
          producers,
          [&](int) {
            bip::message_queue child(bip::open_only, name.c_str());
            for (long i = 0; i < per_producer; ++i) child.send(buf.data(), item, 0);
          },
          [&] {
            std::vector<char> in(item);
            bip::message_queue::size_type got = 0;
            unsigned prio = 0;
            for (long i = 0; i < per_producer * producers; ++i)
              mq.receive(in.data(), item, got, prio);
          });
    });
  }
  bip::message_queue::remove(name.c_str());
  return s;
}
#endif

// ---- big items ----------------------------------------------------------------------------------

// Ring for big items: room for 16 items of 64 KiB, 4 of 1 MiB (Boost's queue gets 8 slots):
// a ring that stays in the caches, as a user tuning for big items would choose.
std::size_t big_ring(std::size_t item) { return item <= (64 << 10) ? 16 * item : 4 * item; }

double mpp_big(std::size_t item, long n) {
  // std::string: its decode is one allocation and one memcpy. (std::vector<std::byte> decodes at
  // ~2 GB/s today, zero-filling then copying; a codec matter, see bench/README.md.)
  mpp::Queue<std::string> q(mpp::QueueOptions{.capacity_bytes = big_ring(item)});
  std::string v(item, 'x');
  return bench::seconds([&] {
    run_children(
        1,
        [&](int) {
          for (long i = 0; i < n; ++i) q.put(v);
        },
        [&] {
          for (long i = 0; i < n; ++i) {
            auto got = q.get();
            if (got.size() != item) std::abort();
          }
        });
  });
}

double memcpy_big(std::size_t item, long n) {
  auto ring = mpp::sys::map_anonymous_shared(big_ring(item), true);
  std::vector<std::byte> v(item, std::byte{7});
  const std::size_t slots = big_ring(item) / item;
  return bench::seconds([&] {
    for (long i = 0; i < n; ++i) {
      std::memcpy(ring.bytes() + (static_cast<std::size_t>(i) % slots) * item, v.data(), item);
    }
    asm volatile("" ::: "memory");
  });
}

// ---- latency ------------------------------------------------------------------------------------

double mpp_pingpong(long n) {
  mpp::Queue<std::uint64_t> ping(mpp::QueueOptions{.capacity_bytes = 4096});
  mpp::Queue<std::uint64_t> pong(mpp::QueueOptions{.capacity_bytes = 4096});
  return bench::seconds([&] {
           run_children(
               1,
               [&](int) {
                 for (long i = 0; i < n; ++i) pong.put(ping.get());
               },
               [&] {
                 for (long i = 0; i < n; ++i) {
                   ping.put(static_cast<std::uint64_t>(i));
                   if (pong.get() != static_cast<std::uint64_t>(i)) std::abort();
                 }
               });
         }) /
         static_cast<double>(n) * 1e6;
}

double futex_pingpong(long n) {
  auto map = mpp::sys::map_anonymous_shared(4096, true);
  auto* word = new (map.data()) std::atomic<std::uint32_t>(0);
  return bench::seconds([&] {
           word->store(0);
           run_children(
               1,
               [&](int) {
                 for (long i = 0; i < n; ++i) {
                   while (word->load(std::memory_order_acquire) != 1) mpp::sys::futex_wait(word, 0);
                   word->store(0, std::memory_order_release);
                   mpp::sys::futex_wake(word, 1);
                 }
               },
               [&] {
                 for (long i = 0; i < n; ++i) {
                   word->store(1, std::memory_order_release);
                   mpp::sys::futex_wake(word, 1);
                   while (word->load(std::memory_order_acquire) != 0) mpp::sys::futex_wait(word, 1);
                 }
               });
         }) /
         static_cast<double>(n) * 1e6;
}

// ---- the wiki's snippet -------------------------------------------------------------------------

// The wiki's snippet: `procs` producers x `words` each into one consumer, put() per word (as the
// wiki does), or put_many() of 1,000 words with the consumer taking get_many(4096). Seconds from
// starting the producers to the last get, the interval bench/queue_peer.py times in Python (the
// queue is made before, the joins and freeing the results come after, in both).
// `producer_cpus`, when given, pins producer i to CPU producer_cpus[i] (placement experiment).
double mpp_words(int procs, long words, bool batched, const std::vector<int>& producer_cpus = {}) {
  mpp::Queue<std::string> q;
  std::vector<mpp::Process> ps;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < procs; ++i) {
    mpp::ProcessOptions opts;
    if (!producer_cpus.empty()) opts.cpus = {producer_cpus[static_cast<std::size_t>(i)]};
    ps.emplace_back(opts, [q, words, i, batched]() mutable {
      std::mt19937_64 rng(std::random_device{}() ^ static_cast<std::uint64_t>(i));
      auto pick = [&](std::string_view s) {
        return s[std::uniform_int_distribution<std::size_t>(0, s.size() - 1)(rng)];
      };
      std::vector<std::string> batch;
      for (long k = 0; k < words; ++k) {
        std::string w{pick("bdvl"), pick("aoi"), pick("pkl")};
        if (!batched) {
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
  const auto total = static_cast<std::size_t>(procs * words);
  std::vector<std::string> results;
  results.reserve(total);
  while (results.size() < total) {
    if (batched) {
      (void)q.get_many(results, 4096);
    } else {
      results.push_back(q.get());
    }
  }
  const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
  for (auto& p : ps) p.join();
  return dt.count();
}

// The wiki's Queue snippet against Python, its placement on two CPUs, and producer scaling.
void wiki_sections() {
  const long words = 1'000'000 / g_scale;
  std::printf("\nthe wiki's Queue snippet, 2 producers x %ld words; M words/s\n", words);
  std::vector<double> w;
  for (int i = 0; i < kRuns; ++i)
    w.push_back(2.0 * static_cast<double>(words) / mpp_words(2, words, false));
  double pyw = bench::python_peer("queue_peer.py", "wiki 2 " + std::to_string(50'000 / g_scale));
  bench::print_ratio_line("mpp vs Python mp.Queue (Python: 2 x 50,000)", bench::median(w) / 1e6,
                          pyw > 0 ? pyw / 1e6 : -1, "Mw/s", false);

  // Where the kernel puts the three processes decides the snippet's speed on a 2-CPU machine
  // (bench/README.md, "Placement"): the consumer alone on a CPU, or sharing one with a producer.
  if (std::thread::hardware_concurrency() >= 2) {
    cpu_set_t saved;
    CPU_ZERO(&saved);
    if (sched_getaffinity(0, sizeof saved, &saved) == 0 && CPU_ISSET(0, &saved) &&
        CPU_ISSET(1, &saved)) {
      cpu_set_t zero;
      CPU_ZERO(&zero);
      CPU_SET(0, &zero);
      (void)sched_setaffinity(0, sizeof zero, &zero);  // the consumer (this process) on CPU 0
      std::vector<double> alone, shared;
      for (int i = 0; i < 3; ++i) {
        alone.push_back(2.0 * static_cast<double>(words) / mpp_words(2, words, false, {1, 1}));
        shared.push_back(2.0 * static_cast<double>(words) / mpp_words(2, words, false, {0, 1}));
      }
      (void)sched_setaffinity(0, sizeof saved, &saved);
      std::printf("placement of the snippet's 3 processes on CPUs 0 and 1 (pinned); M words/s\n");
      bench::print_ratio_line("consumer alone on CPU 0 vs Python mp.Queue",
                              bench::median(alone) / 1e6, pyw > 0 ? pyw / 1e6 : -1, "Mw/s", false);
      bench::print_ratio_line("consumer sharing CPU 0 with a producer vs Python",
                              bench::median(shared) / 1e6, pyw > 0 ? pyw / 1e6 : -1, "Mw/s", false);
    }
  }

  // Producers each put to a lane of their own, so put() rates should not fall as P grows while
  // the consumer keeps up (bench/README.md, "16 cores" and "Producer lanes"); put_many writes
  // 1,000 words per record.
  const long per = 500'000 / g_scale;
  const int max_procs = std::min(32, 2 * static_cast<int>(std::thread::hardware_concurrency()));
  std::printf("\nproducer scaling: P producers x %ld words -> 1 consumer; M words/s\n", per);
  for (int procs = 1; procs <= max_procs; procs *= 2) {
    std::vector<double> one, many;
    for (int i = 0; i < 3; ++i) {
      one.push_back(static_cast<double>(procs * per) / mpp_words(procs, per, false));
      many.push_back(static_cast<double>(procs * per) / mpp_words(procs, per, true));
    }
    char what[64];
    std::snprintf(what, sizeof what, "P=%d: put_many/get_many vs put/get", procs);
    bench::print_ratio_line(what, bench::median(many) / 1e6, bench::median(one) / 1e6, "Mw/s",
                            false);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool wiki_only = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      g_scale = 20;
    } else if (std::strcmp(argv[i], "--wiki") == 0) {
      wiki_only = true;
    } else {
      std::fprintf(stderr, "usage: bench_queue [--quick] [--wiki]\n");
      return 2;
    }
  }
  std::printf("bench_queue: medians of %d runs; rates in M items/s unless noted\n", kRuns);
  if (wiki_only) {
    wiki_sections();
    return 0;
  }

  const long n_small = 20'000'000 / g_scale;
  std::printf("\n8-byte items, 1 producer -> 1 consumer process (%ld items, ring 1 MiB)\n",
              n_small);
  const double m11 = rate(n_small, [&] { return mpp_small(1, 1, n_small, false); }) / 1e6;
  const double mb11 = rate(n_small, [&] { return mpp_small(1, 1, n_small, true); }) / 1e6;
  const double sp = rate(n_small, [&] { return spsc_small(n_small); }) / 1e6;
  const double pp = rate(n_small / 4, [&] { return pipe_small(1, n_small / 4); }) / 1e6;
  double bq = -1;
#if MPP_HAVE_BOOST
  bq = rate(n_small / 10, [&] { return boost_small(1, n_small / 10); }) / 1e6;
#endif
  const long n_py = 100'000 / g_scale;
  double py = bench::python_peer("queue_peer.py", "small " + std::to_string(n_py));
  if (py > 0) py /= 1e6;
  bench::print_ratio_line("mpp put/get vs Boost message_queue", m11, bq, "M/s", false);
  bench::print_ratio_line("mpp put/get vs plain pipe (8-byte writes)", m11, pp, "M/s", false);
  bench::print_ratio_line("mpp put/get vs minimal SPSC ring", m11, sp, "M/s", false);
  bench::print_ratio_line("mpp put/get vs Python mp.Queue", m11, py, "M/s", false);
  bench::print_ratio_line("mpp put_many/get_many vs minimal SPSC ring", mb11, sp, "M/s", false);
  bench::print_ratio_line("mpp put_many/get_many vs Boost message_queue", mb11, bq, "M/s", false);
  // For bench/report's throughput plot: MB/s at 8-byte items.
  bench::result("throughput", "mpp_Queue", 8, m11 * 8);
  bench::result("throughput", "mpp_Queue_batched", 8, mb11 * 8);
  bench::result("throughput", "SPSC_ring_ceiling", 8, sp * 8);
  bench::result("throughput", "pipe", 8, pp * 8);
  if (bq > 0) bench::result("throughput", "Boost_message_queue", 8, bq * 8);
  if (py > 0) bench::result("throughput", "Python_mp.Queue", 8, py * 8);

  for (auto [p, c] : {std::pair{4, 1}, std::pair{2, 2}}) {
    const long per = n_small / 4 / p;
    std::printf("\n8-byte items, %d producers -> %d consumers (%ld items)\n", p, c, per * p);
    const double m = rate(per * p, [&] { return mpp_small(p, c, per, false); }) / 1e6;
    const double pip = rate(per * p, [&] { return pipe_small(p, per); }) / 1e6;
    double b = -1;
#if MPP_HAVE_BOOST
    b = rate(per * p / 4, [&] { return boost_small(p, per / 4); }) / 1e6;
#endif
    bench::print_ratio_line("mpp vs Boost message_queue (peer: 1 consumer)", m, b, "M/s", false);
    bench::print_ratio_line("mpp vs plain pipe (peer: 1 reader)", m, pip, "M/s", false);
  }

  for (std::size_t item : {std::size_t{64} << 10, std::size_t{1} << 20}) {
    const long n =
        static_cast<long>((std::size_t{4} << 30) / item / static_cast<std::size_t>(g_scale));
    std::printf("\n%zu KiB items, 1 -> 1 (%ld items, ring %zu KiB); GB/s\n", item >> 10, n,
                big_ring(item) >> 10);
    auto gbs = [&](double items_per_s) { return items_per_s * static_cast<double>(item) / 1e9; };
    const double m = gbs(rate(n, [&] { return mpp_big(item, n); }));
    const double mc = gbs(rate(n, [&] { return memcpy_big(item, n); }));
    const double pip = gbs(rate(n / 4, [&] { return pipe_small(1, n / 4, item); }));
    bench::print_ratio_line("mpp vs memcpy into shared memory (1 core)", m, mc, "GB/s", false);
    bench::print_ratio_line("mpp vs plain pipe", m, pip, "GB/s", false);
    const double bytes = static_cast<double>(item);
    bench::result("throughput", "mpp_Queue", bytes, m * 1000);
    bench::result("throughput", "memcpy_ceiling", bytes, mc * 1000);
    bench::result("throughput", "pipe", bytes, pip * 1000);
#if MPP_HAVE_BOOST
    const double b = gbs(rate(n / 4, [&] { return boost_small(1, n / 4, item, 8); }));
    bench::print_ratio_line("mpp vs Boost message_queue", m, b, "GB/s", false);
    bench::result("throughput", "Boost_message_queue", bytes, b * 1000);
#endif
  }

  const long n_pp = 20'000 / g_scale;
  std::printf("\nping-pong round trip, 2 processes (%ld round trips); us\n", n_pp);
  std::vector<double> mp, fp;
  for (int i = 0; i < kRuns; ++i) {
    mp.push_back(mpp_pingpong(n_pp));
    fp.push_back(futex_pingpong(n_pp));
  }
  bench::print_ratio_line("mpp Queue round trip vs raw futex on a shared word", bench::median(mp),
                          bench::median(fp), "us", true);
  bench::result("latency", "mpp_Queue_ping-pong", 0, bench::median(mp));
  bench::result("latency", "raw_futex_ping-pong", 0, bench::median(fp));

  wiki_sections();
  return 0;
}
