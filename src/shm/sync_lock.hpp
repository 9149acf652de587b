// The robust lock behind mpp::Lock, mpp::RLock, mpp::Condition and Pipe ends: an OwnerLock
// (shm/owner_lock.hpp, the one robust lock algorithm of mpp) whose ids name threads (the kernel
// thread id plus 9 bits of the thread's start time), with an owner-only recursion count and a
// record of deaths.
//
// Robustness: a waiter whose sleep times out (the holder kept the lock for a while) checks
// whether the holder's thread still exists and is the one that took the lock (a zombie counts as
// dead, a new thread or process that got the same id does not count); if not, it takes the word
// over and is told (Acquire::owner_died). So a holder that died, SIGKILL included, delays the
// next acquirer by at most the check interval (10 ms growing to 160 ms), never forever. Known
// limit: a holder that execve()s keeps its thread id and start time, so its locks stay held.
//
// Lifetime: init() once in zeroed shared memory; usable by every process that maps it. Memory
// ordering: lock is an acquire, unlock a release, across processes. Fork: the word keeps the
// forking thread's id; the child's threads have other ids, so the child never owns it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "shm/owner_lock.hpp"
#include "shm/sync_prims.hpp"
#include "sys/thread.hpp"

namespace mpp::shm {

class SyncLock {
 public:
  enum class Kind : std::uint8_t { errorcheck, recursive };

  void init(Kind kind) noexcept;

  // Blocks until acquired (never timed_out). The uncontended path is one CAS, inline.
  Acquire lock() noexcept {
    const std::uint32_t self = self_id();
    if (word_.try_lock(self)) [[likely]]
      return acquired_by(false);
    return lock_slow(self, Deadline::forever());
  }
  // Blocks at most `timeout` (<= 0: a try).
  Acquire lock_for(std::chrono::nanoseconds timeout) noexcept;
  // Never sleeps (may check whether the holder is still alive: a few system calls).
  Acquire try_lock() noexcept;
  // Returns false when the calling thread does not hold the lock (nothing changes then).
  bool unlock() noexcept {
    if (word_.holder() != self_id()) return false;
    if (count_ > 1) {  // recursive re-entry
      --count_;
      return true;
    }
    if (owner_died_.load(std::memory_order_relaxed) != 0)
      owner_died_.store(0, std::memory_order_relaxed);
    word_.unlock();
    return true;
  }

  // True if the calling thread holds the lock. A plain load: only the holder can make it true.
  [[nodiscard]] bool held_by_caller() const noexcept { return word_.holder() == self_id(); }

  // True while the holder got the lock from a dead owner; cleared by its final unlock().
  [[nodiscard]] bool owner_died() const noexcept {
    return owner_died_.load(std::memory_order_relaxed) != 0;
  }
  // How many times a holder died with this lock.
  [[nodiscard]] std::uint32_t deaths() const noexcept {
    return deaths_.load(std::memory_order_relaxed);
  }

 private:
  Acquire acquired_by(bool died) noexcept {
    count_ = 1;
    if (died) {
      owner_died_.store(1, std::memory_order_relaxed);
      deaths_.fetch_add(1, std::memory_order_relaxed);
      return Acquire::owner_died;
    }
    return Acquire::acquired;
  }
  // The calling thread's id in the lock word.
  static std::uint32_t self_id() noexcept {
    const sys::ThreadIdentity me = sys::cached_thread();
    return static_cast<std::uint32_t>(OwnerLock::id_for(me.tid, me.start));
  }
  Acquire relock() noexcept;
  Acquire lock_slow(std::uint32_t self, Deadline deadline) noexcept;

  OwnerLock word_;
  Kind kind_;
  // Owner-only fields (ordered by the lock itself).
  std::uint32_t count_;
  std::atomic<std::uint32_t> owner_died_;
  std::atomic<std::uint32_t> deaths_;
};

}  // namespace mpp::shm
