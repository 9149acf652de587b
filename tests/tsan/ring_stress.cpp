// ThreadSanitizer stress test of the queue's shared-memory ring (src/shm/ring.hpp) with threads:
// P producers x C consumers, tiny to large rings, variable-size records, blocking and polling
// mixes. Every record must arrive exactly once and intact.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <tuple>
#include <vector>

#include "ring_items.hpp"
#include "shm/ring.hpp"
#include "sys/proc.hpp"

namespace {

using mpp::shm::Deadline;
using mpp::shm::Ring;

using mpp::test::Memory;
using mpp::test::payload_size;
using mpp::test::put_one;
using mpp::test::write_item;

// Puts items seq .. seq+count-1 as batch records (as Queue::put_many does); returns how many
// it managed before the ring ran out of room (at least one: it waits for room for the first).
std::uint32_t put_batch(Ring& ring, std::int32_t self, unsigned producer, std::uint32_t seq,
                        std::uint32_t count, std::size_t max) {
  for (;;) {
    Ring::PutTxn t;
    ring.put_lock(t, self);
    std::size_t room = 0, max_items = 0;
    std::size_t size = payload_size(producer, seq, max);
    std::byte* data = ring.open_batch(t, Ring::batch_item_bytes(size), room, max_items);
    if (data == nullptr) {
      ring.put_unlock();
      (void)ring.wait_space(Ring::batch_item_bytes(size), Deadline::forever());
      continue;
    }
    std::size_t used = 0;
    std::uint32_t k = 0;
    while (k < count && k < max_items) {
      size = payload_size(producer, seq + k, max);
      if (used + Ring::batch_item_bytes(size) > room) break;
      const auto len = static_cast<std::uint32_t>(size);
      std::memcpy(data + used, &len, 4);
      write_item(data + used + 4, producer, seq + k, size);
      used += Ring::batch_item_bytes(size);
      ++k;
    }
    ring.commit_batch(t, data, used, k);
    ring.put_publish_unlock(t);
    return k;
  }
}

struct Tally {
  explicit Tally(unsigned producers, std::uint32_t per)
      : per_producer(per), seen(std::make_unique<std::atomic<std::uint8_t>[]>(producers * per)) {}
  std::uint32_t per_producer;
  std::unique_ptr<std::atomic<std::uint8_t>[]> seen;
  std::atomic<std::uint64_t> torn{0};
};

void check_item(std::span<const std::byte> b, Tally& tally, unsigned producers, std::size_t max) {
  const auto item = mpp::test::read_item(b, producers, tally.per_producer, max);
  if (!item) {
    tally.torn++;
    return;
  }
  tally.seen[item->first * tally.per_producer + item->second].fetch_add(1,
                                                                        std::memory_order_relaxed);
}

class RingStress
    : public ::testing::TestWithParam<std::tuple<unsigned, unsigned, std::size_t, bool>> {};

TEST_P(RingStress, EveryRecordExactlyOnceAndIntact) {
  const auto [producers, consumers, capacity, polling] = GetParam();
  const std::uint32_t per = capacity <= 256 ? 2000 : 6000;
  const std::size_t cap = Ring::normalize_capacity(capacity);
  Memory mem(Ring::mapping_bytes(cap));
  Ring ring = Ring::create(mem.p, cap, /*maxsize=*/capacity <= 256 ? 3 : 0);
  // Minus 4: an item in a batch record carries a 4-byte length and must still fit.
  const std::size_t max_payload = std::min<std::size_t>(ring.max_payload() - 4, 300);
  const std::int32_t self = mpp::sys::self_pid();
  Tally tally(producers, per);
  std::atomic<unsigned> producers_left{producers};

  std::vector<std::thread> threads;
  for (unsigned p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (std::uint32_t s = 0; s < per;) {
        if (p % 2 == 1) {  // odd producers put batch records of up to 7 items
          s += put_batch(ring, self, p, s, std::min<std::uint32_t>(7, per - s), max_payload);
        } else {
          put_one(ring, self, p, s, payload_size(p, s, max_payload), polling && (s % 3 == 0));
          ++s;
        }
      }
      if (producers_left.fetch_sub(1) == 1) ring.close(self);
    });
  }
  for (unsigned c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      for (;;) {
        const bool was_closed = ring.closed();
        Ring::GetTxn t;
        ring.get_lock(t, self);
        std::size_t n = 0;
        const std::size_t batch = (c % 2 == 0) ? 1 : 17;
        while (n < batch) {
          auto b = ring.next(t);
          if (!b) break;
          check_item(*b, tally, producers, max_payload);
          ++n;
        }
        ring.get_publish_unlock(t);
        if (n != 0) continue;
        if (was_closed) return;
        if (polling) {
          std::this_thread::yield();
        } else {
          (void)ring.wait_data(Deadline::forever(), self, /*self_may_put=*/true);
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(tally.torn.load(), 0u);
  std::size_t missing = 0, duplicated = 0;
  for (std::size_t i = 0; i < producers * per; ++i) {
    const auto v = tally.seen[i].load();
    missing += v == 0;
    duplicated += v > 1;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(ring.put_count(), std::uint64_t{producers} * per);
}

INSTANTIATE_TEST_SUITE_P(Mixes, RingStress,
                         ::testing::Values(std::make_tuple(1u, 1u, std::size_t{64}, false),
                                           std::make_tuple(1u, 1u, std::size_t{4096}, true),
                                           std::make_tuple(2u, 2u, std::size_t{256}, false),
                                           std::make_tuple(4u, 1u, std::size_t{1024}, false),
                                           std::make_tuple(1u, 4u, std::size_t{65536}, false),
                                           std::make_tuple(3u, 3u, std::size_t{1 << 20}, true),
                                           std::make_tuple(4u, 4u, std::size_t{512}, false)));

TEST(RingJoinable, TaskDoneCountsAgainstPuts) {
  const std::size_t cap = Ring::normalize_capacity(4096);
  Memory mem(Ring::mapping_bytes(cap));
  Ring ring = Ring::create(mem.p, cap, 0);
  const std::int32_t self = mpp::sys::self_pid();
  EXPECT_FALSE(ring.task_done());  // nothing put yet
  constexpr int kItems = 500;
  std::thread producer([&] {
    for (std::uint32_t s = 0; s < kItems; ++s) put_one(ring, self, 0, s, 8, false);
  });
  std::thread consumer([&] {
    int got = 0;
    while (got < kItems) {
      Ring::GetTxn t;
      ring.get_lock(t, self);
      auto b = ring.next(t);
      ring.get_publish_unlock(t);
      if (b) {
        ++got;
        EXPECT_TRUE(ring.task_done());
      } else {
        (void)ring.wait_data(Deadline::forever(), self, true);
      }
    }
  });
  producer.join();
  EXPECT_TRUE(ring.join(Deadline::forever()));
  consumer.join();
  EXPECT_EQ(ring.unfinished(), 0u);
  EXPECT_FALSE(ring.task_done());
}

TEST(RingCursor, RecoverRollsCountToPublishedPosition) {
  mpp::shm::Cursor c;
  c.publish(16, 1);
  // A holder that died after writing its intent and the count, before the position.
  c.prev_count = 1;
  c.intent_pos = 48;
  c.intent_count = 3;
  c.intent_valid.store(1);
  c.count.store(3);
  c.recover();
  EXPECT_EQ(c.pos.load(), 16u);
  EXPECT_EQ(c.count.load(), 1u);
  // One that died after the position store: the count must include its items.
  c.intent_pos = 48;
  c.intent_count = 3;
  c.prev_count = 1;
  c.intent_valid.store(1);
  c.pos.store(48);
  c.recover();
  EXPECT_EQ(c.count.load(), 3u);
  EXPECT_EQ(c.intent_valid.load(), 0u);
}

}  // namespace
