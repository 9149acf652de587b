// The lock of a queue ring's producer or consumer side: an OwnerLock (shm/owner_lock.hpp, the one
// robust lock algorithm of mpp) whose ids name processes (OwnerLock::id_for of the pid and the
// process's start time). Threads of one process share the id, which is fine because a thread
// cannot die holding the lock without its whole process dying (the only case we recover).
//
// Timing: waiters sleep in slices of kSleepSlice (1 ms), because the ring unlocks with
// unlock_plain (no locked instruction: 7 M vs 30+ M items/s for 1 -> 1 8-byte items, see
// OwnerLock::unlock_plain), whose rare lost wake-up a slice bounds; they check whether the holder
// is alive every kDeadOwnerPoll (50 ms): a ring critical section is one record copy, so a holder
// that keeps the lock that long is most likely dead or stopped.
//
// Lifetime, ordering, fork: as OwnerLock. Never throws.
#pragma once

#include <chrono>
#include <cstdint>

#include "shm/owner_lock.hpp"

namespace mpp::shm {

class RingLock {
 public:
  static constexpr std::chrono::milliseconds kDeadOwnerPoll{50};
  static constexpr std::chrono::milliseconds kSleepSlice{1};
  static constexpr std::uint32_t kPidBits = OwnerLock::kPidBits;
  static constexpr std::uint32_t kStartMask = OwnerLock::kStartMask;
  // The id a process locks with (see OwnerLock::id_for).
  static constexpr std::int32_t id_for(std::int32_t pid, std::uint32_t start) noexcept {
    return OwnerLock::id_for(pid, start);
  }

  // Blocks until acquired: Acquire::acquired or Acquire::owner_died (the ring side's state may
  // then be half-updated: the caller repairs it). `self` is the caller's id (id_for, or a bare
  // pid > 0).
  Acquire lock(std::int32_t self) noexcept {
    const Acquire a = word_.lock(static_cast<std::uint32_t>(self), kTiming);
    if (a == Acquire::owner_died) after_takeover();
    return a;
  }
  // Never blocks; true if acquired (a dead owner is not taken over here).
  bool try_lock(std::int32_t self) noexcept {
    return word_.try_lock(static_cast<std::uint32_t>(self));
  }
  void unlock() noexcept { word_.unlock(); }
  void unlock_plain() noexcept { word_.unlock_plain(); }
  // How many times this process took a lock (any OwnerLock) over from a dead owner.
  static std::uint64_t takeovers() noexcept { return OwnerLock::takeovers(); }
  // Pid of the current owner, 0 when free (tests and diagnostics).
  [[nodiscard]] std::int32_t owner() const noexcept { return OwnerLock::pid_of(word_.holder()); }

 private:
  static constexpr OwnerLockTiming kTiming{.spins = 200,
                                           .slice = kSleepSlice,
                                           .first_check = kDeadOwnerPoll,
                                           .last_check = kDeadOwnerPoll};
  static void after_takeover() noexcept;  // the fail point of a second death while recovering

  OwnerLock word_;
};

static_assert(sizeof(RingLock) == 4, "RingLock is one futex word inside the shared ring header");

}  // namespace mpp::shm
