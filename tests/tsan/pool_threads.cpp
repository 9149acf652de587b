// Threads on one mpp::Pool (issue 20.2, API.md section 8 "Threads") and as_completed: every
// member from many threads at once, results consumed on other threads, a waiter that does not
// hold others up, close/join/terminate from another thread, workers whose forking thread exited,
// progress callbacks calling back, Processes started from many threads, and the logger-plus-crashes
// program of the issue. Built in the normal and ASan builds and, for the parent's threads, under
// ThreadSanitizer (preset tsan): TSan sees the parent's threads, its mutex and the driver
// hand-over; the workers are other processes, which it does not follow (their shared-memory rings
// are checked by tsan_pool_ring with threads standing in for processes).
//
// Every test runs under the pool fixture's watchdog and checks that nothing outlived the pool.
// Synchronisation with workers is through mpp::Event (shared memory), never sleeps.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "mpp/pool.hpp"
#include "mpp/process.hpp"
#include "mpp/start_method.hpp"
#include "mpp/sync.hpp"
#include "pool_fixture.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

long long square(int x) { return static_cast<long long>(x) * x; }
int plus_one(int x) { return x + 1; }
int add(int a, int b) { return a + b; }

// Events the workers inherit (created before the pool that forks them).
constexpr int kEvents = 8;
mpp::Event* g_events = nullptr;
int wait_event(int i) {
  g_events[i].wait();
  return i;
}

class Events {
 public:
  Events() : ev_(kEvents) { g_events = ev_.data(); }
  ~Events() { g_events = nullptr; }
  mpp::Event& operator[](int i) { return ev_[static_cast<std::size_t>(i)]; }

 private:
  std::vector<mpp::Event> ev_;
};

using PoolThreads = mpp::test::PoolFixture;

// Runs f(t) on n threads and joins them; the first exception escaping a thread is rethrown.
template <class F>
void on_threads(int n, F&& f) {
  std::vector<std::thread> ts;
  std::mutex m;
  std::exception_ptr first;
  for (int t = 0; t < n; ++t) {
    ts.emplace_back([&, t] {
      try {
        f(t);
      } catch (...) {
        const std::lock_guard lk(m);
        if (!first) first = std::current_exception();
      }
    });
  }
  for (auto& th : ts) th.join();
  if (first) std::rethrow_exception(first);
}

// 8 threads, each mixing every kind of call on one pool; every result is checked.
TEST_P(PoolThreads, EightThreadsMixedCallsOnOnePool) {
  mpp::Pool pool(workers());
  std::atomic<long> checked{0};
  on_threads(8, [&](int t) {
    for (int round = 0; round < 3; ++round) {
      const int base = t * 1000 + round * 100;
      auto m = pool.map(square, std::views::iota(base, base + 300));
      for (int i = 0; i < 300; ++i) ASSERT_EQ(m[i], square(base + i));
      std::vector<mpp::AsyncResult<int>> rs;
      for (int i = 0; i < 20; ++i) rs.push_back(pool.apply_async(plus_one, base + i));
      auto ma = pool.map_async(plus_one, std::vector<int>{base, base + 1, base + 2});
      long k = 0;
      for (long long v : pool.imap(square, std::views::iota(0, 50), 3)) {
        ASSERT_EQ(v, square(static_cast<int>(k)));
        ++k;
      }
      ASSERT_EQ(k, 50);
      long long sum = 0;
      for (long long v : pool.imap_unordered(square, std::views::iota(0, 40), 2)) sum += v;
      ASSERT_EQ(sum, 40LL * 39 * 79 / 6);
      auto sm = pool.starmap(add, std::vector<std::tuple<int, int>>{{t, 1}, {t, 2}});
      ASSERT_EQ(sm, (std::vector<int>{t + 1, t + 2}));
      ASSERT_EQ(pool.apply(add, t, round), t + round);
      for (int i = 0; i < 20; ++i) ASSERT_EQ(rs[i].get(), base + i + 1);
      ASSERT_EQ(ma.get(), (std::vector<int>{base + 1, base + 2, base + 3}));
      (void)pool.stats();
      ASSERT_EQ(pool.processes(), workers());
      checked += 1;
    }
  });
  EXPECT_EQ(checked.load(), 24);
  EXPECT_EQ(pool.stats().restarts, 0u);
}

