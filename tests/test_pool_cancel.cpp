// Tests of cancelling pool calls (<mpp/pool.hpp>, API.md section 9): AsyncResult::cancel() of a
// queued, a running and a completed task, map_async and imap cancelled mid-flight, an imap range
// dropped early, the restart cause in Pool::stats(). Tasks report what they did through a shared
// board; the test waits for them with a Semaphore and releases them with an Event (no sleeps).
// Each test runs under the fixture's watchdog at 1, 2 and 4 workers and checks that no worker,
// zombie, fd or mapping is left behind.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <new>
#include <numeric>
#include <ranges>
#include <thread>
#include <vector>

#include "mpp/pool.hpp"
#include "mpp/sync.hpp"
#include "pool_fixture.hpp"
#include "sys/mem.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int kItems = 4096;

// What the tasks did, in memory shared with the workers (mapped before the pool forks them).
struct Board {
  std::atomic<int> began[kItems];  // times input i started
  std::atomic<int> ran[kItems];    // times input i ran to its end
};

// The board, a semaphore each blocking task releases when it starts, and the event that lets
// blocked tasks finish. One per test, made before the pool; the tasks find it through g_env
// (workers are forks: the pointer is valid there).
struct CancelEnv {
  CancelEnv() : map(mpp::sys::map_anonymous_shared(sizeof(Board))) {
    board = new (map.data()) Board();
    g_env = this;
  }
  ~CancelEnv() { g_env = nullptr; }
  CancelEnv(const CancelEnv&) = delete;
  CancelEnv& operator=(const CancelEnv&) = delete;

  // Waits until `n` blocking tasks have started (bounded: a missing one fails the test).
  [[nodiscard]] bool wait_started(unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      if (!started.acquire(20000ms)) return false;
    }
    return true;
  }
  [[nodiscard]] int began_total() const {
    int t = 0;
    for (const auto& b : board->began) t += b.load();
    return t;
  }

  static inline CancelEnv* g_env = nullptr;
  mpp::sys::Mapping map;
  Board* board = nullptr;
  mpp::Semaphore started{0};
  mpp::Event go;
};

int mark(int i) {
  CancelEnv::g_env->board->began[i]++;
  CancelEnv::g_env->board->ran[i]++;
  return i;
}
// Starts, says so, then waits for `go` (60 s at most: a test that forgets it still ends).
int hold(int i) {
  auto* e = CancelEnv::g_env;
  e->board->began[i]++;
  e->started.release();
  (void)e->go.wait(60000ms);
  e->board->ran[i]++;
  return i;
}
// Input 0 returns at once, the others hold.
int hold_but_first(int i) { return i == 0 ? mark(i) : hold(i); }
// A 30 s task.
int sleep30(int i) {
  auto* e = CancelEnv::g_env;
  e->board->began[i]++;
  e->started.release();
  std::this_thread::sleep_for(30s);
  e->board->ran[i]++;
  return i;
}
// A 30 s task that ignores SIGTERM: only the SIGKILL after the grace stops it.
int sleep30_ignoring_sigterm(int i) {
  std::signal(SIGTERM, SIG_IGN);
  return sleep30(i);
}
int plus_one(int x) { return x + 1; }

std::uint64_t total_cancels(const mpp::PoolStats& s) {
  std::uint64_t n = 0;
  for (const auto& w : s.workers) n += w.cancels;
  return n;
}

// Drives the pool until `n` stopped workers were replaced (stats counts them when the parent
// reaps them). Bounded by the test's watchdog.
void wait_for_cancel_restarts(mpp::Pool& pool, std::uint64_t n) {
  while (total_cancels(pool.stats()) < n) (void)pool.apply(plus_one, 1);
}

// Every worker of the pool is alive and serving: `processes` tasks run at the same time.
void expect_all_workers_serve(mpp::Pool& pool, CancelEnv& env, int first_input) {
  const unsigned n = pool.processes();
  std::vector<mpp::AsyncResult<int>> rs;
  for (unsigned i = 0; i < n; ++i) rs.push_back(pool.apply_async(hold, first_input + int(i)));
  ASSERT_TRUE(env.wait_started(n)) << "not every worker took a task";
  env.go.set();
  for (unsigned i = 0; i < n; ++i) EXPECT_EQ(rs[i].get(), first_input + int(i));
  env.go.clear();
  auto out = pool.map(plus_one, std::views::iota(0, 500), 3);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(out[static_cast<std::size_t>(i)], i + 1);
}

// Submits f(input), waits until it runs, cancels it: cancel() is true and get() throws
// CancelledError.
template <class F>
void cancel_while_running(mpp::Pool& pool, CancelEnv& env, F f, int input) {
  auto r = pool.apply_async(f, input);
  ASSERT_TRUE(env.wait_started(1));
  EXPECT_TRUE(r.cancel());
  EXPECT_TRUE(r.cancelled());
  EXPECT_THROW((void)r.get(), mpp::CancelledError);
}

