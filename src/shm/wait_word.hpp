// The one futex waiter of src/shm: a 32-bit word that sleepers watch, with the count of those
// about to sleep, so that a waker makes a system call only when somebody sleeps. Used by the
// queue's rings (items published, space freed, all tasks done), the pool's transport events,
// and mpp's Semaphore, Event and Condition states.
//
// Two ways to use the word:
//   - as a sequence: the state lives elsewhere (ring cursors, a condition's predicate). A waker
//     publishes its change, then notify() bumps the word and wakes sleepers if there are any; a
//     sleeper registers (prepare()), re-checks its condition, and sleeps only while the word still
//     holds the value it read when registering (sleep()/sleep_unless()).
//   - as the state itself (an event's flag, a semaphore's count): the waker changes the word and
//     then wakes if waiting(); a sleeper sleeps while the word has the value it saw
//     (sleep_while()).
//
// Lost wake-up freedom (Dekker): the sleeper's registration is a seq_cst read-modify-write made
// before its last check; the waker reads the count (waiting()) after its change is visible. In
// the C++ model a seq_cst read-modify-write on the count orders the two: either the waker sees
// the registration, or the sleeper sees the change. WakerFence names two cheaper cases where the
// waker's read may be a plain load (see waiting()).
//
// Lifetime: lives in shared memory (zero-filled memory is a valid word with no sleepers), in
// any number of processes; the child of a fork sees the same word. Memory + futex only (plus
// membarrier for sleep_unless's fenceless wakers); never throws, never allocates. Sleeps are
// bounded by the timeout given; EINTR and spurious wake-ups return early, so callers loop.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "sys/futex.hpp"

namespace mpp::shm {

// What orders a waker's "publish, then read the waiters count" (see WaitWord::waiting).
enum class WakerFence : unsigned char {
  needed,               // nothing yet: the read must be a seq_cst read-modify-write
  after_locked_op,      // right after a locked read-modify-write (a full barrier on x86)
  sleepers_membarrier,  // sleepers issue membarrier before re-checking (sleep_unless, fenceless)
};

class WaitWord {
 public:
  void reset() noexcept {
    word_.store(0, std::memory_order_relaxed);
    waiters_.store(0, std::memory_order_relaxed);
  }
  [[nodiscard]] std::atomic<std::uint32_t>& word() noexcept { return word_; }
  [[nodiscard]] const std::atomic<std::uint32_t>& word() const noexcept { return word_; }

  // ---- sleepers ------------------------------------------------------------------------------
  // Registers a sleeper and returns the word to pass to sleep(); pair with unregister().
  [[nodiscard]] std::uint32_t prepare() noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    return word_.load(std::memory_order_seq_cst);
  }
  // One sleep of a registered sleeper while the word still holds `seen`, at most `timeout`
  // (nanoseconds::max(): no limit). Stays registered.
  sys::WaitResult sleep(std::uint32_t seen, std::chrono::nanoseconds timeout) noexcept {
    return sys::futex_wait(&word_, seen, timeout);
  }
  void unregister() noexcept { waiters_.fetch_sub(1, std::memory_order_relaxed); }

  // Registers, sleeps at most `slice` unless ready() holds after registering, unregisters.
  // Returns true if the sleep lasted the whole slice (no wake-up came). With
  // `wakers_may_be_fenceless`, wakers may use WakerFence::sleepers_membarrier: the sleeper then
  // makes every running process execute a barrier before its check (or, where that cannot be
  // done, sleeps at most 1 ms instead of relying on their wake-up).
  template <class Ready>
  bool sleep_unless(Ready&& ready, std::chrono::nanoseconds slice,
                    bool wakers_may_be_fenceless = false) noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    if (wakers_may_be_fenceless && !sys::membarrier_global()) {
      slice = std::min<std::chrono::nanoseconds>(slice, std::chrono::milliseconds(1));
    }
    const std::uint32_t s = word_.load(std::memory_order_seq_cst);
    bool expired = false;
    if (!ready()) expired = sys::futex_wait(&word_, s, slice) == sys::WaitResult::timed_out;
    unregister();
    return expired;
  }

  // The word used as state: registers, sleeps while it holds `value` (at most `timeout`),
  // unregisters.
  sys::WaitResult sleep_while(std::uint32_t value, std::chrono::nanoseconds timeout) noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    const sys::WaitResult r = sys::futex_wait(&word_, value, timeout);
    unregister();
    return r;
  }

  // ---- wakers --------------------------------------------------------------------------------
  // Whether somebody may sleep on the word; call after making the change visible. `f` says what
  // already orders the change before this read (see WakerFence): on x86, right after a locked
  // read-modify-write, or when sleepers issue membarrier, only the compiler must keep the load
  // after the change; otherwise the read is a seq_cst read-modify-write.
  [[nodiscard]] bool waiting(WakerFence f = WakerFence::needed) noexcept {
    bool plain_load = f == WakerFence::sleepers_membarrier;
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
    plain_load = plain_load || f == WakerFence::after_locked_op;
#endif
    if (plain_load) {
      std::atomic_signal_fence(std::memory_order_seq_cst);
      return waiters_.load(std::memory_order_relaxed) != 0;
    }
    return waiters_.fetch_add(0, std::memory_order_seq_cst) != 0;
  }
  // Moves the sequence and wakes up to `n` sleepers (whether or not any is registered).
  void bump_and_wake(int n = kAll) noexcept {
    word_.fetch_add(1, std::memory_order_seq_cst);
    sys::futex_wake(&word_, n);
  }
  // The sequence form's waker: bump_and_wake() when waiting(f).
  void notify(int n = kAll, WakerFence f = WakerFence::needed) noexcept {
    if (waiting(f)) bump_and_wake(n);
  }
  // Wakes up to `n` sleepers without changing the word (the state form, after changing it).
  void wake(int n = kAll) noexcept { sys::futex_wake(&word_, n); }

  static constexpr int kAll = 0x7fffffff;

 private:
  std::atomic<std::uint32_t> word_{0};
  std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace mpp::shm
