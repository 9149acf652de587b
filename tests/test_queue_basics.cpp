// Queue tests (<mpp/queue.hpp>): Queue and JoinableQueue semantics: FIFO, types, bounds, batched
// forms, close, wake-ups of sleeping getters and putters, task_done and join.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "mpp/process.hpp"
#include "mpp/queue.hpp"
#include "queue_test_util.hpp"
#include "shm/ring.hpp"

using namespace std::chrono_literals;

namespace {

using mpp::test::NoLeaks;
using mpp::test::SharedCounters;

TEST(Queue, FifoAndTypes) {
  mpp::Queue<std::string> q;
  q.put("a");
  q.put(std::string(1000, 'x'));
  q.put("");
  EXPECT_EQ(q.size(), 3u);
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(q.get(), "a");
  EXPECT_EQ(q.get(), std::string(1000, 'x'));
  EXPECT_EQ(q.get(), "");
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.try_get().has_value());
  EXPECT_FALSE(q.get(10ms).has_value());

  mpp::Queue<std::pair<int, std::vector<double>>> q2(mpp::QueueOptions{});
  q2.put({7, {1.5, 2.5}});
  auto v = q2.get();
  EXPECT_EQ(v.first, 7);
  EXPECT_EQ(v.second, (std::vector<double>{1.5, 2.5}));
}

TEST(Queue, CopiesShareTheQueue) {
  mpp::Queue<int> a;
  mpp::Queue<int> b = a;
  a.put(5);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.get(), 5);
  EXPECT_TRUE(a.empty());
}

TEST(Queue, MaxsizeBoundsItems) {
  mpp::Queue<int> q(2);
  EXPECT_TRUE(q.try_put(1));
  EXPECT_TRUE(q.put(2, 1ms));
  EXPECT_TRUE(q.full());
  EXPECT_FALSE(q.try_put(3));
  EXPECT_FALSE(q.put(3, 5ms));
  EXPECT_EQ(q.get(), 1);
  EXPECT_FALSE(q.full());
  EXPECT_TRUE(q.try_put(3));
  EXPECT_EQ(q.get(), 2);
  EXPECT_EQ(q.get(), 3);
}

TEST(Queue, CapacityBoundsBytesAndLimitsItemSize) {
  mpp::Queue<std::string> q(mpp::QueueOptions{.capacity_bytes = 100});
  EXPECT_EQ(q.capacity_bytes(), 128u);
  EXPECT_EQ(q.max_item_bytes(), 56u);
  EXPECT_THROW(q.put(std::string(200, 'x')), std::invalid_argument);
  int n = 0;
  while (q.try_put("0123456789")) ++n;
  EXPECT_GT(n, 0);
  EXPECT_LT(n, 128 / 16 + 1);
  EXPECT_TRUE(q.full());
  for (int i = 0; i < n; ++i) EXPECT_EQ(q.get(), "0123456789");
  EXPECT_THROW((mpp::Queue<int>(mpp::QueueOptions{.capacity_bytes = std::size_t{1} << 40})),
               std::invalid_argument);
}

TEST(Queue, EmptyRingReuseKeepsFullCapacity) {
  // A queue that was drained restarts at the front of its ring (ring.hpp, "recycling"); that
  // must never shrink what it can hold: a single process can still fill it to capacity.
  mpp::Queue<std::uint64_t> q(mpp::QueueOptions{.capacity_bytes = 1 << 20});
  const std::size_t fits = (1 << 20) / 16;
  for (int round = 0; round < 4; ++round) {
    std::size_t n = 0;
    while (q.try_put(n)) ++n;
    EXPECT_EQ(n, fits) << "round " << round;
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(q.get(), i);
    // Leave the ring empty at a different offset each round.
    for (int k = 0; k < 5000 * round + 4099; ++k) {
      q.put(1);
      (void)q.get();
    }
  }
}

TEST(Queue, BatchedForms) {
  mpp::Queue<std::uint64_t> q(mpp::QueueOptions{.capacity_bytes = 1 << 16});
  std::vector<std::uint64_t> in(1000);
  std::iota(in.begin(), in.end(), 1);
  EXPECT_EQ(q.put_many(in), 1000u);
  std::vector<std::uint64_t> out;
  EXPECT_EQ(q.get_many(out, 10), 10u);
  EXPECT_EQ(q.try_get_many(out, 5000), 990u);
  EXPECT_EQ(out, in);
  EXPECT_EQ(q.try_get_many(out, 10), 0u);
  EXPECT_EQ(q.get_many(out, 10, 5ms), 0u);
  // More than the ring holds at once: put_many blocks until a consumer makes room.
  std::vector<std::uint64_t> big(20000);
  std::iota(big.begin(), big.end(), 0);
  mpp::Process consumer([q]() mutable {
    std::vector<std::uint64_t> got;
    while (got.size() < 20000) q.get_many(got, 333);
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (got[i] != i) std::_Exit(3);
    }
  });
  consumer.start();
  EXPECT_EQ(q.put_many(big), big.size());
  consumer.join();
  EXPECT_EQ(consumer.exitcode(), 0);
}