// The classic segfault of the issue: apply_async(...).get() from four threads, many times.
TEST_P(PoolThreads, FourThreadsApplyAsyncGet) {
  mpp::Pool pool(workers());
  on_threads(4, [&](int t) {
    for (int i = 0; i < 500; ++i) ASSERT_EQ(pool.apply_async(add, t, i).get(), t + i);
  });
}

// Results and imap ranges made on one thread are consumed on others (each by one at a time).
TEST_P(PoolThreads, ResultsAndImapConsumedOnOtherThreads) {
  mpp::Pool pool(workers());
  std::vector<mpp::AsyncResult<int>> rs;
  for (int i = 0; i < 64; ++i) rs.push_back(pool.apply_async(plus_one, i));
  auto it = pool.imap(square, std::views::iota(0, 200), 4);
  std::vector<long long> got;
  on_threads(5, [&](int t) {
    if (t == 4) {
      for (long long v : it) got.push_back(v);
      return;
    }
    for (int i = t; i < 64; i += 4) ASSERT_EQ(rs[i].get(), i + 1);
  });
  ASSERT_EQ(got.size(), 200u);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(got[i], square(i));
}

// A thread blocked on a result that cannot complete yet does not hold up another thread's
// submissions and results; released, it gets its value.
TEST_P(PoolThreads, ABlockedWaiterDoesNotHoldUpOthers) {
  if (workers() < 2) GTEST_SKIP() << "the blocked task occupies a worker";
  Events ev;
  mpp::Pool pool(workers());
  mpp::AsyncResult<int> slow = pool.apply_async(wait_event, 0);
  std::atomic<bool> waiting{false};
  std::thread waiter([&] {
    waiting = true;
    EXPECT_EQ(slow.get(), 0);  // drives the pool (or waits on whoever does) meanwhile
  });
  while (!waiting) std::this_thread::yield();
  // Whichever thread drives, these complete while the waiter is still blocked. (One at a time:
  // each goes to the least-loaded worker, never the one running the blocked task; a map's chunks
  // would queue behind it there, as in Python.)
  for (int i = 0; i < 200; ++i) ASSERT_EQ(pool.apply(plus_one, i), i + 1);
  EXPECT_FALSE(slow.ready());
  ev[0].set();
  waiter.join();
}

// terminate() from another thread wakes a thread blocked in get(): its result fails.
TEST_P(PoolThreads, TerminateFromAnotherThreadFailsTheBlockedWaiter) {
  Events ev;
  mpp::Pool pool(workers());
  auto r = pool.apply_async(wait_event, 1);
  auto it = pool.imap(wait_event, std::vector<int>{1, 1, 1});
  std::thread waiter([&] { EXPECT_THROW((void)r.get(), mpp::WorkerLost); });
  std::thread imapper([&] {
    EXPECT_THROW(
        {
          for (int v : it) (void)v;
        },
        mpp::WorkerLost);
  });
  // No sleep can tell that the others are blocked already; either way they must fail, not hang.
  pool.terminate();
  waiter.join();
  imapper.join();
  EXPECT_THROW((void)pool.apply(plus_one, 1), std::logic_error);
}

