// The robust lock behind mpp::Lock, mpp::RLock and mpp::Condition: one 32-bit futex word in
// shared memory holding the owner's kernel thread id (plus a "waiters" bit).
//
// Robustness without the kernel's robust list: a waiter whose sleep times out (the holder kept
// the lock for a while) checks whether the holder's thread still exists (a zombie counts as
// dead); if not, it takes the word over with one CAS and is told (Acquire::owner_died). So a
// holder that died, SIGKILL included, delays the next acquirer by at most the check interval
// (10 ms growing to 160 ms), never forever. Thread ids are unique among live threads system-wide,
// so the word alone identifies the owner across processes; a holder's id could only be reused by
// a new thread after the kernel wraps its pid space (pid_max), which is the one window documented.
// Known limit: a holder that execve()s keeps its thread id, so its locks stay held.
//
// Why not glibc's PTHREAD_MUTEX_ROBUST: its robust-list bookkeeping makes the uncontended path
// ~1.35x a plain process-shared mutex before any wrapper cost; this word costs one CAS to lock and
// one exchange to unlock, like a plain mutex, and runs under ThreadSanitizer as ordinary atomics.
//
// Lifetime: init() once in zeroed shared memory; usable by every process that maps it. Memory
// ordering: lock is an acquire, unlock a release, across processes. Fork: the word keeps the
// forking thread's id; the child's threads have other ids, so the child never owns it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "shm/sync_prims.hpp"
#include "sys/sync_sys.hpp"

namespace mpp::shm {

enum class Acquire : std::uint8_t {
  acquired,       // now held by the calling thread
  owner_died,     // now held; the previous holder died holding it
  already_owned,  // errorcheck kind: the calling thread already held it; nothing changed
  timed_out,      // not acquired
};

class SyncLock {
 public:
  enum class Kind : std::uint8_t { errorcheck, recursive };
  static constexpr std::uint32_t kWaiters = 0x80000000u;
  static constexpr std::uint32_t kTidMask = 0x3fffffffu;  // pid_max is at most 2^22

  void init(Kind kind) noexcept;

  // Blocks until acquired (never timed_out). The uncontended path is one CAS, inline.
  Acquire lock() noexcept {
    const std::uint32_t self = static_cast<std::uint32_t>(sys::cached_tid());
    std::uint32_t w = 0;
    if (word_.compare_exchange_strong(w, self, std::memory_order_acquire,
                                      std::memory_order_relaxed)) [[likely]]
      return acquired_by(false);
    return lock_slow(self, w, kForever);
  }
  // Blocks at most `timeout` (<= 0: a try).
  Acquire lock_for(std::chrono::nanoseconds timeout) noexcept;
  // Never sleeps (may check whether the holder is still alive: a few system calls).
  Acquire try_lock() noexcept;
  // Returns false when the calling thread does not hold the lock (nothing changes then).
  bool unlock() noexcept {
    const std::uint32_t self = static_cast<std::uint32_t>(sys::cached_tid());
    if ((word_.load(std::memory_order_relaxed) & kTidMask) != self) return false;
    if (count_ > 1) {  // recursive re-entry
      --count_;
      return true;
    }
    if (owner_died_.load(std::memory_order_relaxed) != 0)
      owner_died_.store(0, std::memory_order_relaxed);
    if (word_.exchange(0, std::memory_order_release) & kWaiters) wake_one();
    return true;
  }

  // True if the calling thread holds the lock. A plain load: only the holder can make it true.
  [[nodiscard]] bool held_by_caller() const noexcept {
    return (word_.load(std::memory_order_relaxed) & kTidMask) ==
           static_cast<std::uint32_t>(sys::cached_tid());
  }

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
  Acquire relock(std::uint32_t self, std::uint32_t w) noexcept;
  Acquire lock_slow(std::uint32_t self, std::uint32_t w, Deadline deadline) noexcept;
  bool take_over_if_dead(std::uint32_t self, std::uint32_t w) noexcept;
  void wake_one() noexcept;

  std::atomic<std::uint32_t> word_;
  Kind kind_;
  // Owner-only fields (ordered by the lock itself).
  std::uint32_t count_;
  std::atomic<std::uint32_t> owner_died_;
  std::atomic<std::uint32_t> deaths_;
};

}  // namespace mpp::shm