TEST(Queue, CloseDrainsThenThrows) {
  mpp::Queue<int> q;
  q.put(1);
  q.put(2);
  q.close();
  q.close();  // idempotent
  EXPECT_TRUE(q.closed());
  EXPECT_THROW(q.put(3), mpp::QueueClosed);
  EXPECT_THROW((void)q.try_put(3), mpp::QueueClosed);
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.try_get(), 2);
  EXPECT_THROW((void)q.get(), mpp::QueueClosed);
  EXPECT_THROW((void)q.try_get(), mpp::QueueClosed);
  std::vector<int> out;
  EXPECT_THROW(q.get_many(out, 5), mpp::QueueClosed);
}

TEST(Queue, CloseWakesBlockedGettersAndPutters) {
  mpp::test::Watchdog dog(60s, "CloseWakesBlockedGettersAndPutters");
  NoLeaks leaks;
  for (int waiters : {1, 3}) {
    mpp::Queue<int> q(1);
    q.put(0);  // full: putters block
    mpp::Queue<int> empty;
    std::vector<mpp::Process> procs;
    for (int i = 0; i < waiters; ++i) {
      procs.emplace_back([empty]() mutable {
        try {
          (void)empty.get();
        } catch (const mpp::QueueClosed&) {
          std::_Exit(7);
        }
        std::_Exit(1);
      });
      procs.emplace_back([q]() mutable {
        try {
          q.put(1);
        } catch (const mpp::QueueClosed&) {
          std::_Exit(7);
        }
        std::_Exit(1);
      });
    }
    for (auto& p : procs) p.start();
    std::this_thread::sleep_for(50ms);  // let them block (not a timing assertion)
    empty.close();
    q.close();
    for (auto& p : procs) {
      p.join();
      EXPECT_EQ(p.exitcode(), 7);
    }
  }
  leaks.check();
}

// A sleeping consumer must be woken by the put that feeds it. Producers skip their StoreLoad
// fence (Ring::put_publish_unlock's fenceless path; sleepers issue membarrier instead), so this
// sends items with pauses longer than a consumer's spin, making it fall asleep before most
// puts, and counts sleeps that ran a whole slice (100 ms) although an item was there: a lost
// wake-up. One may come from the machine itself (a process not scheduled for 100 ms). With the
// wake path disabled this counts 4 per round (each late wake-up lets a backlog build, so the
// count is about the round's length / 100 ms), with it working 0.
TEST(Queue, ConsumersFallingAsleepAroundPutsAreWoken) {
  mpp::test::Watchdog dog(120s, "ConsumersFallingAsleepAroundPutsAreWoken");
  for (int producers : {1, 2}) {
    mpp::Queue<std::uint64_t> q;
    constexpr int kPerProducer = 60;
    std::vector<mpp::Process> procs;
    for (int p = 0; p < producers; ++p) {
      procs.emplace_back([q, p]() mutable {
        std::uint64_t x = static_cast<std::uint64_t>(p) + 1;
        for (int i = 0; i < kPerProducer; ++i) {
          x = x * 6364136223846793005ULL + 1442695040888963407ULL;
          // 3-8 ms: longer than a consumer's adaptive spin (which shrinks after each sleep), so
          // it is asleep when nearly every put arrives.
          std::this_thread::sleep_for(std::chrono::microseconds(3000 + (x >> 33) % 5000));
          q.put(static_cast<std::uint64_t>(i));
        }
      });
    }
    for (auto& pr : procs) pr.start();
    const std::uint64_t before = mpp::shm::Ring::late_data_wakeups();
    std::uint64_t sum = 0;
    for (int i = 0; i < producers * kPerProducer; ++i) sum += q.get();
    const std::uint64_t lost = mpp::shm::Ring::late_data_wakeups() - before;
    for (auto& pr : procs) {
      pr.join();
      EXPECT_EQ(pr.exitcode(), 0);
    }
    EXPECT_EQ(sum, static_cast<std::uint64_t>(producers) * kPerProducer * (kPerProducer - 1) / 2);
    EXPECT_LE(lost, 1u) << "sleeps that missed their wake-up, " << producers << " producer(s)";
  }
}

