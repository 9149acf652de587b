// Queue tests (<mpp/queue.hpp>): real-time order across processes (issue 16 part 5): the items of
// joined producers come before a later put; nothing is stranded behind sentinels.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

#include "mpp/process.hpp"
#include "mpp/queue.hpp"
#include "queue_test_util.hpp"

using namespace std::chrono_literals;

namespace {

using mpp::test::NoLeaks;
using mpp::test::SharedCounters;

// ---- real-time order across processes (issue 16 part 5) ------------------------------------

constexpr std::int64_t kSentinel = -1;

class QueueRealTimeOrder : public ::testing::TestWithParam<std::tuple<unsigned, bool>> {};

// Producers put and exit; the parent joins them and then puts a sentinel: everything they put
// comes out before it (a put that returned before another began is taken first), with get() and
// with get_many(). Before the fix the parent's lane was visited in turn with the producers' lanes
// and the sentinel came out with thousands of items still queued behind it, every time.
TEST_P(QueueRealTimeOrder, ItemsOfJoinedProducersComeBeforeALaterPut) {
  const auto [producers, many] = GetParam();
  mpp::test::Watchdog dog(120s, "ItemsOfJoinedProducersComeBeforeALaterPut");
  NoLeaks leaks;
  constexpr std::int64_t kPer = 3000;
  for (std::size_t capacity : {std::size_t{64} << 10, std::size_t{8} << 20}) {
    mpp::Queue<std::int64_t> q(mpp::QueueOptions{.capacity_bytes = capacity});
    q.put(-2);  // the parent puts first, so that its own lane holds the sentinel later
    ASSERT_EQ(q.get(), -2);
    std::vector<mpp::Process> ps;
    for (unsigned p = 0; p < producers; ++p) {
      ps.emplace_back([q, p]() mutable {
        // With a 64 KiB ring a producer blocks until the parent starts taking: put what fits.
        for (std::int64_t k = 0; k < kPer; ++k) {
          if (!q.put(std::int64_t{p} * kPer + k, 1ms)) return;
        }
      });
      ps.back().start();
    }
    for (auto& p : ps) p.join();
    q.put(kSentinel);
    std::int64_t got = 0;
    std::vector<std::int64_t> next(producers, 0);
    for (;;) {
      std::vector<std::int64_t> items;
      if (many) {
        (void)q.get_many(items, 7);
      } else {
        items.push_back(q.get());
      }
      bool done = false;
      for (std::int64_t v : items) {
        if (v == kSentinel) {
          done = true;
          continue;
        }
        ASSERT_FALSE(done) << "an item came after the sentinel";
        ++got;
      }
      if (done) break;
    }
    EXPECT_TRUE(q.empty()) << q.size() << " items were still queued behind the sentinel";
    EXPECT_EQ(q.try_get(), std::nullopt);
    EXPECT_GT(got, 0);
  }
  leaks.check();
}
INSTANTIATE_TEST_SUITE_P(Producers, QueueRealTimeOrder,
                         ::testing::Combine(::testing::Values(1u, 3u, 8u),
                                            ::testing::Values(false, true)));

// The most common multiprocessing pattern: C consumer processes take until their sentinel while
// P producer processes put and exit; the parent joins the producers, then puts one sentinel per
// consumer. Nothing may be stranded behind the sentinels. Before the fix (3 x 100,000 items, 3
// consumers, a 64 KiB ring) about 1 run in 15-40 stranded 224-1,760 items.
class QueueSentinelPattern
    : public ::testing::TestWithParam<std::tuple<unsigned, unsigned, std::size_t>> {};

TEST_P(QueueSentinelPattern, NothingIsStrandedBehindTheSentinels) {
  const auto [producers, consumers, capacity] = GetParam();
  mpp::test::Watchdog dog(150s, "NothingIsStrandedBehindTheSentinels");
  NoLeaks leaks;
  const std::int64_t per = 24000 / producers;
  SharedCounters taken(consumers);
  for (int round = 0; round < 4; ++round) {
    mpp::Queue<std::int64_t> q(mpp::QueueOptions{.capacity_bytes = capacity});
    q.put(-2);  // the parent's own lane exists before the producers' (as in a real program)
    ASSERT_EQ(q.get(), -2);
    std::vector<mpp::Process> cs;
    for (unsigned c = 0; c < consumers; ++c) {
      taken[c].store(0);
      cs.emplace_back([q, c, &taken]() mutable {
        std::uint64_t n = 0;
        while (q.get() != kSentinel) ++n;
        taken[c].store(n);
      });
      cs.back().start();
    }
    std::vector<mpp::Process> ps;
    for (unsigned p = 0; p < producers; ++p) {
      ps.emplace_back([q, p, per]() mutable {
        for (std::int64_t k = 0; k < per; ++k) q.put(std::int64_t{p} * per + k);
      });
      ps.back().start();
    }
    for (auto& p : ps) {
      p.join();
      ASSERT_EQ(p.exitcode(), 0);
    }
    for (unsigned c = 0; c < consumers; ++c) q.put(kSentinel);
    std::uint64_t total = 0;
    for (unsigned c = 0; c < consumers; ++c) {
      cs[c].join();
      ASSERT_EQ(cs[c].exitcode(), 0);
      total += taken[c].load();
    }
    std::uint64_t stranded = 0;
    while (q.try_get()) ++stranded;
    EXPECT_EQ(stranded, 0u) << "round " << round;
    EXPECT_EQ(total, std::uint64_t(per) * producers) << "round " << round;
  }
  leaks.check();
}
INSTANTIATE_TEST_SUITE_P(
    Mixes, QueueSentinelPattern,
    ::testing::Combine(::testing::Values(1u, 2u, 3u, 8u), ::testing::Values(1u, 3u, 8u),
                       ::testing::Values(std::size_t{64} << 10, std::size_t{8} << 20)));

}  // namespace
