// Thread-based stress test of the pool's shared-memory transport (src/shm/pool_ring.hpp): one
// producer streams variable-length messages through a small ByteRing, one consumer checks every
// byte; both sleep on Events when the ring is full/empty. Built under ThreadSanitizer in the tsan
// preset (and cheaply in the other builds).
#include "shm/pool_ring.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

struct Channel {
  mpp::shm::ByteRing ring;
  mpp::shm::Event data;   // producer -> consumer
  mpp::shm::Event space;  // consumer -> producer
};

std::byte pattern(std::uint64_t msg, std::size_t i) {
  return static_cast<std::byte>((msg * 131 + i * 7) & 0xff);
}

void run(std::size_t capacity, int messages, std::size_t max_len) {
  std::vector<std::byte> storage(capacity);
  auto ch = std::make_unique<Channel>();
  ch->ring.attach(storage.data(), capacity);
  std::atomic<bool> failed{false};

  std::thread producer([&] {
    std::vector<std::byte> msg;
    for (int m = 0; m < messages; ++m) {
      const std::size_t len = (static_cast<std::size_t>(m) * 2654435761u) % max_len;
      msg.resize(sizeof(std::uint64_t) + len);
      const std::uint64_t l = len;
      std::memcpy(msg.data(), &l, sizeof l);
      for (std::size_t i = 0; i < len; ++i)
        msg[sizeof l + i] = pattern(static_cast<std::uint64_t>(m), i);
      std::size_t sent = 0;
      while (sent < msg.size()) {
        const std::size_t k = ch->ring.try_write(msg.data() + sent, msg.size() - sent);
        if (k > 0) {
          sent += k;
          ch->data.notify();
          continue;
        }
        ch->space.wait([&] { return ch->ring.writable() > 0; }, std::chrono::nanoseconds(0), 50ms);
      }
    }
  });

  auto read_exact = [&](void* dst, std::size_t n) {
    auto* p = static_cast<std::byte*>(dst);
    while (n > 0) {
      const std::size_t k = ch->ring.try_read(p, n);
      if (k > 0) {
        p += k;
        n -= k;
        ch->space.notify();
        continue;
      }
      ch->data.wait([&] { return ch->ring.readable() > 0; }, std::chrono::microseconds(1), 50ms);
    }
  };
  std::vector<std::byte> body;
  for (int m = 0; m < messages && !failed; ++m) {
    std::uint64_t len = 0;
    read_exact(&len, sizeof len);
    const std::size_t expect = (static_cast<std::size_t>(m) * 2654435761u) % max_len;
    if (len != expect) {
      failed = true;
      ADD_FAILURE() << "message " << m << " has length " << len << ", expected " << expect;
      break;
    }
    body.resize(len);
    read_exact(body.data(), body.size());
    for (std::size_t i = 0; i < len; ++i) {
      if (body[i] != pattern(static_cast<std::uint64_t>(m), i)) {
        failed = true;
        ADD_FAILURE() << "message " << m << " byte " << i << " corrupted";
        break;
      }
    }
  }
  producer.join();
  EXPECT_FALSE(failed);
  EXPECT_EQ(ch->ring.readable(), 0u);
}

TEST(PoolRing, SmallRingManyMessagesLargerThanIt) { run(64, 3000, 300); }
TEST(PoolRing, MediumRing) { run(4096, 5000, 1000); }
TEST(PoolRing, TinyMessages) { run(256, 20000, 4); }

TEST(PoolRing, EventWaitTimesOutWithoutNotify) {
  mpp::shm::Event e;
  const bool r = e.wait([] { return false; }, std::chrono::nanoseconds(0), 5ms);
  EXPECT_FALSE(r);
}

}  // namespace