// The mirror image: a producer asleep for space must be woken by the get() that frees enough of
// it, including on the fenceless get path (consumer far behind: plain unlock, no fence), not be
// left to its 100 ms slice. Each round the consumer frees just over a quarter of the ring (the
// wake-up threshold) while staying far behind, then pauses longer than a slice: a missed
// wake-up ends that sleep by its timeout, with the space free, and the producer counts it.
TEST(Queue, ProducersFallingAsleepAroundGetsAreWoken) {
  mpp::test::Watchdog dog(120s, "ProducersFallingAsleepAroundGetsAreWoken");
  constexpr std::size_t kRing = 64 << 10;
  for (std::size_t payload : {3000, 5000}) {
    const std::size_t per_round = kRing / 4 / payload + 1;  // crosses the wake-up threshold
    constexpr int kRounds = 8;
    const std::size_t items = kRing / payload + per_round * kRounds;
    mpp::Queue<std::string> q(mpp::QueueOptions{.capacity_bytes = kRing});
    auto item = [payload](std::size_t i) {
      return std::string(payload, static_cast<char>('a' + i % 26));
    };
    mpp::Process producer([q, items, item]() mutable {
      const std::uint64_t before = mpp::shm::Ring::late_space_wakeups();
      for (std::size_t i = 0; i < items; ++i) q.put(item(i));
      const std::uint64_t lost = mpp::shm::Ring::late_space_wakeups() - before;
      std::_Exit(static_cast<int>(std::min<std::uint64_t>(lost, 100)));
    });
    producer.start();
    std::this_thread::sleep_for(50ms);  // the producer fills the ring and falls asleep
    std::size_t got = 0;
    for (int r = 0; r < kRounds; ++r) {
      for (std::size_t k = 0; k < per_round; ++k, ++got) ASSERT_EQ(q.get(), item(got));
      std::this_thread::sleep_for(150ms);  // longer than the producer's sleep slice
    }
    for (; got < items; ++got) ASSERT_EQ(q.get(), item(got));
    producer.join();
    // The exit status is the number of sleeps that missed their wake-up.
    EXPECT_GE(producer.exitcode().value_or(-1), 0);
    EXPECT_LE(producer.exitcode().value_or(-1), 1) << "payload " << payload;
  }
}

TEST(JoinableQueue, JoinCountsTheItemsOfEveryProducersLane) {
  mpp::test::Watchdog dog(60s, "JoinCountsTheItemsOfEveryProducersLane");
  NoLeaks leaks;
  // Three producer processes (three lanes) and two consumers: join() must wait for the items of
  // every lane, and task_done() must accept exactly as many calls as all lanes together got.
  constexpr unsigned kProducers = 3;
  constexpr int kPer = 200;
  mpp::JoinableQueue<int> q;
  SharedCounters done(1);
  std::vector<mpp::Process> ws;
  for (unsigned w = 0; w < 2; ++w) {
    ws.emplace_back([q, &done]() mutable {
      try {
        for (;;) {
          (void)q.get();
          done[0].fetch_add(1);
          q.task_done();
        }
      } catch (const mpp::QueueClosed&) {
      }
    });
  }
  for (auto& w : ws) w.start();
  std::vector<mpp::Process> ps;
  for (unsigned p = 0; p < kProducers; ++p) {
    ps.emplace_back([q]() mutable {
      for (int i = 0; i < kPer; ++i) q.put(i);
    });
  }
  for (auto& p : ps) p.start();
  for (auto& p : ps) p.join();
  q.join();
  EXPECT_EQ(done[0].load(), std::uint64_t{kProducers} * kPer);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_THROW(q.task_done(), std::logic_error);  // one more than all lanes got
  q.close();
  for (auto& w : ws) w.join();
  leaks.check();
}

TEST(JoinableQueue, JoinWaitsForEveryTaskDone) {
  mpp::test::Watchdog dog(60s, "JoinableQueue");
  NoLeaks leaks;
  for (unsigned workers : {1u, 3u}) {
    mpp::JoinableQueue<int> q;
    SharedCounters done(1);
    std::vector<mpp::Process> ws;
    for (unsigned w = 0; w < workers; ++w) {
      ws.emplace_back([q, &done]() mutable {
        try {
          for (;;) {
            int v = q.get();
            std::this_thread::sleep_for(std::chrono::microseconds(v % 50));
            done[0].fetch_add(1);
            q.task_done();
          }
        } catch (const mpp::QueueClosed&) {
        }
      });
    }
    for (auto& w : ws) w.start();
    for (int i = 0; i < 300; ++i) q.put(i);
    q.join();
    EXPECT_EQ(done[0].load(), 300u);  // join returned only after all 300 task_done calls
    EXPECT_EQ(q.unfinished_tasks(), 0u);
    EXPECT_TRUE(q.join(1ms));
    q.close();
    for (auto& w : ws) w.join();
  }
  mpp::JoinableQueue<int> q;
  EXPECT_THROW(q.task_done(), std::logic_error);
  q.put(1);
  EXPECT_FALSE(q.join(20ms));
  (void)q.get();
  q.task_done();
  EXPECT_THROW(q.task_done(), std::logic_error);
  leaks.check();
}

}  // namespace
