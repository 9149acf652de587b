// The robust, process-shared lock behind mpp::Lock, mpp::RLock and mpp::Condition.
//
// It is glibc's PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST mutex, of the ERRORCHECK kind for
// Lock and the RECURSIVE kind for RLock. Only the kernel's robust list can notice that an owner was
// SIGKILLed, and glibc owns that list, so the robust part cannot be a hand-written futex lock.
// ERRORCHECK costs nothing over NORMAL on the robust path and gives us, for free, owner tracking by
// kernel thread id: relocking by the owner reports `already_owned`, unlock by a non-owner is
// refused.
//
// Lifetime: init() once, in place, in fresh shared memory; then usable from every process that
// maps it. Memory ordering: acquire on lock, release on unlock, across processes. Fork: a lock held
// by the forking thread stays owned by that thread (the child's thread ids differ).
#pragma once

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace mpp::shm {

enum class Acquire : std::uint8_t {
  acquired,       // now held by the calling thread
  owner_died,     // now held; the previous owner died holding it (already made consistent)
  already_owned,  // the calling thread already held it (ERRORCHECK kind only); nothing changed
  timed_out,      // not acquired
};

class SyncLock {
 public:
  enum class Kind : std::uint8_t { errorcheck, recursive };

  // In-place initialization in zeroed shared memory. Throws std::system_error.
  void init(Kind kind);

  // Blocks until acquired. Never returns timed_out. Throws std::system_error on a corrupted mutex.
  Acquire lock();
  // Blocks at most `timeout` (CLOCK_MONOTONIC); timeout <= 0 is a try.
  Acquire lock_for(std::chrono::nanoseconds timeout);
  Acquire try_lock();
  // Returns false when the calling thread does not hold the lock (nothing changes then).
  bool unlock() noexcept;

  // True while the holder got the lock from a dead owner; cleared by the final unlock().
  [[nodiscard]] bool owner_died() const noexcept {
    return owner_died_.load(std::memory_order_relaxed) != 0;
  }
  // How many times a holder died with this lock (statistics, for tests and diagnostics).
  [[nodiscard]] std::uint32_t deaths() const noexcept {
    return deaths_.load(std::memory_order_relaxed);
  }

 private:
  Acquire classify(int r);

  pthread_mutex_t m_;
  // Written only by the holder, read by the holder: relaxed is enough, the mutex orders it.
  std::atomic<std::uint32_t> owner_died_;
  std::atomic<std::uint32_t> deaths_;
  // Thread id of the holder that received owner_died (so that only its final unlock clears it).
  std::atomic<std::int32_t> died_holder_;
};

}  // namespace mpp::shm
