// Queue tests (<mpp/queue.hpp>): processes killed inside put() and get(), producers that exit or
// are killed, signals during waits.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "mpp/process.hpp"
#include "mpp/queue.hpp"
#include "queue_test_util.hpp"
#include "shm/ring_lock.hpp"

using namespace std::chrono_literals;

namespace {

using mpp::test::NoLeaks;
using mpp::test::SharedCounters;

TEST(QueueFaults, ProducerKilledMidPutNeverTearsAndQueueKeepsWorking) {
  mpp::test::Watchdog dog(150s, "ProducerKilledMidPut");
  NoLeaks leaks;
  // Copying one item into fresh ring pages takes tens of milliseconds (first touch of ~6000
  // pages), so the producer spends nearly all its time inside put() holding the producer lock.
  constexpr std::size_t kBig = 24 << 20;
  const std::uint64_t takeovers_before = mpp::shm::RingLock::takeovers();
  constexpr int kRounds = 3;
  for (int round = 0; round < kRounds; ++round) {
    mpp::Queue<std::string> q(mpp::QueueOptions{.capacity_bytes = 256 << 20});
    mpp::Process victim([&]() {
      const std::string items[2] = {std::string(kBig, 'a'), std::string(kBig, 'b')};
      for (int i = 0;; ++i) q.put(items[i % 2]);
    });
    victim.start();
    for (int i = 0; i < 2; ++i) {
      std::string s = q.get();
      ASSERT_EQ(s.size(), kBig);
      EXPECT_EQ(s.find_first_not_of(s[0]), std::string::npos);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(round * 2));
    victim.kill();
    victim.join();
    EXPECT_EQ(victim.exitcode(), -SIGKILL);
    // Whatever it had published is whole; what it was copying never shows.
    while (auto s = q.try_get()) {
      ASSERT_EQ(s->size(), kBig);
      EXPECT_EQ(s->find_first_not_of((*s)[0]), std::string::npos);
    }
    // The queue works for everyone else (this process puts to its own lane, so nothing waits for
    // the dead producer's lock here).
    q.put("after");
    q.put(std::string(1000, 'z'));
    EXPECT_EQ(q.get(), "after");
    EXPECT_EQ(q.get(), std::string(1000, 'z'));
    EXPECT_TRUE(q.empty());
    // close() must wait out every put in progress, so it takes the dead producer's lane lock over.
    q.close();
    EXPECT_THROW(q.put("late"), mpp::QueueClosed);
    EXPECT_THROW((void)q.get(), mpp::QueueClosed);
  }
  // At least one kill must have hit a put() in progress, or this test tested nothing.
  EXPECT_GE(mpp::shm::RingLock::takeovers() - takeovers_before, 1u);
  leaks.check();
}

TEST(QueueFaults, ConsumerKilledInsideGetLeavesTheItemQueued) {
  mpp::test::Watchdog dog(150s, "ConsumerKilledInsideGet");
  NoLeaks leaks;
  // Decoding a 64 MiB string into fresh memory takes a good fraction of a second (first touch
  // of 16k pages), so a consumer killed shortly after the item was published dies inside get().
  // On a loaded machine it may not have woken up yet: then retry with a longer delay.
  constexpr std::size_t kBig = 64 << 20;
  bool killed_inside_get = false;
  for (int round = 0; round < 4 && !killed_inside_get; ++round) {
    const std::uint64_t takeovers_before = mpp::shm::RingLock::takeovers();
    mpp::Queue<std::string> q(mpp::QueueOptions{.capacity_bytes = 256 << 20});
    SharedCounters got(1);
    mpp::Process consumer([&]() {
      std::string s = q.get();
      got[0].fetch_add(1);
      std::_Exit(s.size() == kBig ? 0 : 1);
    });
    consumer.start();
    q.put(std::string(kBig, 'k'));
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * (round + 1)));
    consumer.kill();
    consumer.join();
    if (got[0].load() == 0) {
      // It died before get() returned: the item is still queued, whole, for the next consumer.
      std::string s = q.get();
      EXPECT_EQ(s.size(), kBig);
      EXPECT_EQ(s.find_first_not_of('k'), std::string::npos);
      killed_inside_get = mpp::shm::RingLock::takeovers() > takeovers_before;
    } else {
      EXPECT_EQ(consumer.exitcode(), 0);  // it got the item whole before the kill
    }
    EXPECT_TRUE(q.empty());
  }
  // At least one kill must have hit a get() in progress (its lock was taken over), or this test
  // tested nothing.
  EXPECT_TRUE(killed_inside_get);
  leaks.check();
}

