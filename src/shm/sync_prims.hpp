// Futex-based algorithms behind mpp::Semaphore, BoundedSemaphore, Event, Condition and Barrier.
//
// Each state is a handful of 32-bit atomics placed (zero-initialized, then init()) in anonymous
// shared memory; waits use shared futexes (sys/futex.hpp) so they work across processes, and the
// same code runs between threads for the ThreadSanitizer tests. No locks, no allocation, no fork.
//
// Memory ordering: a successful Semaphore acquire synchronizes with the release it consumed;
// Event::wait returning true synchronizes with the set() it saw; every party leaving a Barrier
// generation has seen the writes all parties made before arriving. Condition relies on its lock.
//
// Lost wake-up freedom: every wait goes through shm::WaitWord (wait_word.hpp): a sleeper registers
// (seq_cst read-modify-write) and then asks the kernel to sleep only if the word still has the
// value it saw; a waker changes the word (seq_cst) and then reads the sleepers count. One of the
// two always sees the other, so a wake-up is never lost.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "shm/deadline.hpp"
#include "shm/wait_word.hpp"

namespace mpp::shm {

class SemaphoreState {
 public:
  // release() beyond `bound` is refused; kUnbounded also keeps the count from wrapping around.
  static constexpr std::uint32_t kUnbounded = 0xffffffffu;
  void init(std::uint32_t initial, std::uint32_t bound) noexcept;
  [[nodiscard]] bool try_acquire() noexcept;
  // Blocks until acquired or the deadline passes. Returns true if acquired.
  [[nodiscard]] bool acquire(Deadline deadline) noexcept;
  // Returns false (and changes nothing) when a bounded semaphore is already at its bound.
  [[nodiscard]] bool release() noexcept;
  [[nodiscard]] std::uint32_t value() const noexcept {
    return value_.word().load(std::memory_order_relaxed);
  }

 private:
  WaitWord value_;  // the count itself
  std::uint32_t bound_;
};

class EventState {
 public:
  void init() noexcept;
  void set() noexcept;
  void clear() noexcept;
  [[nodiscard]] bool is_set() const noexcept;
  // Returns true once set, false if the deadline passed first.
  [[nodiscard]] bool wait(Deadline deadline) noexcept;

 private:
  WaitWord flag_;  // 0 clear, 1 set
};

// Generation-counting barrier in ONE futex word: high 16 bits generation, low 16 bits arrivals. A
// single word makes "last arriver resets the count and opens the next generation" one store, so a
// fast party re-entering for the next round can never be confused with the current one.
class BarrierState {
 public:
  static constexpr std::uint32_t kMaxParties = 0xffff;
  void init(std::uint32_t parties) noexcept;  // 1 <= parties <= kMaxParties (checked by callers)
  // Blocks until `parties` calls arrived; returns this caller's arrival index (0 .. parties-1).
  std::uint32_t wait() noexcept;
  [[nodiscard]] std::uint32_t parties() const noexcept { return parties_; }
  [[nodiscard]] std::uint32_t n_waiting() const noexcept {
    return word_.word().load(std::memory_order_relaxed) & 0xffff;
  }

 private:
  WaitWord word_;
  std::uint32_t parties_;
};

// The waiting half of a condition variable: a sequence number bumped by every notify. A waiter
// reads it while holding the user's lock, releases the lock, and sleeps only if no notify happened
// in between. Wake-ups may be spurious (as with std::condition_variable); callers loop.
class CondState {
 public:
  void init() noexcept;
  // Call with the lock held; returns the ticket to pass to sleep() after releasing the lock.
  [[nodiscard]] std::uint32_t prepare() noexcept;
  // Sleeps until a notify after prepare() or the deadline. Returns false on timeout.
  bool sleep(std::uint32_t ticket, Deadline deadline) noexcept;
  // Undoes prepare() without sleeping (the caller could not release the lock).
  void cancel() noexcept { seq_.unregister(); }
  void notify(std::uint32_t n) noexcept;
  void notify_all() noexcept;

 private:
  WaitWord seq_;  // bumped by every notify that found a sleeper
};

}  // namespace mpp::shm
