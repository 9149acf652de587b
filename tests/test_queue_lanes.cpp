// Queue tests (<mpp/queue.hpp>): producer lanes (src/shm/ring_set.hpp): each producer's order,
// the lanes' byte budget, reuse of lanes, reserved address space, close while producers put.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "mpp/process.hpp"
#include "mpp/queue.hpp"
#include "queue_test_util.hpp"
#include "shm/ring_set.hpp"

using namespace std::chrono_literals;

namespace {

using mpp::test::NoLeaks;
using mpp::test::SharedCounters;

// ---- producer lanes (src/shm/ring_set.hpp) -----------------------------------------------------

class QueueLanes : public ::testing::TestWithParam<unsigned> {};

// Each producing process puts to its own lane while lanes last (64 per queue), then to the main
// ring: either way its items arrive in the order it put them, whatever the mix of put, put_many
// and timed put, and whatever the consumer's mix of get and get_many.
TEST_P(QueueLanes, EachProducersItemsArriveInItsOrder) {
  const unsigned producers = GetParam();
  mpp::test::Watchdog dog(120s, "EachProducersItemsArriveInItsOrder");
  NoLeaks leaks;
  const std::uint32_t per = producers > 16 ? 300 : 5000;
  // A small ring too, so that producers block for space and lanes wrap and recycle.
  for (std::size_t capacity : {std::size_t{4096}, std::size_t{1} << 20}) {
    mpp::Queue<std::uint64_t> q(mpp::QueueOptions{.capacity_bytes = capacity});
    std::vector<mpp::Process> ps;
    for (unsigned p = 0; p < producers; ++p) {
      ps.emplace_back([q, p, per]() mutable {
        std::vector<std::uint64_t> batch;
        for (std::uint32_t s = 0; s < per; ++s) {
          const std::uint64_t item = (std::uint64_t{p} << 32) | s;
          switch ((s / 7 + p) % 3) {
            case 0:
              q.put(item);
              break;
            case 1:
              while (!q.put(item, 1ms)) {
              }
              break;
            default:
              batch.push_back(item);
              if (batch.size() == 6) {
                q.put_many(batch);
                batch.clear();
              }
          }
          if (s % 7 == 6 && !batch.empty()) {
            q.put_many(batch);
            batch.clear();
          }
        }
        if (!batch.empty()) q.put_many(batch);
      });
    }
    for (auto& p : ps) p.start();
    std::vector<std::int64_t> next(producers, 0);
    std::size_t got = 0, out_of_order = 0, garbage = 0;
    std::vector<std::uint64_t> many;
    while (got < std::size_t{producers} * per) {
      many.clear();
      if (got % 3 == 0) {
        q.get_many(many, 50);
      } else {
        many.push_back(q.get());
      }
      for (std::uint64_t v : many) {
        const auto p = static_cast<std::size_t>(v >> 32);
        const auto s = static_cast<std::int64_t>(v & 0xffffffffu);
        ++got;
        // (No ASSERT here: returning early would leave producers blocked on a full queue.)
        if (p >= producers) {
          ++garbage;
          continue;
        }
        out_of_order += s != next[p];
        next[p] = s + 1;
      }
    }
    EXPECT_EQ(garbage, 0u) << "capacity " << capacity;
    EXPECT_EQ(out_of_order, 0u) << "capacity " << capacity;
    for (auto& p : ps) {
      p.join();
      EXPECT_EQ(p.exitcode(), 0);
    }
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.try_get().has_value());
  }
  leaks.check();
}

// 70 producers alive at once: more than there are lanes, so some share the main ring.
INSTANTIATE_TEST_SUITE_P(Producers, QueueLanes, ::testing::Values(1u, 3u, 8u, 70u));

