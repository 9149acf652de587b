// Thread-based stress tests of the shared-memory synchronization algorithms (src/shm/sync_*), so
// that ThreadSanitizer checks their memory ordering. Plain (non-atomic) data is protected only by
// the primitive under test: a missing acquire/release shows up as a data race report.
#include "shm/sync_prims.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "shm/sync_lock.hpp"
#include "test_util.hpp"

namespace {

using mpp::shm::Deadline;

template <class State>
std::unique_ptr<State> make_state() {
  // Zeroed like fresh shared memory; the algorithms need nothing else before init().
  auto s = std::make_unique<State>();
  std::memset(static_cast<void*>(s.get()), 0, sizeof(State));
  return s;
}

template <class F>
void run_threads(int n, F f) {
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i) ts.emplace_back(f, i);
  for (auto& t : ts) t.join();
}

class SyncPrimsTsan : public ::testing::TestWithParam<int> {
 protected:
  mpp::test::Watchdog watchdog_{std::chrono::seconds(150), "sync tsan"};
};

TEST_P(SyncPrimsTsan, LockProtectsPlainData) {
  const int n = GetParam();
  auto lock = make_state<mpp::shm::SyncLock>();
  lock->init(mpp::shm::SyncLock::Kind::errorcheck);
  long counter = 0;
  run_threads(n, [&](int) {
    for (int k = 0; k < 20000; ++k) {
      ASSERT_EQ(lock->lock(), mpp::shm::Acquire::acquired);
      ++counter;
      ASSERT_TRUE(lock->unlock());
    }
  });
  EXPECT_EQ(counter, 20000L * n);
}

TEST_P(SyncPrimsTsan, SemaphoreAsMutexAndAsCounter) {
  const int n = GetParam();
  auto sem = make_state<mpp::shm::SemaphoreState>();
  sem->init(1, mpp::shm::SemaphoreState::kUnbounded);
  long counter = 0;
  run_threads(n, [&](int) {
    for (int k = 0; k < 20000; ++k) {
      ASSERT_TRUE(sem->acquire(Deadline::forever()));
      ++counter;
      ASSERT_TRUE(sem->release());
    }
  });
  EXPECT_EQ(counter, 20000L * n);
  EXPECT_EQ(sem->value(), 1u);

  // Producer/consumer handoff: each release publishes one slot.
  auto items = make_state<mpp::shm::SemaphoreState>();
  items->init(0, mpp::shm::SemaphoreState::kUnbounded);
  std::vector<long> slots(5000);
  std::thread producer([&] {
    for (std::size_t i = 0; i < slots.size(); ++i) {
      slots[i] = static_cast<long>(i) * 7;
      ASSERT_TRUE(items->release());
    }
  });
  long sum = 0;
  for (std::size_t i = 0; i < slots.size(); ++i) {
    ASSERT_TRUE(items->acquire(Deadline::forever()));
    sum += slots[i];
  }
  producer.join();
  EXPECT_EQ(sum, 7L * 5000 * 4999 / 2);
}

TEST_P(SyncPrimsTsan, BoundedSemaphoreNeverExceedsItsBound) {
  const int n = GetParam();
  auto sem = make_state<mpp::shm::SemaphoreState>();
  sem->init(2, 2);
  // Every release matches an acquire, so none may be refused, and the value stays within [0, 2].
  // (An unmatched release racing with these would legitimately take a slot that a later matched
  // release then finds full, so unmatched releases are only tried once the threads are done.)
  run_threads(n, [&](int) {
    for (int k = 0; k < 5000; ++k) {
      if (sem->try_acquire()) {
        ASSERT_LE(sem->value(), 1u);
        ASSERT_TRUE(sem->release());
      } else {
        ASSERT_TRUE(sem->acquire(Deadline::forever()));
        ASSERT_TRUE(sem->release());
      }
      ASSERT_LE(sem->value(), 2u);
    }
  });
  EXPECT_EQ(sem->value(), 2u);
  EXPECT_FALSE(sem->release()) << "a release beyond the bound must be refused";
  EXPECT_EQ(sem->value(), 2u);
}

