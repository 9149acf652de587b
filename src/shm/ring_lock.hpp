// A futex lock for the queue ring whose word holds the owner's pid, so that an owner that died
// (SIGKILL in the middle of a put or a get) is noticed and the lock taken over.
//
// Why not shm::RobustMutex: glibc's robust mutex costs ~25-30 ns per uncontended lock+unlock here
// (robust-list bookkeeping on every operation); this lock costs one CAS and one exchange (~10 ns),
// which is most of the budget of a 20 M items/s queue. The price: a dead owner is noticed by
// polling (waiters sleep in slices of kDeadOwnerPoll and then ask the kernel whether the owner is
// alive) instead of instantly by the kernel's robust list.
//
// Lifetime: lives in shared memory, zero-initialized means unlocked. Memory ordering: lock() is an
// acquire and unlock() a release, across processes. Fork: a lock held by the parent stays owned by
// the parent (its pid is in the word); the child just waits for it like anyone else.
// Ids: callers pass their process's id (id_for: the pid plus 9 bits of the process's start time);
// threads of one process share it, which is fine because a thread cannot die holding the lock
// without its whole process dying (the only case we recover). The start-time bits let a waiter
// tell a dead holder from a new process the kernel gave the same pid (pid_max is 32768 on many
// systems, so pids do come round again), except for 1 start time in 512.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace mpp::shm {

enum class RingLockResult {
  acquired,    // normal acquisition
  owner_died,  // acquired from a dead owner: the protected state may be half-updated; repair it
};

class RingLock {
 public:
  // How long a waiter sleeps before it checks whether the owner is still alive.
  static constexpr std::chrono::milliseconds kDeadOwnerPoll{50};
  // Longest single sleep of a waiter (see unlock_plain); it re-checks the word after each.
  static constexpr std::chrono::milliseconds kSleepSlice{1};

  // Bits of a lock id that hold the pid: Linux pids stay below PID_MAX_LIMIT = 2^22.
  static constexpr std::uint32_t kPidBits = 22;
  // The start-time bits kept above them (9: the rest of the word below the waiters bit).
  static constexpr std::uint32_t kStartMask = 0x1ffu;
  // The id a process locks with: `pid` (> 0) and the low 9 bits of `start`
  // (sys::process_start_time; 0 = unknown, then the pid alone identifies the holder).
  static constexpr std::int32_t id_for(std::int32_t pid, std::uint32_t start) noexcept {
    const auto p = static_cast<std::uint32_t>(pid);
    if (pid <= 0 || (p >> kPidBits) != 0) return pid;
    return static_cast<std::int32_t>(p | ((start & kStartMask) << kPidBits));
  }

  // Blocks until acquired (spins briefly, then futex-waits; EINTR is absorbed). `self` is the
  // caller's id (id_for, or a bare pid > 0). Never throws.
  RingLockResult lock(std::int32_t self) noexcept {
    std::uint32_t expected = 0;
    if (word_.compare_exchange_strong(expected, static_cast<std::uint32_t>(self),
                                      std::memory_order_acquire, std::memory_order_relaxed)) {
      return RingLockResult::acquired;
    }
    return lock_slow(self);
  }
  // Never blocks; true if acquired (a dead owner is not taken over here).
  bool try_lock(std::int32_t self) noexcept {
    std::uint32_t expected = 0;
    return word_.compare_exchange_strong(expected, static_cast<std::uint32_t>(self),
                                         std::memory_order_acquire, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    if (word_.exchange(0, std::memory_order_release) & kWaiters) wake_one();
  }
  // Like unlock(), but without a locked instruction when nobody announced a sleep: a locked
  // exchange makes this process wait until every store before it (an item just written, a
  // position just published, lines the other side is reading) has reached the other core, which
  // measured 7 M vs 30+ M items/s for a 1 -> 1 stream of 8-byte items. The cost: a waiter that
  // sets kWaiters between our load and our store is not woken by us. Its futex_wait still sees
  // the word change (EAGAIN) unless our store is delayed past its system call entry (we were
  // preempted in between); then it sleeps one kSleepSlice, the bound on that rare delay.
  void unlock_plain() noexcept {
    if ((word_.load(std::memory_order_relaxed) & kWaiters) != 0) {
      unlock();
      return;
    }
    word_.store(0, std::memory_order_release);
  }
  // How many times this process took a lock over from a dead owner (for tests and diagnostics).
  static std::uint64_t takeovers() noexcept;
  // Pid of the current owner, 0 when free (for tests and diagnostics).
  [[nodiscard]] std::int32_t owner() const noexcept {
    return static_cast<std::int32_t>(word_.load(std::memory_order_relaxed) &
                                     ((1u << kPidBits) - 1));
  }

 private:
  static constexpr std::uint32_t kWaiters = 0x8000'0000u;
  static_assert((kStartMask << kPidBits) < kWaiters,
                "a lock id (22 pid bits, 9 start-time bits) never reaches the waiters bit");
  RingLockResult lock_slow(std::int32_t self) noexcept;
  void wake_one() noexcept;

  std::atomic<std::uint32_t> word_{0};  // 0 free; else owner pid | kWaiters when someone may sleep
};

static_assert(sizeof(RingLock) == 4, "RingLock is one futex word inside the shared ring header");

}  // namespace mpp::shm