TEST(QueueLanesBudget, ProducersRunningAheadHoldAboutOneCapacityTogether) {
  mpp::test::Watchdog dog(60s, "ProducersRunningAheadHoldAboutOneCapacityTogether");
  // Nobody consumes while three producers fill the queue one after the other: the first may fill
  // its whole lane (as a lone producer fills a ring), the others then hold only what a lane may
  // always hold (1 MiB), not a capacity each.
  constexpr std::size_t kCap = 4 << 20;
  constexpr std::size_t kItem = 16;  // record bytes of one 8-byte item
  mpp::Queue<std::uint64_t> q(mpp::QueueOptions{.capacity_bytes = kCap});
  SharedCounters put(3);
  for (int k = 0; k < 3; ++k) {
    mpp::Process p([q, k, &put]() mutable {
      std::uint64_t n = 0;
      while (q.try_put(n)) ++n;
      // full() agrees with try_put (for k > 0 the lane budget is what holds it back).
      put[static_cast<std::size_t>(k)].store(q.full() ? n : 0);
    });
    p.start();
    p.join();
    ASSERT_EQ(p.exitcode(), 0);
  }
  EXPECT_EQ(put[0].load(), kCap / kItem);
  for (std::size_t k : {1u, 2u}) {
    EXPECT_GT(put[k].load(), 0u);
    EXPECT_LE(put[k].load() * kItem, std::size_t{1} << 20);
  }
  EXPECT_EQ(q.size(), put[0].load() + put[1].load() + put[2].load());
  // Drained, the queue takes a whole capacity from one producer again.
  std::uint64_t total = 0;
  while (q.try_get()) ++total;
  EXPECT_EQ(total, put[0].load() + put[1].load() + put[2].load());
  mpp::Process again([q, &put]() mutable {
    std::uint64_t n = 0;
    while (q.try_put(n)) ++n;
    put[0].store(n);
  });
  again.start();
  again.join();
  EXPECT_EQ(put[0].load(), kCap / kItem);
}

// `producers` children one after the other, child p putting (p << 32 | s) for s < per and then
// leaving: its target returns, or (`hard`) it calls std::_Exit, so that neither its handles'
// destructors nor mpp's exit hooks run. Returns how many lanes they took over from dead owners.
std::uint64_t put_from_children_one_by_one(mpp::Queue<std::uint64_t>& q, unsigned producers,
                                           std::uint64_t per, bool hard) {
  SharedCounters took_over(1);
  for (unsigned p = 0; p < producers; ++p) {
    mpp::Process child([q, p, per, hard, &took_over]() mutable {
      for (std::uint64_t s = 0; s < per; ++s) q.put((std::uint64_t{p} << 32) | s);
      took_over[0].fetch_add(mpp::shm::RingSet::lane_takeovers());
      if (hard) std::_Exit(0);
    });
    child.start();
    child.join();
    EXPECT_EQ(child.exitcode(), 0);
  }
  return took_over[0].load();
}

// Takes producers x per items as put above; returns how many broke their producer's order. The
// first item taken goes to *first.
std::size_t take_in_producer_order(mpp::Queue<std::uint64_t>& q, unsigned producers,
                                   std::uint64_t per, std::uint64_t* first) {
  std::vector<std::uint64_t> next(producers, 0);
  std::size_t bad = 0;
  for (std::uint64_t i = 0; i < producers * per; ++i) {
    const std::uint64_t v = q.get();
    if (i == 0) *first = v;
    const auto p = static_cast<std::size_t>(v >> 32);
    if (p >= producers || (v & 0xffffffffu) != next[p]) {
      ++bad;
      continue;
    }
    ++next[p];
  }
  return bad;
}

TEST(QueueLanesReuse, LanesOfExitedProducersAreTakenOver) {
  mpp::test::Watchdog dog(120s, "LanesOfExitedProducersAreTakenOver");
  NoLeaks leaks;
  // 70 producers one after the other, each leaving with std::_Exit (its lane is not released)
  // before the next starts: from the 65th on, every lane is owned by a dead process and the next
  // producer must take one over (or use the main ring). Nothing is consumed until the end, so
  // the taken-over lanes still hold their dead owners' items, which must come out first and whole.
  constexpr unsigned kProducers = 70;
  constexpr std::uint64_t kPer = 3;
  mpp::Queue<std::uint64_t> q(mpp::QueueOptions{.capacity_bytes = 4096});
  EXPECT_EQ(put_from_children_one_by_one(q, kProducers, kPer, /*hard=*/true),
            kProducers - mpp::shm::kMaxLanes);
  EXPECT_EQ(q.size(), kProducers * kPer);
  std::uint64_t first = 0;
  EXPECT_EQ(take_in_producer_order(q, kProducers, kPer, &first), 0u);
  // White-box: a fresh consumer looks at the main ring first, then lane 0. Producers 64-69 took
  // lanes 0-5 over, so the main ring is empty and lane 0 yields producer 0's items first; had
  // they fallen back to the main ring, producer 64's would come first.
  EXPECT_EQ(first >> 32, 0u);
  EXPECT_TRUE(q.empty());
  leaks.check();
}