TEST_P(SyncPrimsTsan, EventPublishesDataToEveryWaiter) {
  const int n = GetParam();
  for (int round = 0; round < 50; ++round) {
    auto ev = make_state<mpp::shm::EventState>();
    ev->init();
    long payload = 0;
    std::thread setter([&] {
      payload = round + 1;
      ev->set();
    });
    run_threads(n, [&](int) {
      ASSERT_TRUE(ev->wait(Deadline::forever()));
      ASSERT_EQ(payload, round + 1);
    });
    setter.join();
  }
}

TEST_P(SyncPrimsTsan, BarrierRoundsSeeEveryonesWrites) {
  const int n = GetParam();
  auto b = make_state<mpp::shm::BarrierState>();
  b->init(static_cast<std::uint32_t>(n));
  std::vector<long> cell(static_cast<std::size_t>(n));
  std::atomic<int> bad{0};
  run_threads(n, [&](int i) {
    for (long r = 1; r <= 500; ++r) {
      cell[static_cast<std::size_t>(i)] = r;
      b->wait();
      for (long c : cell)
        if (c != r) bad.fetch_add(1);
      b->wait();
    }
  });
  EXPECT_EQ(bad.load(), 0);
}

TEST_P(SyncPrimsTsan, ConditionHandsOffItemsUnderTheLock) {
  const int n = GetParam();
  auto lock = make_state<mpp::shm::SyncLock>();
  lock->init(mpp::shm::SyncLock::Kind::errorcheck);
  auto cv = make_state<mpp::shm::CondState>();
  cv->init();
  long items = 0;
  long consumed = 0;
  bool done = false;
  constexpr long kItems = 4000;
  std::vector<std::thread> consumers;
  for (int i = 0; i < n; ++i) {
    consumers.emplace_back([&] {
      (void)lock->lock();
      for (;;) {
        while (items == 0 && !done) {
          auto ticket = cv->prepare();
          lock->unlock();
          cv->sleep(ticket, Deadline::forever());
          (void)lock->lock();
        }
        if (items == 0) break;
        --items;
        ++consumed;
      }
      lock->unlock();
    });
  }
  for (long k = 0; k < kItems; ++k) {
    (void)lock->lock();
    ++items;
    cv->notify(1);
    lock->unlock();
  }
  (void)lock->lock();
  done = true;
  cv->notify_all();
  lock->unlock();
  for (auto& t : consumers) t.join();
  EXPECT_EQ(consumed, kItems);
}

TEST_P(SyncPrimsTsan, RecursiveLockCountsPerOwner) {
  const int n = GetParam();
  auto lock = make_state<mpp::shm::SyncLock>();
  lock->init(mpp::shm::SyncLock::Kind::recursive);
  long counter = 0;
  run_threads(n, [&](int) {
    for (int k = 0; k < 5000; ++k) {
      ASSERT_EQ(lock->lock(), mpp::shm::Acquire::acquired);
      ASSERT_EQ(lock->lock(), mpp::shm::Acquire::acquired);
      ++counter;
      ASSERT_TRUE(lock->unlock());
      ++counter;
      ASSERT_TRUE(lock->unlock());
    }
  });
  EXPECT_EQ(counter, 10000L * n);
}

TEST_P(SyncPrimsTsan, LockOfAnExitedThreadIsTakenOverOnce) {
  const int n = GetParam();
  auto lock = make_state<mpp::shm::SyncLock>();
  lock->init(mpp::shm::SyncLock::Kind::errorcheck);
  std::thread([&] { ASSERT_EQ(lock->lock(), mpp::shm::Acquire::acquired); }).join();
  std::atomic<int> told{0};
  run_threads(n, [&](int) {
    auto a = lock->lock();
    ASSERT_NE(a, mpp::shm::Acquire::timed_out);
    if (a == mpp::shm::Acquire::owner_died) told.fetch_add(1);
    ASSERT_TRUE(lock->unlock());
  });
  EXPECT_EQ(told.load(), 1);  // exactly one waiter took it over and was told
  EXPECT_EQ(lock->deaths(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Threads, SyncPrimsTsan, ::testing::Values(2, 4, 8));

}  // namespace
