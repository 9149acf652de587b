// Queue tests (<mpp/queue.hpp>): the table of processes attached to a queue, which decides that
// every producer left, and pid reuse: entries and lock holders of dead processes whose pid was
// given to another process.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>

#include "mpp/process.hpp"
#include "mpp/queue.hpp"
#include "queue_test_util.hpp"
#include "shm/ring.hpp"
#include "shm/ring_lock.hpp"
#include "sys/mem.hpp"
#include "sys/proc.hpp"

using namespace std::chrono_literals;

namespace {

using mpp::test::NoLeaks;

// How a child leaves: its target returns (mpp's exit hooks run), it calls std::_Exit (nothing
// runs), or it is SIGKILLed after putting.
enum class Leave { returns, exits, killed };

class QueueAttached : public ::testing::TestWithParam<Leave> {};

TEST_P(QueueAttached, GetStillSeesThatEveryProducerLeftAfterManyChildren) {
  mpp::test::Watchdog dog(170s, "GetStillSeesThatEveryProducerLeftAfterManyChildren");
  NoLeaks leaks;
  // More children than the table of attached processes has slots (1024), one after the other,
  // each putting one item. Then the parent takes them all, and the next get() must throw
  // QueueClosed (nobody is left who could put) instead of waiting forever: the table must not
  // have filled up with the entries of children that are gone.
  constexpr int kChildren = static_cast<int>(mpp::shm::kMaxAttached) + 100;
  mpp::Queue<int> q;
  for (int i = 0; i < kChildren; ++i) {
    mpp::Process child([q, i]() mutable {
      q.put(i);
      if (GetParam() == Leave::exits) std::_Exit(0);
      if (GetParam() == Leave::killed) raise(SIGKILL);
    });
    child.start();
    child.join();
  }
  long long sum = 0;
  for (int i = 0; i < kChildren; ++i) sum += q.get();
  EXPECT_EQ(sum, static_cast<long long>(kChildren) * (kChildren - 1) / 2);
  // The last get() runs on a thread, so that a hang is a failure here and not a stuck test.
  std::atomic<int> outcome{0};  // 1 QueueClosed, 2 an item, 3 another exception
  std::thread t([&] {
    try {
      (void)q.get();
      outcome = 2;
    } catch (const mpp::QueueClosed&) {
      outcome = 1;
    } catch (...) {
      outcome = 3;
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (outcome.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(outcome.load(), 1) << "get() did not see that every producer had left";
  if (outcome.load() == 0) q.close();  // release the thread
  t.join();
  leaks.check();
}

INSTANTIATE_TEST_SUITE_P(Leaves, QueueAttached,
                         ::testing::Values(Leave::returns, Leave::exits, Leave::killed),
                         [](const ::testing::TestParamInfo<Leave>& p) {
                           return std::string(p.param == Leave::returns ? "returns"
                                              : p.param == Leave::exits ? "exits"
                                                                        : "killed");
                         });

TEST(QueueAttachedTable, ADeadProcessWhosePidWasGivenToAnotherCountsAsDead) {
  // White-box, on a bare ring: pid 1 is always alive, but an entry for pid 1 with another start
  // time stands for an earlier process that had that pid (the kernel reuses pids once they wrap
  // around, after 32768 on this machine): it must not keep "every producer left" from holding.
  const std::uint32_t init_start = mpp::sys::process_start_time(1);
  if (init_start == 0) GTEST_SKIP() << "/proc/1/stat is not readable here";
  const std::size_t cap = mpp::shm::Ring::normalize_capacity(4096);
  auto mem = mpp::sys::map_anonymous_shared(mpp::shm::Ring::mapping_bytes(cap));
  mpp::shm::Ring ring = mpp::shm::Ring::create(mem.data(), cap, 0);
  const std::int32_t self = mpp::sys::self_pid();
  const mpp::shm::ProcessTag me{self, mpp::sys::self_start_time()};
  EXPECT_NE(me.start, 0u);
  EXPECT_EQ(me.start, mpp::sys::process_start_time(self));
  const int mine = ring.attach(me, /*is_child=*/false);
  ASSERT_GE(mine, 0);

  const mpp::shm::ProcessTag earlier_init{1, init_start + 1};
  const int stale = ring.attach(earlier_init, /*is_child=*/true);
  ASSERT_GE(stale, 0);
  EXPECT_TRUE(ring.others_all_dead(self));

  const mpp::shm::ProcessTag real_init{1, init_start};
  const int live = ring.attach(real_init, /*is_child=*/true);
  ASSERT_GE(live, 0);
  EXPECT_FALSE(ring.others_all_dead(self));
  ring.detach(live, real_init);
  EXPECT_TRUE(ring.others_all_dead(self));
  // Without a start time (0: unknown), the pid alone decides, as before.
  const int by_pid = ring.attach({1, 0}, /*is_child=*/true);
  ASSERT_GE(by_pid, 0);
  EXPECT_FALSE(ring.others_all_dead(self));
  ring.detach(by_pid, {1, 0});
  ring.detach(mine, me);
}

TEST(QueueRingLock, AHolderWhosePidWasGivenToAnotherProcessIsTakenOver) {
  mpp::test::Watchdog dog(60s, "AHolderWhosePidWasGivenToAnotherProcessIsTakenOver");
  using mpp::shm::RingLock;
  // pid 1 is always alive; a lock held under pid 1 with start-time bits that are not init's
  // stands for an earlier process that had pid 1 and died holding the lock.
  const std::uint32_t init_start = mpp::sys::process_start_time(1);
  if (init_start == 0) GTEST_SKIP() << "/proc/1/stat is not readable here";
  const std::int32_t me = RingLock::id_for(mpp::sys::self_pid(), mpp::sys::self_start_time());
  // 1..511 and not init's bits.
  const std::uint32_t wrong_bits = ((init_start & RingLock::kStartMask) % RingLock::kStartMask) + 1;
  {
    RingLock lock;
    ASSERT_EQ(lock.lock(RingLock::id_for(1, wrong_bits)), mpp::shm::Acquire::acquired);
    EXPECT_EQ(lock.owner(), 1);
    EXPECT_EQ(lock.lock(me), mpp::shm::Acquire::owner_died);  // after ~50 ms
    EXPECT_EQ(lock.owner(), mpp::sys::self_pid());
    lock.unlock();
  }
  {
    // Held by init itself (right start bits): a waiter must wait, not take it over.
    RingLock lock;
    ASSERT_EQ(lock.lock(RingLock::id_for(1, init_start)), mpp::shm::Acquire::acquired);
    std::atomic<int> got{0};  // 1 acquired, 2 owner_died
    std::thread waiter([&] {
      got = lock.lock(me) == mpp::shm::Acquire::acquired ? 1 : 2;
      lock.unlock();
    });
    std::this_thread::sleep_for(300ms);  // six dead-owner polls
    EXPECT_EQ(got.load(), 0);
    lock.unlock();  // on init's behalf
    waiter.join();
    EXPECT_EQ(got.load(), 1);
  }
}

TEST(QueueAttachedTable, AFullTableGivesTheSlotsOfDeadProcessesToNewOnes) {
  const std::size_t cap = mpp::shm::Ring::normalize_capacity(4096);
  auto mem = mpp::sys::map_anonymous_shared(mpp::shm::Ring::mapping_bytes(cap));
  mpp::shm::Ring ring = mpp::shm::Ring::create(mem.data(), cap, 0);
  const std::int32_t self = mpp::sys::self_pid();
  const mpp::shm::ProcessTag me{self, mpp::sys::self_start_time()};
  ASSERT_GE(ring.attach(me, false), 0);
  // A child that exits at once: its pid is dead (reaped) afterwards.
  mpp::Process child([] {});
  child.start();
  child.join();
  const mpp::shm::ProcessTag gone{static_cast<std::int32_t>(child.pid()), 0};
  // Fill every other slot with the dead child, as children that died without detaching would.
  for (std::size_t i = 1; i < mpp::shm::kMaxAttached; ++i) ASSERT_GE(ring.attach(gone, true), 0);
  // Full of dead entries: a new process still gets a slot, and "every producer left" still holds.
  const mpp::shm::ProcessTag real_init{1, mpp::sys::process_start_time(1)};
  const int slot = ring.attach(real_init, true);
  EXPECT_GE(slot, 0);
  if (slot >= 0) ring.detach(slot, real_init);
  EXPECT_TRUE(ring.others_all_dead(self));
}

}  // namespace