TEST(QueueLanesReuse, LanesOfProducersThatReturnedAreReleased) {
  mpp::test::Watchdog dog(120s, "LanesOfProducersThatReturnedAreReleased");
  NoLeaks leaks;
  // Producers whose target returns leave through mpp's exit hooks, which give the lane back (the
  // items stay): 70 of them one after the other (more than the 64 lanes) never need to take a
  // lane over from a dead owner, and each one's items still come out in order.
  constexpr unsigned kProducers = 70;
  constexpr std::uint64_t kPer = 3;
  mpp::Queue<std::uint64_t> q(mpp::QueueOptions{.capacity_bytes = 4096});
  EXPECT_EQ(put_from_children_one_by_one(q, kProducers, kPer, /*hard=*/false), 0u);
  std::uint64_t first = 0;
  EXPECT_EQ(take_in_producer_order(q, kProducers, kPer, &first), 0u);
  EXPECT_TRUE(q.empty());
  leaks.check();
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)  // they reserve terabytes
TEST(QueueLanesReserve, AnAddressSpaceLimitIsMostlyLeftToTheProgram) {
  mpp::test::Watchdog dog(60s, "AnAddressSpaceLimitIsMostlyLeftToTheProgram");
  // Lanes are reserved address space (up to 4 GiB for a default queue). Under ulimit -v a queue
  // must take only a small share of the limit, so that a program with a few queues can still
  // allocate most of what it was allowed.
  mpp::Process child([] {
    std::ifstream status("/proc/self/status");
    std::string key;
    std::size_t vm_kb = 0;
    while (status >> key) {
      if (key == "VmSize:") {
        status >> vm_kb;
        break;
      }
    }
    if (vm_kb == 0) std::_Exit(3);
    const rlim_t limit = (vm_kb << 10) + (rlim_t{10} << 30);
    rlimit r{limit, limit};
    if (setrlimit(RLIMIT_AS, &r) != 0) std::_Exit(4);
    std::vector<mpp::Queue<int>> queues(3);
    for (auto& q : queues) {
      q.put(1);
      if (q.get() != 1) std::_Exit(5);
    }
    // 3 x 4 GiB of lanes would leave less than 2 GiB of the 10 GiB for the program.
    void* big = std::malloc(std::size_t{6} << 30);
    if (big == nullptr) std::_Exit(6);
    std::free(big);
    std::_Exit(0);
  });
  child.start();
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}
#endif

TEST(QueueLanesClose, CloseLosesNoItemThatPutAccepted) {
  mpp::test::Watchdog dog(120s, "CloseLosesNoItemThatPutAccepted");
  NoLeaks leaks;
  // close() lands while producers are in the middle of put()/put_many() on their lanes: every
  // item a put accepted (returned normally) must still come out, and then get() must throw.
  for (int round = 0; round < 6; ++round) {
    constexpr unsigned kProducers = 4;
    // Items of ~16 KiB: each put holds its lane's lock for microseconds while copying, so close()
    // often lands in the middle of one.
    mpp::Queue<std::string> q(mpp::QueueOptions{.capacity_bytes = 1 << 20});
    SharedCounters accepted(kProducers);
    std::vector<mpp::Process> ps;
    for (unsigned p = 0; p < kProducers; ++p) {
      ps.emplace_back([q, p, &accepted]() mutable {
        const std::string item(16000 + p, 'x');
        std::vector<std::string> batch(3, item);
        try {
          for (std::uint64_t i = 0;; ++i) {
            if ((i + p) % 2 == 0) {
              q.put(item);
              accepted[p].fetch_add(1);
            } else {
              accepted[p].fetch_add(q.put_many(batch));
            }
          }
        } catch (const mpp::QueueClosed&) {
        }
      });
    }
    for (auto& p : ps) p.start();
    std::uint64_t got = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(5 + 7 * round);
    while (std::chrono::steady_clock::now() < until) {
      if (q.get(1ms)) ++got;
    }
    q.close();
    try {
      for (;;) {
        (void)q.get();
        ++got;
      }
    } catch (const mpp::QueueClosed&) {
    }
    for (auto& p : ps) {
      p.join();
      EXPECT_EQ(p.exitcode(), 0);
    }
    std::uint64_t total = 0;
    for (unsigned p = 0; p < kProducers; ++p) total += accepted[p].load();
    // put_many may have put part of a batch before it saw the close; those items count as got
    // but not as accepted, so got may exceed total by less than one batch per producer.
    EXPECT_GE(got, total) << "round " << round;
    EXPECT_LE(got, total + kProducers * 3) << "round " << round;
  }
  leaks.check();
}

}  // namespace