TEST(QueueFaults, GetThrowsWhenEveryProducerHasExited) {
  mpp::test::Watchdog dog(60s, "GetThrowsWhenEveryProducerHasExited");
  NoLeaks leaks;
  for (unsigned producers : {1u, 4u}) {
    mpp::Queue<int> q;
    std::vector<mpp::Process> ps;
    for (unsigned p = 0; p < producers; ++p) {
      ps.emplace_back([q, p]() mutable {
        for (int i = 0; i < 100; ++i) q.put(static_cast<int>(p) * 1000 + i);
      });
    }
    for (auto& p : ps) p.start();
    int got = 0;
    EXPECT_THROW(
        {
          for (;;) {
            (void)q.get();
            ++got;
          }
        },
        mpp::QueueClosed);
    EXPECT_EQ(got, static_cast<int>(producers) * 100);
    for (auto& p : ps) p.join();
  }
  leaks.check();
}

TEST(QueueFaults, GetThrowsWhenTheProducerIsKilled) {
  mpp::test::Watchdog dog(60s, "GetThrowsWhenTheProducerIsKilled");
  mpp::Queue<int> q;
  mpp::Process p([q]() mutable {
    q.put(1);
    for (;;) pause();
  });
  p.start();
  EXPECT_EQ(q.get(), 1);
  // Alive but silent: a timed get just times out (no false QueueClosed).
  EXPECT_FALSE(q.get(300ms).has_value());
  p.kill();
  EXPECT_THROW((void)q.get(), mpp::QueueClosed);
  p.join();
}

TEST(QueueFaults, ProcessThatPutIsNeverToldNobodyCanPut) {
  mpp::Queue<int> q;
  mpp::Process p([] {});
  p.start();
  p.join();
  q.put(1);
  EXPECT_EQ(q.get(), 1);
  EXPECT_FALSE(q.get(250ms).has_value());
}

volatile sig_atomic_t g_signals = 0;
void on_usr1(int) { g_signals = g_signals + 1; }

TEST(QueueFaults, SignalsDuringWaitsLoseNothing) {
  mpp::test::Watchdog dog(90s, "SignalsDuringWaitsLoseNothing");
  struct sigaction sa {};
  sa.sa_handler = &on_usr1;  // no SA_RESTART: every sleep returns EINTR
  sigemptyset(&sa.sa_mask);
  struct sigaction old {};
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  g_signals = 0;
  constexpr int kItems = 3000;
  mpp::Queue<int> q(mpp::QueueOptions{.maxsize = 4});
  mpp::Queue<int> back(mpp::QueueOptions{.maxsize = 4});
  // The child is slow on purpose so the parent sleeps in get() and in put() (back is bounded).
  mpp::Process child([q, back]() mutable {
    struct sigaction sa2 {};
    sa2.sa_handler = &on_usr1;
    sigemptyset(&sa2.sa_mask);
    sigaction(SIGUSR1, &sa2, nullptr);
    for (int i = 0; i < kItems; ++i) {
      if (i % 100 == 0) std::this_thread::sleep_for(2ms);
      q.put(i);
      if (back.get() != i) std::_Exit(4);
    }
  });
  child.start();
  std::atomic<bool> stop{false};
  const pid_t me = getpid();
  const pid_t cpid = child.pid();
  std::thread pester([&] {
    while (!stop.load()) {
      kill(me, SIGUSR1);
      kill(cpid, SIGUSR1);
      std::this_thread::sleep_for(200us);
    }
  });
  long sum = 0;
  for (int i = 0; i < kItems; ++i) {
    const int v = q.get();
    EXPECT_EQ(v, i);
    sum += v;
    back.put(v);
  }
  stop.store(true);
  pester.join();
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
  EXPECT_EQ(sum, static_cast<long>(kItems) * (kItems - 1) / 2);
  EXPECT_GT(g_signals, 0);
  sigaction(SIGUSR1, &old, nullptr);
}

}  // namespace
