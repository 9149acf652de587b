// mpp/detail/queue_core.hpp: the type-erased engine under mpp::Queue<T> (internal).
//
// QueueCore owns this process's view of one queue: the shared mapping that holds the ring (see
// src/shm/ring.hpp for the algorithm), this process's slot in the ring's table of attached
// processes, and a fork hook that attaches every child forked while it exists. Queue<T> handles
// share one QueueCore through a shared_ptr; it works on bytes and calls back into Queue<T> to
// encode and decode items with the codec, directly into and out of shared memory.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <utility>

#include "mpp/detail/export.hpp"

namespace mpp::detail {

// How long a queue operation may wait.
struct QueueWait {
  enum class Kind : unsigned char { forever, poll, until };
  Kind kind = Kind::forever;
  std::chrono::steady_clock::time_point deadline{};

  static QueueWait forever() noexcept { return {}; }
  static QueueWait poll() noexcept { return {Kind::poll, {}}; }
  template <class Rep, class Period>
  static QueueWait within(std::chrono::duration<Rep, Period> timeout) noexcept {
    using namespace std::chrono;
    if (timeout <= duration<Rep, Period>::zero()) return poll();
    // Clamp so that now() + timeout cannot overflow: ten years is "forever" for a queue wait.
    constexpr auto kLongest = hours(24 * 365 * 10);
    if (timeout >= duration_cast<duration<Rep, Period>>(kLongest)) return forever();
    return {Kind::until, steady_clock::now() + ceil<steady_clock::duration>(timeout)};
  }
};

class MPP_API QueueCore {
 public:
  // Writes one encoded item of the size announced before into `out`.
  using EncodeFn = void (*)(const void* item, std::byte* out);
  // Decodes one item's bytes into the caller's storage (may throw SerializationError).
  using DecodeFn = void (*)(void* sink, std::span<const std::byte> bytes);

  // Maps a fresh ring. Throws std::invalid_argument (capacity_bytes too large) or
  // std::system_error ("cannot map shared memory").
  QueueCore(std::size_t maxsize, std::size_t capacity_bytes);
  ~QueueCore();
  QueueCore(const QueueCore&) = delete;
  QueueCore& operator=(const QueueCore&) = delete;

  // One item of `size` bytes. Blocks per `wait` while full; false when the wait gave up. Throws
  // QueueClosed, std::invalid_argument (item larger than max_item_bytes()).
  bool put(std::size_t size, const void* item, EncodeFn encode, QueueWait wait);
  // ---- batched puts (Queue<T>::put_many): the caller holds the producer lock across calls ----
  struct PutBatch {
    std::uint64_t tail = 0;
    std::uint64_t count = 0;
    std::uint64_t start_count = 0;
    std::int32_t self = 0;
    bool locked = false;
    void* ring = nullptr;  // the ring whose producer lock the batch holds
  };
  struct Room {
    std::byte* data = nullptr;  // where the batch's items go (BatchWriter writes them)
    std::size_t bytes = 0;      // usable bytes (a multiple of 4)
    std::size_t max_items = 0;  // how many items maxsize still allows
  };
  // Bytes one item of `size` encoded bytes takes inside a batch record.
  static constexpr std::size_t batch_item_bytes(std::size_t size) noexcept {
    return (sizeof(std::uint32_t) + size + 3) & ~std::size_t{3};
  }
  // Writes items into a Room in the rings' batch record format: [u32 length][bytes][pad to 4]
  // each (src/shm/ring.hpp reads it; queue_core.cpp checks at compile time that the two agree).
  // The items are encoded in place, in shared memory: no copy.
  class BatchWriter {
   public:
    BatchWriter() = default;
    explicit BatchWriter(const Room& room) noexcept : room_(room) {}
    // Whether one more item of `size` encoded bytes fits (bytes and maxsize).
    [[nodiscard]] bool fits(std::size_t size) const noexcept {
      return items_ < room_.max_items && used_ + batch_item_bytes(size) <= room_.bytes;
    }
    // Writes one item that fits(size): encode(dst) writes exactly `size` bytes at dst. An
    // exception from encode leaves the item unwritten (the ones before stay).
    template <class Encode>
    void add(std::size_t size, Encode&& encode) {
      std::byte* at = room_.data + used_;
      std::forward<Encode>(encode)(at + sizeof(std::uint32_t));
      const auto len = static_cast<std::uint32_t>(size);
      std::memcpy(at, &len, sizeof len);
      used_ += batch_item_bytes(size);
      ++items_;
    }
    [[nodiscard]] std::size_t items() const noexcept { return items_; }