using PoolCancel = mpp::test::PoolFixture;

TEST_P(PoolCancel, CompletedTaskCannotBeCancelled) {
  CancelEnv env;
  mpp::Pool pool(workers());
  auto r = pool.apply_async(plus_one, 41);
  r.wait();
  EXPECT_FALSE(r.cancel());
  EXPECT_FALSE(r.cancelled());
  EXPECT_EQ(r.get(), 42);
  EXPECT_FALSE(r.cancel());  // after get(): still completed
  auto m = pool.map_async(plus_one, std::vector<int>{1, 2, 3});
  m.wait();
  EXPECT_FALSE(m.cancel());
  EXPECT_EQ(m.get(), (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(total_cancels(pool.stats()), 0u);
}

TEST_P(PoolCancel, QueuedTaskIsDroppedAndNeverRuns) {
  CancelEnv env;
  mpp::Pool pool(workers());
  const unsigned n = workers();
  std::vector<mpp::AsyncResult<int>> busy;
  for (unsigned i = 0; i < n; ++i) busy.push_back(pool.apply_async(hold, int(i)));
  ASSERT_TRUE(env.wait_started(n));
  // Every worker runs a hold: these queue (the first ones in the workers' rings, the rest in the
  // parent).
  auto dropped = pool.apply_async(mark, 100);
  auto kept = pool.apply_async(mark, 101);
  auto dropped2 = pool.apply_async(mark, 102);
  EXPECT_TRUE(dropped.cancel());
  EXPECT_TRUE(dropped.cancelled());
  EXPECT_TRUE(dropped.cancel());  // once cancelled, it stays so
  EXPECT_TRUE(dropped2.cancel());
  EXPECT_TRUE(dropped.ready());
  EXPECT_FALSE(dropped.successful());
  EXPECT_THROW((void)dropped.get(), mpp::CancelledError);
  EXPECT_THROW((void)dropped2.get(), mpp::CancelledError);
  EXPECT_FALSE(kept.cancelled());
  env.go.set();
  for (unsigned i = 0; i < n; ++i) EXPECT_EQ(busy[i].get(), int(i));
  EXPECT_EQ(kept.get(), 101);
  env.go.clear();
  expect_all_workers_serve(pool, env, 200);
  EXPECT_EQ(env.board->began[100].load(), 0) << "a cancelled queued task ran";
  EXPECT_EQ(env.board->began[102].load(), 0) << "a cancelled queued task ran";
  EXPECT_EQ(env.board->ran[101].load(), 1);
  // No worker was stopped for a task that was only queued.
  const auto s = pool.stats();
  EXPECT_EQ(total_cancels(s), 0u);
  EXPECT_EQ(s.restarts, 0u);
}

TEST_P(PoolCancel, RunningThirtySecondTaskIsStoppedAndItsWorkerReplaced) {
  mpp::test::Watchdog dog(std::chrono::seconds(10), "cancel of a 30 s task");
  CancelEnv env;
  mpp::Pool pool(workers());
  const auto pids_before = pool.worker_pids();
  auto r = pool.apply_async(sleep30, 7);
  ASSERT_TRUE(env.wait_started(1));
  EXPECT_TRUE(r.cancel());
  EXPECT_TRUE(r.cancelled());
  EXPECT_TRUE(r.ready());
  EXPECT_THROW((void)r.get(), mpp::CancelledError);
  wait_for_cancel_restarts(pool, 1);
  const auto s = pool.stats();
  EXPECT_EQ(total_cancels(s), 1u);
  EXPECT_EQ(s.restarts, 1u);
  std::uint64_t crashes = 0;
  for (const auto& w : s.workers) crashes += w.crashes;
  EXPECT_EQ(crashes, 0u) << "a cancel is not a crash";
  // One pid changed; the old process is gone (reaped: the fixture finds no zombie either).
  const auto pids_after = pool.worker_pids();
  ASSERT_EQ(pids_after.size(), pids_before.size());
  int changed = 0;
  for (std::size_t i = 0; i < pids_after.size(); ++i) changed += pids_after[i] != pids_before[i];
  EXPECT_EQ(changed, 1);
  EXPECT_EQ(env.board->ran[7].load(), 0);
  expect_all_workers_serve(pool, env, 300);
}

TEST_P(PoolCancel, TaskIgnoringSigtermIsKilledAfterTheGrace) {
  mpp::test::Watchdog dog(std::chrono::seconds(10), "cancel of a task ignoring SIGTERM");
  CancelEnv env;
  mpp::Pool pool(workers());
  cancel_while_running(pool, env, sleep30_ignoring_sigterm, 3);
  wait_for_cancel_restarts(pool, 1);
  EXPECT_EQ(pool.stats().restarts, 1u);
  expect_all_workers_serve(pool, env, 300);
}

TEST_P(PoolCancel, OtherCallsChunksOnAStoppedWorkerRunElsewhereExactlyOnce) {
  mpp::test::Watchdog dog(std::chrono::seconds(60), "cancel with other calls sharing the pool");
  CancelEnv env;
  mpp::Pool pool(workers());
  auto victim = pool.apply_async(sleep30, 4000);
  ASSERT_TRUE(env.wait_started(1));
  // Chunks of another call queue behind the 30 s task on its worker (and run on the others).
  auto other = pool.map_async(mark, std::views::iota(0, 300), 1);
  auto other2 = pool.map_async(mark, std::views::iota(300, 400), 7);
  EXPECT_TRUE(victim.cancel());
  EXPECT_THROW((void)victim.get(), mpp::CancelledError);
  const auto a = other.get();
  const auto b = other2.get();
  ASSERT_EQ(a.size(), 300u);
  ASSERT_EQ(b.size(), 100u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(a[static_cast<std::size_t>(i)], i);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(b[static_cast<std::size_t>(i)], 300 + i);
  for (int i = 0; i < 400; ++i) EXPECT_EQ(env.board->ran[i].load(), 1) << "input " << i;
  wait_for_cancel_restarts(pool, 1);
  expect_all_workers_serve(pool, env, 500);
}

TEST_P(PoolCancel, MapAsyncCancelledMidFlightStopsTheRest) {
  CancelEnv env;
  mpp::Pool pool(workers());
  const unsigned n = workers();
  auto m = pool.map_async(hold, std::views::iota(0, 200), 1);
  ASSERT_TRUE(env.wait_started(n));  // every worker runs one item, one more waits in its ring
  EXPECT_TRUE(m.cancel());
  EXPECT_THROW((void)m.get(), mpp::CancelledError);
  wait_for_cancel_restarts(pool, n);
  // Only the running items began; the queued ones were dropped, and none of them finished.
  EXPECT_EQ(env.began_total(), static_cast<int>(n));
  for (int i = 0; i < 200; ++i) EXPECT_EQ(env.board->ran[i].load(), 0) << "input " << i;
  EXPECT_EQ(total_cancels(pool.stats()), n);
  expect_all_workers_serve(pool, env, 1000);
}

TEST_P(PoolCancel, ImapRangeDroppedEarlyRunsNothingMoreAndKillsNothing) {
  CancelEnv env;
  mpp::Pool pool(workers());
  const unsigned n = workers();
  {
    auto range = pool.imap(hold_but_first, std::views::iota(0, 1000));
    auto it = range.begin();
    ASSERT_EQ(*it, 0);
    ASSERT_TRUE(env.wait_started(n));  // every worker holds one item, more wait in the rings
  }  // dropped: the queued items are dropped, the running ones finish
  env.go.set();
  EXPECT_EQ(pool.map(plus_one, std::vector<int>{1, 2, 3}), (std::vector<int>{2, 3, 4}));
  // Let the held items end (join waits for them), then count.
  pool.close();
  pool.join();
  EXPECT_EQ(env.began_total(), static_cast<int>(n) + 1);
  int ran = 0;
  for (int i = 1; i < 1000; ++i) ran += env.board->ran[i].load();
  EXPECT_EQ(ran, static_cast<int>(n)) << "the running items finish; nothing else ran";
  const auto s = pool.stats();
  EXPECT_EQ(total_cancels(s), 0u);
  EXPECT_EQ(s.restarts, 0u);
}

TEST_P(PoolCancel, ImapCancelStopsRunningItemsAndEndsWithCancelledError) {
  CancelEnv env;
  mpp::Pool pool(workers());
  const unsigned n = workers();
  auto range = pool.imap_unordered(hold_but_first, std::views::iota(0, 1000));
  auto it = range.begin();
  ASSERT_EQ(*it, 0);
  ASSERT_TRUE(env.wait_started(n));
  EXPECT_TRUE(range.cancel());
  EXPECT_TRUE(range.cancelled());
  ++it;
  ASSERT_FALSE(it == range.end());
  EXPECT_THROW((void)*it, mpp::CancelledError);
  ++it;
  EXPECT_TRUE(it == range.end());
  wait_for_cancel_restarts(pool, n);
  EXPECT_EQ(env.began_total(), static_cast<int>(n) + 1);
  expect_all_workers_serve(pool, env, 2000);
}

TEST_P(PoolCancel, CallableWithStateRunsOnItsOwnWorkersAndCancelsToo) {
  mpp::test::Watchdog dog(std::chrono::seconds(10), "cancel of a task with state");
  CancelEnv env;
  mpp::Pool pool(workers());
  const int base = 5;
  // get() also reaps the call's own workers.
  cancel_while_running(
      pool, env, [base](int x) { return sleep30(x) + base; }, 9);
  EXPECT_EQ(pool.apply([base](int x) { return x + base; }, 1), 6);
  EXPECT_EQ(total_cancels(pool.stats()), 0u);  // the pool's own workers were not involved
}

INSTANTIATE_TEST_SUITE_P(Workers, PoolCancel, ::testing::Values(1u, 2u, 4u));

}  // namespace