// close() + join() from one thread while others are in map(): their maps complete first.
TEST_P(PoolThreads, JoinFromAnotherThreadWaitsForTheirMaps) {
  mpp::Pool pool(workers());
  std::atomic<int> started{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t) {
    ts.emplace_back([&, t] {
      try {
        auto r = pool.map_async(square, std::views::iota(0, 2000));
        ++started;
        auto v = r.get();
        EXPECT_EQ(v[1999], square(1999)) << t;
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    });
  }
  while (started < 3) std::this_thread::yield();
  pool.close();
  std::thread second_join([&] { pool.join(); });
  pool.join();
  second_join.join();
  for (auto& th : ts) th.join();
  EXPECT_TRUE(pool.worker_pids().empty());
}

// A worker forked by a thread that then exits keeps serving (the parent-death signal follows
// the forking thread; mpp must not let it kill the worker).
TEST_P(PoolThreads, WorkersOutliveTheThreadThatForkedThem) {
  std::unique_ptr<mpp::Pool> pool;
  std::vector<pid_t> pids;
  std::thread maker([&] {
    pool = std::make_unique<mpp::Pool>(workers());
    pids = pool->worker_pids();
    // Every worker gets one of the first chunks and answers only once it is set up (its
    // parent-death signal armed): the thread exits after that.
    (void)pool->map(square, std::views::iota(0, static_cast<int>(4 * workers())), 1);
  });
  maker.join();
  // The kernel sends the signal as the thread exits; a map of many chunks runs meanwhile.
  auto out = pool->map(square, std::views::iota(0, 20000), 1);
  ASSERT_EQ(out[19999], square(19999));
  EXPECT_EQ(pool->stats().restarts, 0u);
  EXPECT_EQ(pool->worker_pids(), pids);
  // And a replacement forked by a short-lived thread too (maxtasksperchild 1: every chunk).
  mpp::PoolOptions o;
  o.processes = workers();
  o.maxtasksperchild = 1;
  mpp::Pool churn(o);
  std::thread([&] { ASSERT_EQ(churn.apply(plus_one, 1), 2); }).join();
  std::thread([&] { ASSERT_EQ(churn.apply(plus_one, 2), 3); }).join();
  auto all = churn.map(plus_one, std::views::iota(0, 40), 1);
  ASSERT_EQ(all[39], 40);
  for (const auto& w : churn.stats().workers) EXPECT_EQ(w.crashes, 0u);
  pool.reset();
}

// The progress callback runs while the pool is driven: calling back into the pool throws
// std::logic_error (it would otherwise deadlock or corrupt the pump); stats() and terminate()
// are allowed, and terminate() takes effect once the callback returned.
TEST_P(PoolThreads, ProgressCallbackCallingBackIntoItsPool) {
  mpp::Pool* self = nullptr;
  bool threw = false;
  bool stats_ok = false;
  mpp::PoolOptions o;
  o.processes = workers();
  o.on_progress = [&](const mpp::PoolProgress& p) {
    try {
      (void)self->apply(plus_one, 1);
    } catch (const std::logic_error&) {
      threw = true;
    }
    stats_ok = self->stats().workers.size() == workers();
    if (!p.finished) self->terminate();
  };
  mpp::Pool pool(o);
  self = &pool;
  std::vector<int> in(5000, 1);
  // Stopped by its own callback, or finished before the first report: never a hang.
  try {
    (void)pool.map(plus_one, in, 1);
  } catch (const mpp::WorkerLost&) {
  }
  EXPECT_TRUE(threw);
  EXPECT_TRUE(stats_ok);
}

INSTANTIATE_TEST_SUITE_P(Workers, PoolThreads, ::testing::Values(1u, 2u, 5u));

// ---- as_completed ------------------------------------------------------------------------------

using AsCompleted = mpp::test::PoolFixture;

// Results are yielded in the order they complete: each task waits for its own event, which the
// test sets one by one after the previous result came out.
TEST_P(AsCompleted, YieldsInCompletionOrder) {
  Events ev;
  mpp::Pool pool(4);  // every task runs at once
  std::vector<mpp::AsyncResult<int>> rs;
  for (int i = 0; i < 4; ++i) rs.push_back(pool.apply_async(wait_event, i));
  const int order[] = {2, 0, 3, 1};
  ev[order[0]].set();
  int k = 0;
  for (mpp::AsyncResult<int>& r : mpp::as_completed(rs, 10s)) {
    ASSERT_LT(k, 4);
    EXPECT_EQ(&r, &rs[order[k]]);
    EXPECT_EQ(r.get(), order[k]);
    if (++k < 4) ev[order[k]].set();
  }
  EXPECT_EQ(k, 4);
  (void)workers();
}

// Each result exactly once, also those ready before the call; values intact; from several
// engines (a capturing callable runs on workers of its own).
TEST_P(AsCompleted, EachResultExactlyOnce) {
  mpp::Pool pool(workers());
  std::vector<mpp::AsyncResult<int>> rs;
  for (int i = 0; i < 100; ++i) rs.push_back(pool.apply_async(plus_one, i));
  rs[0].wait();  // some are ready already
  const int offset = 1000;
  rs.push_back(pool.apply_async([offset](int x) { return x + offset; }, 5));
  std::set<const mpp::AsyncResult<int>*> seen;
  long long sum = 0;
  for (auto& r : mpp::as_completed(rs)) {
    EXPECT_TRUE(seen.insert(&r).second) << "yielded twice";
    sum += r.get();
  }
  EXPECT_EQ(seen.size(), rs.size());
  EXPECT_EQ(sum, 100LL * 101 / 2 + 1005);
}

// The timeout counts from the call: the ready ones come out, then TimeoutError; the range stays
// usable and yields the last one once it completes. Waiting does not spin: the thread's CPU time
// while it waited stays a small part of the wait.
TEST_P(AsCompleted, TimeoutThenRetry) {
  Events ev;
  mpp::Pool pool(workers());
  std::vector<mpp::AsyncResult<int>> rs;
  for (int i = 0; i < 5; ++i) rs.push_back(pool.apply_async(plus_one, i));
  // Last: a task queued behind it on its worker would wait for it (as in Python).
  rs.push_back(pool.apply_async(wait_event, 3));
  auto range = mpp::as_completed(rs, 300ms);
  auto it = range.begin();
  int ready = 0;
  rusage before{};
  getrusage(RUSAGE_THREAD, &before);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    for (; it != range.end(); ++it) {
      EXPECT_NE(&*it, &rs[5]);
      ++ready;
    }
    ADD_FAILURE() << "no TimeoutError";
  } catch (const mpp::TimeoutError&) {
  }
  const auto wall = std::chrono::steady_clock::now() - t0;
  rusage after{};
  getrusage(RUSAGE_THREAD, &after);
  auto cpu = [](const rusage& u) {
    return std::chrono::seconds(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           std::chrono::microseconds(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
  };
  EXPECT_EQ(ready, 5);
  EXPECT_LT(cpu(after) - cpu(before), wall / 2) << "as_completed spins while it waits";
  ev[3].set();
  rs[5].wait();
  ++it;  // retries: the deadline passed, but the last one is ready now
  ASSERT_FALSE(it == range.end());
  EXPECT_EQ(&*it, &rs[5]);
  EXPECT_EQ(it->get(), 3);
  ++it;
  EXPECT_TRUE(it == range.end());
}

TEST_P(AsCompleted, EmptyAndMovedFrom) {
  mpp::Pool pool(workers());
  std::vector<mpp::AsyncResult<int>> none;
  int n = 0;
  for (auto& r : mpp::as_completed(none)) {
    (void)r;
    ++n;
  }
  EXPECT_EQ(n, 0);
  std::vector<mpp::AsyncResult<int>> rs;
  rs.push_back(pool.apply_async(plus_one, 1));
  auto moved = std::move(rs[0]);
  EXPECT_THROW((void)mpp::as_completed(rs), std::invalid_argument);
  EXPECT_EQ(moved.get(), 2);
}

// Several threads, each with its own as_completed over its own results of one pool.
TEST_P(AsCompleted, FromSeveralThreads) {
  mpp::Pool pool(workers());
  on_threads(4, [&](int t) {
    std::vector<mpp::AsyncResult<long long>> rs;
    for (int i = 0; i < 50; ++i) rs.push_back(pool.apply_async(square, t * 100 + i));
    long long sum = 0;
    int n = 0;
    for (auto& r : mpp::as_completed(rs, 60s)) {
      sum += r.get();
      ++n;
    }
    ASSERT_EQ(n, 50);
    long long want = 0;
    for (int i = 0; i < 50; ++i) want += square(t * 100 + i);
    ASSERT_EQ(sum, want);
  });
}

INSTANTIATE_TEST_SUITE_P(Workers, AsCompleted, ::testing::Values(1u, 2u, 5u));

// ---- Processes from many threads ---------------------------------------------------------------

int exit_with(int code) { throw mpp::SystemExit{code}; }

TEST(ProcessThreads, StartedAndJoinedFromManyThreadsAtOnce) {
  mpp::test::Watchdog dog(120s, "processes from threads");
  on_threads(6, [&](int t) {
    for (int i = 0; i < 10; ++i) {
      mpp::Process p(exit_with, t * 10 + i);
      p.start();
      p.join();
      ASSERT_EQ(p.exitcode(), t * 10 + i);
    }
  });
  EXPECT_TRUE(mpp::test::zombie_children().empty());
}

// A daemon child dies with the parent process, not with the thread that started it (the
// parent-death signal follows threads): started from a thread that then exits, it still runs to
// its own end when released.
int wait_then_exit(int code) {
  g_events[4].set();  // set up (parent-death signal armed): the target runs after that
  g_events[5].wait();
  throw mpp::SystemExit{code};
}

TEST(ProcessThreads, DaemonOutlivesTheThreadThatStartedIt) {
  mpp::test::Watchdog dog(120s, "daemon from a thread");
  Events ev;
  mpp::ProcessOptions o;
  o.daemon = true;
  mpp::Process p(o, wait_then_exit, 7);
  std::thread([&] {
    p.start();
    ev[4].wait();
  }).join();
  // The signal was sent as the thread exited; the child's handler saw its parent alive.
  ev[5].set();
  p.join();
  EXPECT_EQ(p.exitcode(), 7);
}

// ---- the logger program of the issue -----------------------------------------------------------

// A logging thread takes this mutex in a loop; pool tasks log too. A worker forked while the
// logger holds it would inherit it locked and hang at its first log line.
std::mutex g_log_mutex;
std::vector<int>* g_log = nullptr;

int logged_task(int i) {
  {
    const std::lock_guard lk(g_log_mutex);
    static std::vector<int> own;  // a forkserver worker is a fresh program: g_log is null there
    std::vector<int>* log = g_log != nullptr ? g_log : &own;
    log->push_back(i);
    if (log->size() > 64) log->clear();
  }
  if (i % 50 == 7) std::raise(SIGSEGV);  // 1 in 50 crashes its worker
  return i * 2;
}

// The pool is created before the thread (so its first workers are clean forks), under the default
// start method (fork; forkserver in the run tsan_pool_threads_forkserver). Every replacement worker
// (20 crashes over 1,000 tasks) is forked after the logger started: exactly the crashed tasks may
// be lost, nothing may hang. Replacements come from the pool's zygote (forked with the pool, before
// the logger), so none inherits g_log_mutex locked (test_start_method.cpp has a
// forkserver pool created after the logger started).
TEST_P(PoolThreads, LoggerThreadAndCrashingTasks) {
  std::vector<int> log;
  g_log = &log;
  mpp::PoolOptions o;
  o.processes = workers();
  o.task_timeout = 2s;  // a hung replacement fails its task instead of hanging the test
  mpp::Pool pool(o);
  std::atomic<bool> stop{false};
  std::thread logger([&] {
    while (!stop) {
      const std::lock_guard lk(g_log_mutex);
      log.push_back(-1);
      if (log.size() > 64) log.clear();
    }
  });
  std::atomic<int> ok{0};
  std::atomic<int> lost{0};
  std::atomic<int> bad{-1};  // a task lost that did not crash: the test has failed
  on_threads(4, [&](int t) {
    std::vector<mpp::AsyncResult<int>> rs;
    for (int i = t; i < 1000; i += 4) rs.push_back(pool.apply_async(logged_task, i));
    for (std::size_t k = 0; k < rs.size() && bad < 0; ++k) {
      const int i = t + static_cast<int>(k) * 4;
      try {
        if (rs[k].get() == i * 2) ++ok;
      } catch (const mpp::WorkerLost&) {
        ++lost;
        if (i % 50 != 7) bad = i;
      }
    }
  });
  pool.terminate();  // what is left after a failure
  stop = true;
  logger.join();
  g_log = nullptr;
  EXPECT_EQ(ok.load(), 980);
  EXPECT_EQ(lost.load(), 20);
  EXPECT_EQ(bad.load(), -1) << "a task was lost that did not crash";
}

}  // namespace

// Own main: mpp::init first (a forkserver worker is a fresh execution of this binary). With
// MPP_TEST_START_METHOD=forkserver the tests that pass only functions (the 8-thread mix, the
// logger program) run again with forkserver workers (ctest tsan_pool_threads_forkserver).
int main(int argc, char** argv) {
  mpp::init(argc, argv);
  if (const char* m = std::getenv("MPP_TEST_START_METHOD");
      m != nullptr && std::string(m) == "forkserver") {
    mpp::set_start_method(mpp::StartMethod::forkserver);
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