   private:
    friend class QueueCore;
    Room room_{};
    std::size_t used_ = 0;
    std::size_t items_ = 0;
  };
  // Takes the producer lock if this batch does not hold it and returns room for at least
  // `min_bytes`, blocking (lock released meanwhile) while the queue is full. Throws QueueClosed,
  // std::invalid_argument (min_bytes above max_item_bytes()).
  Room batch_open(PutBatch& batch, std::size_t min_bytes);
  // Publishes the items `w` wrote (none is fine) and empties it; returns how many.
  std::size_t batch_commit(PutBatch& batch, BatchWriter& w) noexcept {
    const std::size_t n = w.items_;
    if (n != 0) batch_commit(batch, w.room_.data, w.used_, n);
    w = BatchWriter{};
    return n;
  }
  // Releases the producer lock if the batch holds it. Never throws.
  void batch_close(PutBatch& batch) noexcept;

  // ---- batched gets (Queue<T>::get_many): the caller holds the consumer lock across calls ----
  struct GetBatch {
    std::uint64_t head = 0;
    std::uint64_t count = 0;
    std::uint64_t start_head = 0;
    std::uint64_t rec_end = 0;
    std::size_t taken = 0;
    std::size_t ring = 0;      // which of the queue's rings the lock is held on
    std::size_t visited = 0;   // rings this batch has looked at
    void* ring_ptr = nullptr;  // that ring
    bool locked = false;
    std::size_t hops = 0;  // moves to a ring with an older item (ordered queues)
    // The consumer's real-time-order view of the ring it holds (shm::RingSet::Gate, kept here
    // so that the batch lives on the caller's stack without a shared-memory header).
    alignas(8) unsigned char gate[40] = {};
  };
  // Blocks per `wait` until an item is queued; true with the consumer lock held (get_next then
  // yields at least one item), false when the wait gave up. Throws QueueClosed like get().
  bool get_open(GetBatch& batch, QueueWait wait);
  // The next item's bytes (valid until get_close), false when no more is queued right now.
  bool get_next(GetBatch& batch, std::span<const std::byte>& bytes) noexcept;
  // Removes the items taken from the queue and releases the lock. Never throws.
  void get_close(GetBatch& batch) noexcept;

  // Up to `max` items (at least one unless the wait gave up, then 0) into `sink`, one decode each,
  // under one consumer lock. Throws QueueClosed when closed and drained, or when nothing is
  // queued and every other process attached to the queue has died.
  std::size_t get(std::size_t max, void* sink, DecodeFn decode, QueueWait wait);

  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept;
  [[nodiscard]] bool empty() const noexcept;
  [[nodiscard]] bool full() const noexcept;
  [[nodiscard]] std::size_t size() const noexcept;
  [[nodiscard]] std::size_t max_item_bytes() const noexcept;
  [[nodiscard]] std::size_t capacity_bytes() const noexcept;

  // JoinableQueue. task_done throws std::logic_error when called more times than items were put.
  void task_done();
  bool join(QueueWait wait);
  [[nodiscard]] std::uint64_t unfinished() const noexcept;

 private:
  // Publishes `items` items written into the first `used` bytes of the room at `data`.
  void batch_commit(PutBatch& batch, std::byte* data, std::size_t used, std::size_t items) noexcept;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpp::detail
