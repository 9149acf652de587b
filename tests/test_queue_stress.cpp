// Queue tests (<mpp/queue.hpp>): P producers x C consumers, every item exactly once and intact,
// across every form of put and get.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <tuple>
#include <vector>

#include "mpp/process.hpp"
#include "mpp/queue.hpp"
#include "queue_test_util.hpp"

using namespace std::chrono_literals;

namespace {

using mpp::test::NoLeaks;
using mpp::test::SharedCounters;

// P producers x C consumers, all processes: every item exactly once, intact.
class QueueStress
    : public ::testing::TestWithParam<std::tuple<unsigned, unsigned, std::size_t, int>> {};

std::vector<std::uint32_t> make_item(std::uint32_t producer, std::uint32_t seq) {
  std::vector<std::uint32_t> v(2 + (seq * 7 + producer) % 11);
  v[0] = producer;
  v[1] = seq;
  for (std::uint32_t i = 2; i < v.size(); ++i) v[i] = producer * 1000003u + seq * 31u + i;
  return v;
}

TEST_P(QueueStress, EveryItemExactlyOnce) {
  const auto [producers, consumers, capacity, mode] = GetParam();
  mpp::test::Watchdog dog(150s, "QueueStress");
  NoLeaks leaks;
  const std::uint32_t per = capacity < 1024 ? 1500 : 5000;
  mpp::Queue<std::vector<std::uint32_t>> q(mpp::QueueOptions{.capacity_bytes = capacity});
  // seen[p * per + s]: deliveries of item (p, s); [total]: torn items.
  SharedCounters seen(producers * per + 1);
  const std::size_t torn_slot = producers * per;

  std::vector<mpp::Process> cons;
  for (unsigned c = 0; c < consumers; ++c) {
    cons.emplace_back([&, c]() {
      auto take = [&](const std::vector<std::uint32_t>& v) {
        if (v.size() < 2 || v[0] >= producers || v[1] >= per || v != make_item(v[0], v[1])) {
          seen[torn_slot].fetch_add(1);
          return;
        }
        seen[v[0] * per + v[1]].fetch_add(1);
      };
      try {
        for (unsigned i = 0;; ++i) {
          const int how = (mode == 0) ? 0 : static_cast<int>((i + c) % 4);
          if (how == 0) {
            take(q.get());
          } else if (how == 1) {
            if (auto v = q.try_get()) take(*v);
          } else if (how == 2) {
            if (auto v = q.get(2ms)) take(*v);
          } else {
            std::vector<std::vector<std::uint32_t>> out;
            q.get_many(out, 7);
            for (auto& v : out) take(v);
          }
        }
      } catch (const mpp::QueueClosed&) {
      }
    });
  }
  std::vector<mpp::Process> prods;
  for (unsigned p = 0; p < producers; ++p) {
    prods.emplace_back([&, p]() {
      std::vector<std::vector<std::uint32_t>> batch;
      for (std::uint32_t s = 0; s < per; ++s) {
        const int how = (mode == 0) ? 0 : static_cast<int>((s + p) % 4);
        auto item = make_item(p, s);
        if (how == 0) {
          q.put(item);
        } else if (how == 1) {
          while (!q.try_put(item)) std::this_thread::yield();
        } else if (how == 2) {
          while (!q.put(item, 1ms)) {
          }
        } else {
          batch.push_back(item);
          if (batch.size() == 5 || s + 1 == per) {
            q.put_many(batch);
            batch.clear();
          }
        }
      }
      if (!batch.empty()) q.put_many(batch);
    });
  }
  for (auto& c : cons) c.start();
  for (auto& p : prods) p.start();
  for (auto& p : prods) {
    p.join();
    EXPECT_EQ(p.exitcode(), 0);
  }
  q.close();
  for (auto& c : cons) {
    c.join();
    EXPECT_EQ(c.exitcode(), 0);
  }
  EXPECT_EQ(seen[torn_slot].load(), 0u);
  std::size_t missing = 0, dup = 0;
  for (std::size_t i = 0; i < torn_slot; ++i) {
    missing += seen[i].load() == 0;
    dup += seen[i].load() > 1;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(dup, 0u);
  EXPECT_TRUE(q.empty());
  leaks.check();
}

INSTANTIATE_TEST_SUITE_P(Mixes, QueueStress,
                         ::testing::Values(std::make_tuple(1u, 1u, std::size_t{64 << 20}, 0),
                                           std::make_tuple(1u, 1u, std::size_t{128}, 1),
                                           std::make_tuple(2u, 2u, std::size_t{1024}, 0),
                                           std::make_tuple(4u, 1u, std::size_t{4096}, 1),
                                           std::make_tuple(1u, 4u, std::size_t{65536}, 1),
                                           std::make_tuple(3u, 5u, std::size_t{256}, 1),
                                           std::make_tuple(8u, 8u, std::size_t{1 << 20}, 1),
                                           std::make_tuple(8u, 2u, std::size_t{512}, 0)));

}  // namespace
