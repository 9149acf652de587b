// The one futex waiter of src/shm (shm::WaitWord) and the one deadline type (shm::Deadline).
// Threads stand in for processes so that ThreadSanitizer checks the wake-up protocol: a waiter
// that sleeps with no slice limit must be woken by the notify that follows the state change it
// did not see yet (a lost wake-up hangs the test, and the watchdog fails it).
#include "shm/wait_word.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "shm/deadline.hpp"
#include "test_util.hpp"

namespace {

using mpp::shm::Deadline;
using mpp::shm::WaitWord;
using mpp::shm::WakerFence;
using namespace std::chrono_literals;

TEST(DeadlineTest, ForeverPollAndAfter) {
  EXPECT_TRUE(Deadline::forever().is_forever());
  EXPECT_TRUE(Deadline{}.is_forever());
  EXPECT_EQ(Deadline::forever().remaining(), std::chrono::nanoseconds::max());
  EXPECT_FALSE(Deadline::forever().passed());
  EXPECT_EQ(Deadline::forever().next_slice(100ms), std::chrono::nanoseconds(100ms));

  EXPECT_TRUE(Deadline::poll().is_poll());
  EXPECT_TRUE(Deadline::poll().passed());
  EXPECT_FALSE(Deadline::poll().next_slice(100ms).has_value());

  // Zero and negative timeouts are a poll; one too large to represent is forever.
  EXPECT_TRUE(Deadline::after(0ns).is_poll());
  EXPECT_TRUE(Deadline::after(-5s).is_poll());
  EXPECT_TRUE(Deadline::after(std::chrono::nanoseconds::max()).is_forever());
  EXPECT_TRUE(Deadline::at(Deadline::Clock::time_point::max()).is_forever());

  const Deadline d = Deadline::after(1h);
  EXPECT_FALSE(d.is_forever());
  EXPECT_FALSE(d.passed());
  EXPECT_LE(d.remaining(), std::chrono::nanoseconds(1h));
  EXPECT_GT(d.remaining(), std::chrono::nanoseconds(59min));
  EXPECT_EQ(d.next_slice(10ms), std::chrono::nanoseconds(10ms));

  const Deadline past = Deadline::at(Deadline::Clock::now() - 1ms);
  EXPECT_TRUE(past.passed());
  EXPECT_FALSE(past.next_slice(10ms).has_value());
}

TEST(WaitWordTest, SleepWhileTimesOutAndSeesAChangedWord) {
  WaitWord w;
  EXPECT_EQ(w.sleep_while(0, 1ms), mpp::sys::WaitResult::timed_out);
  w.word().store(1);
  // The word no longer holds 0: no sleep at all.
  EXPECT_EQ(w.sleep_while(0, std::chrono::nanoseconds::max()), mpp::sys::WaitResult::woken);
  EXPECT_FALSE(w.waiting());  // every sleeper unregistered
}

// Sequence form: consumers sleep (no slice limit) until `published` passes what they took;
// the producer publishes, then notifies with each WakerFence a caller may name.
class WaitWordStress : public ::testing::TestWithParam<int> {
 protected:
  mpp::test::Watchdog watchdog_{std::chrono::seconds(120), "wait_word tsan"};
};

TEST_P(WaitWordStress, NoWakeUpIsLost) {
  const int consumers = GetParam();
  constexpr std::uint64_t kItems = 4000;
  WaitWord w;
  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> taken{0};
  std::vector<std::thread> ts;
  for (int c = 0; c < consumers; ++c) {
    ts.emplace_back([&] {
      for (;;) {
        std::uint64_t t = taken.load();
        if (t >= kItems) return;
        if (t < published.load()) {
          taken.compare_exchange_weak(t, t + 1);
          continue;
        }
        (void)w.sleep_unless(
            [&] { return taken.load() < published.load() || taken.load() >= kItems; },
            std::chrono::nanoseconds::max());
      }
    });
  }
  for (std::uint64_t i = 0; i < kItems; ++i) {
    published.fetch_add(1, std::memory_order_seq_cst);
    w.notify(1, i % 2 == 0 ? WakerFence::needed : WakerFence::after_locked_op);
    // Let consumers fall asleep now and then, so that wake-ups are really needed.
    if (i % 64 == 0) {
      while (taken.load() < published.load()) std::this_thread::yield();
    }
  }
  while (taken.load() < kItems) std::this_thread::yield();
  w.bump_and_wake();  // consumers asleep after the last item see taken >= kItems
  for (auto& t : ts) t.join();
  EXPECT_EQ(taken.load(), kItems);
  EXPECT_FALSE(w.waiting());
}

INSTANTIATE_TEST_SUITE_P(Consumers, WaitWordStress, ::testing::Values(1, 2, 4));

}  // namespace
