// Test records for the ring stress tests (ring_stress.cpp, ring_set_stress.cpp): zeroed aligned
// memory for rings, and self-checking payloads [producer u16][seq u32][filler derived from both]
// whose size also derives from (producer, seq), so a torn or misplaced record is always noticed.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <thread>
#include <utility>

#include "shm/ring.hpp"

namespace mpp::test {

struct Memory {
  explicit Memory(std::size_t bytes)
      : p(static_cast<std::byte*>(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096))) {
    std::memset(p, 0, bytes);
  }
  ~Memory() { std::free(p); }
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;
  std::byte* p;
};

// 6 to `max` bytes.
inline std::size_t payload_size(unsigned producer, std::uint32_t seq, std::size_t max) {
  return 6 + (seq * 7u + producer * 13u) % (max - 6 + 1);
}
inline std::byte filler(unsigned producer, std::uint32_t seq, std::size_t i) {
  return static_cast<std::byte>((producer * 31u + seq * 17u + i) & 0xffu);
}

inline void write_item(std::byte* out, unsigned producer, std::uint32_t seq, std::size_t size) {
  const auto p16 = static_cast<std::uint16_t>(producer);
  std::memcpy(out, &p16, 2);
  std::memcpy(out + 2, &seq, 4);
  for (std::size_t i = 6; i < size; ++i) out[i] = filler(producer, seq, i);
}

// (producer, seq) of an intact record, nullopt for a torn or foreign one.
inline std::optional<std::pair<unsigned, std::uint32_t>> read_item(std::span<const std::byte> b,
                                                                   unsigned producers,
                                                                   std::uint32_t per,
                                                                   std::size_t max) {
  if (b.size() < 6) return std::nullopt;
  std::uint16_t p16 = 0;
  std::uint32_t seq = 0;
  std::memcpy(&p16, b.data(), 2);
  std::memcpy(&seq, b.data() + 2, 4);
  if (p16 >= producers || seq >= per || b.size() != payload_size(p16, seq, max)) {
    return std::nullopt;
  }
  for (std::size_t i = 6; i < b.size(); ++i) {
    if (b[i] != filler(p16, seq, i)) return std::nullopt;
  }
  return std::pair<unsigned, std::uint32_t>{p16, seq};
}

// Puts one record, waiting for room (or polling with yield).
inline void put_one(shm::Ring& ring, std::int32_t self, unsigned producer, std::uint32_t seq,
                    std::size_t size, bool polling) {
  for (;;) {
    shm::Ring::PutTxn t;
    ring.put_lock(t, self);
    if (std::byte* out = ring.reserve(t, size)) {
      write_item(out, producer, seq, size);
      ring.put_publish_unlock(t);
      return;
    }
    ring.put_unlock();
    if (polling) {
      std::this_thread::yield();
    } else {
      ASSERT_NE(ring.wait_space(size, shm::Deadline::forever()), shm::WaitStatus::closed);
    }
  }
}

}  // namespace mpp::test
