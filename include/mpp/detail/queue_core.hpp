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
#include <memory>
#include <span>

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

class QueueCore {
 public:
  // Writes one encoded item of the size announced before into `out`.
  using EncodeFn = void (*)(const void* item, std::byte* out);
  // Batches: size of the current item (called once per item, before encode_next).
  using SizeNextFn = std::size_t (*)(void* cursor);
  // Batches: writes the current item into `out` and moves to the next one.
  using EncodeNextFn = void (*)(void* cursor, std::byte* out);
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
  // `count` items through the cursor, taking the producer lock once per run of items that fit.
  // Blocks while full. Returns the number put (== count unless closed midway: then QueueClosed is
  // thrown after publishing the items that made it). Throws like put().
  std::size_t put_many(std::size_t count, void* cursor, SizeNextFn size_next,
                       EncodeNextFn encode_next);
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
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpp::detail
