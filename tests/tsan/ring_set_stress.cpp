// ThreadSanitizer stress test of a queue's set of rings (src/shm/ring_set.hpp) with threads, each
// producer thread standing in for a producing process (its own lane choice). Producers claim
// lanes, fall back to the main ring when lanes run out, release their lanes for a second wave of
// producers to take over; consumers take from every ring; the last producer closes. Every record
// must arrive exactly once, intact, and (with one consumer) in its producer's order.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
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

// ---- real-time order across rings (issue 16 part 5) --------------------------------------------

namespace {
// A record of the order test: who put it, its sequence number, and how many puts had completed
// (returned) when its put began.
struct Stamped {
  std::uint32_t producer;
  std::uint32_t seq;
  std::uint32_t begun_after;
};
constexpr std::uint32_t kNotYet = ~std::uint32_t{0};
}  // namespace

class RingSetOrder
    : public ::testing::TestWithParam<std::tuple<unsigned, std::size_t, std::size_t>> {};

// Producers (threads standing for processes, each with its own lane choice) put records, each
// noting how many puts had returned before it began; one consumer takes through RingSet::gate.
// When it takes a record, every record whose put returned before that record's put began must
// already have been taken: the real-time order rule queue.hpp promises. (Single consumer: with
// several, "still queued" races with another consumer's take.)
TEST_P(RingSetOrder, NoRecordOvertakesOneWhosePutReturnedBeforeItsPutBegan) {
  const auto [producers, capacity, lanes] = GetParam();
  const std::uint32_t per = 4000;
  const std::uint32_t total = producers * per;
  const std::size_t cap = Ring::normalize_capacity(capacity);
  Memory main_mem(Ring::mapping_bytes(cap));
  Memory lanes_mem(lanes * Ring::mapping_bytes(cap));
  RingSet set(Ring::create(main_mem.p, cap, 0), lanes_mem.p, lanes);
  const std::int32_t self = mpp::sys::self_pid();
  const mpp::shm::ProcessTag tag{self, 0};

  std::atomic<std::uint32_t> completed{0};
  std::vector<std::atomic<std::uint32_t>> done_at(total);  // completion k -> record id
  for (auto& d : done_at) d.store(kNotYet);
  std::vector<std::uint8_t> taken(total, 0);  // consumer only
  std::atomic<unsigned> producers_left{producers};
  std::uint64_t overtaken = 0, torn = 0, dup = 0;
  std::uint32_t got = 0;

  auto produce = [&](unsigned p) {
    std::atomic<int> choice{RingSet::kUnchosen};
    for (std::uint32_t s = 0; s < per; ++s) {
      const Stamped rec{p, s, completed.load(std::memory_order_acquire)};
      Ring& ring = set.producer(choice, tag);
      for (;;) {
        Ring::PutTxn t;
        ring.put_lock(t, self);
        if (std::byte* out = ring.reserve(t, sizeof rec)) {
          std::memcpy(out, &rec, sizeof rec);
          ring.put_publish_unlock(t);
          break;
        }
        ring.put_unlock();
        (void)ring.wait_space(sizeof rec, Deadline::forever());
      }
      const std::uint32_t k = completed.fetch_add(1, std::memory_order_acq_rel);
      done_at[k].store(p * per + s, std::memory_order_release);
      if (s % 64 == p % 64) std::this_thread::yield();  // vary the interleaving
    }
    set.release(choice, tag);
    if (producers_left.fetch_sub(1) == 1) set.close(self);
  };
  std::uint32_t prefix = 0;  // completions 0..prefix-1 are all taken
  auto check = [&](const Stamped& r) {
    while (prefix < r.begun_after) {
      std::uint32_t id;
      while ((id = done_at[prefix].load(std::memory_order_acquire)) == kNotYet) {
        std::this_thread::yield();  // its put returned; the producer is about to note it
      }
      if (taken[id] == 0) {
        ++overtaken;
        return;
      }
      ++prefix;
    }
  };
  auto consume = [&] {
    std::size_t cur = 0;
    for (;;) {
      const bool was_sealed = set.sealed();
      const std::size_t n_rings = set.rings();
      std::size_t n = 0, hops = 0, i = cur < n_rings ? cur : 0;
      for (std::size_t v = 0; v < n_rings; ++v) {
        Ring& ring = set.ring(i);
        if (v != 0 && !ring.has_data()) {
          i = i + 1 == n_rings ? 0 : i + 1;
          continue;
        }
        Ring::GetTxn t;
        ring.get_lock(t, self);
        RingSet::Gate g;
        std::size_t older = n_rings;
        for (;;) {
          const auto verdict = set.gate(g, i, t, self);
          if (verdict != RingSet::Verdict::take) {
            if (verdict == RingSet::Verdict::elsewhere) older = g.older;
            break;
          }
          const auto b = ring.next(t);
          if (!b) break;
          ++n;
          Stamped r{};
          if (b->size() != sizeof r) {
            ++torn;
            continue;
          }
          std::memcpy(&r, b->data(), sizeof r);
          const std::uint32_t id = r.producer * per + r.seq;
          if (r.producer >= producers || r.seq >= per) {
            ++torn;
            continue;
          }
          if (taken[id]++ != 0) ++dup;
          ++got;
          check(r);
        }
        set.leave(g, i, t);
        if (older != n_rings && hops++ < 8) {
          i = older;
          cur = older;
          --v;
          continue;
        }
        i = i + 1 == n_rings ? 0 : i + 1;
      }
      if (n != 0) continue;
      if (was_sealed) return;
      (void)set.wait_data(Deadline::forever(), self, /*self_may_put=*/true, nullptr);
    }
  };

  std::thread consumer(consume);
  std::vector<std::thread> ps;
  for (unsigned p = 0; p < producers; ++p) ps.emplace_back(produce, p);
  for (auto& t : ps) t.join();
  consumer.join();
  EXPECT_EQ(torn, 0u);
  EXPECT_EQ(dup, 0u);
  EXPECT_EQ(got, total);
  EXPECT_EQ(overtaken, 0u);
  EXPECT_EQ(set.ordered(), lanes > 0 && producers > 1);
}

// (producers, capacity, lanes): lanes for all, fewer lanes than producers (some share the main
// ring), a tiny ring whose producers block for space, and no lanes (one ring: order by itself).
INSTANTIATE_TEST_SUITE_P(Mixes, RingSetOrder,
                         ::testing::Values(std::make_tuple(2u, std::size_t{1} << 16,
                                                           std::size_t{4}),
                                           std::make_tuple(4u, std::size_t{4096}, std::size_t{8}),
                                           std::make_tuple(6u, std::size_t{1024}, std::size_t{3}),
                                           std::make_tuple(3u, std::size_t{256}, std::size_t{3}),
                                           std::make_tuple(3u, std::size_t{4096}, std::size_t{0})));
