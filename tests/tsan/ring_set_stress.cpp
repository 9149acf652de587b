// ThreadSanitizer stress test of a queue's set of rings (src/shm/ring_set.hpp) with threads, each
// producer thread standing in for a producing process (its own lane choice). Producers claim
// lanes, fall back to the main ring when lanes run out, release their lanes for a second wave of
// producers to take over; consumers take from every ring; the last producer closes. Every record
// must arrive exactly once, intact, and (with one consumer) in its producer's order.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <tuple>
#include <vector>

#include "ring_items.hpp"
#include "shm/ring_set.hpp"
#include "sys/proc.hpp"

namespace {

using mpp::shm::Deadline;
using mpp::shm::Ring;
using mpp::shm::RingSet;

using mpp::test::Memory;
// Records of 6 to 70 bytes.
constexpr std::size_t kMaxPayload = 70;

}  // namespace

class RingSetStress
    : public ::testing::TestWithParam<std::tuple<unsigned, unsigned, std::size_t, std::size_t>> {};

TEST_P(RingSetStress, EveryRecordOnceIntactAndInProducerOrder) {
  const auto [producers, consumers, capacity, lanes] = GetParam();
  const std::uint32_t per = producers > 16 ? 300 : 3000;
  const std::size_t cap = Ring::normalize_capacity(capacity);
  Memory main_mem(Ring::mapping_bytes(cap));
  Memory lanes_mem(lanes * Ring::mapping_bytes(cap));
  RingSet set(Ring::create(main_mem.p, cap, 0), lanes_mem.p, lanes);
  const std::int32_t self = mpp::sys::self_pid();
  // Every thread stands for a process but they share one pid: with start time 0 (unknown), none
  // looks dead to another, as before start times existed.
  const mpp::shm::ProcessTag tag{self, 0};

  std::vector<std::atomic<std::uint32_t>> seen(std::size_t{producers} * per);
  std::atomic<std::uint64_t> torn{0}, out_of_order{0};
  std::vector<std::int64_t> next(producers, 0);  // one consumer only
  std::atomic<unsigned> producers_left{producers};

  auto produce = [&](unsigned p) {
    std::atomic<int> choice{RingSet::kUnchosen};  // this "process's" lane choice
    for (std::uint32_t s = 0; s < per; ++s) {
      mpp::test::put_one(set.producer(choice, tag), self, p, s,
                         mpp::test::payload_size(p, s, kMaxPayload), /*polling=*/false);
    }
    set.release(choice, tag);  // the lane's items stay for the consumers
    if (producers_left.fetch_sub(1) == 1) set.close(self);
  };
  auto consume = [&] {
    for (;;) {
      const bool was_sealed = set.sealed();
      std::size_t n = 0;
      for (std::size_t i = 0; i < set.rings(); ++i) {
        Ring& ring = set.ring(i);
        if (!ring.has_data()) continue;
        Ring::GetTxn t;
        ring.get_lock(t, self);
        while (auto b = ring.next(t)) {
          ++n;
          const auto item = mpp::test::read_item(*b, producers, per, kMaxPayload);
          if (!item) {
            torn.fetch_add(1);
            continue;
          }
          const auto [p16, seq] = *item;
          seen[std::size_t{p16} * per + seq].fetch_add(1);
          if (consumers == 1) {
            out_of_order.fetch_add(static_cast<std::int64_t>(seq) != next[p16]);
            next[p16] = static_cast<std::int64_t>(seq) + 1;
          }
        }
        ring.get_publish_unlock(t);
      }
      if (n != 0) continue;
      if (was_sealed) return;
      (void)set.wait_data(Deadline::forever(), self, /*self_may_put=*/true, nullptr);
    }
  };

  std::vector<std::thread> threads;
  for (unsigned c = 0; c < consumers; ++c) threads.emplace_back(consume);
  // Two waves: the second takes over the lanes the first released (with items still in them).
  const unsigned first = producers / 2 + 1;
  std::vector<std::thread> wave;
  for (unsigned p = 0; p < first; ++p) wave.emplace_back(produce, p);
  for (auto& t : wave) t.join();
  wave.clear();
  for (unsigned p = first; p < producers; ++p) wave.emplace_back(produce, p);
  for (auto& t : wave) t.join();
  for (auto& t : threads) t.join();

  EXPECT_EQ(torn.load(), 0u);
  EXPECT_EQ(out_of_order.load(), 0u);
  std::size_t missing = 0, duplicated = 0;
  for (auto& v : seen) {
    missing += v.load() == 0;
    duplicated += v.load() > 1;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(set.size(), 0u);
  EXPECT_EQ(set.put_count(), std::uint64_t{producers} * per);
  EXPECT_TRUE(set.sealed());
}

// (producers, consumers, capacity, lanes): lanes to spare, fewer lanes than producers (the rest
// share the main ring), a tiny ring whose producers block for space, and no lanes at all.
INSTANTIATE_TEST_SUITE_P(
    Mixes, RingSetStress,
    ::testing::Values(std::make_tuple(4u, 1u, std::size_t{4096}, std::size_t{8}),
                      std::make_tuple(6u, 1u, std::size_t{256}, std::size_t{2}),
                      std::make_tuple(3u, 3u, std::size_t{1024}, std::size_t{4}),
                      std::make_tuple(20u, 2u, std::size_t{8192}, std::size_t{5}),
                      std::make_tuple(2u, 1u, std::size_t{65536}, std::size_t{0})));
