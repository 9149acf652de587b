// The one robust lock algorithm of mpp: a 32-bit futex word in shared memory that holds its
// owner's id, so that an owner that died holding it (SIGKILL in the middle of a put, a get or a
// critical section) is noticed and the lock taken over. RingLock (queue rings, one id per process)
// and SyncLock (mpp::Lock, RLock, Condition, Pipe ends, one id per thread) are this word with
// their own timing; neither repeats the algorithm, so a fix to it reaches both.
//
// Ids: the owner's pid or thread id (22 bits: Linux ids stay below PID_MAX_LIMIT = 2^22) plus 9
// bits of that process's or thread's start time (sys::process_start_time), below the waiters bit.
// A waiter that finds the holder "alive" compares the start time too, so a dead holder whose id
// the kernel has meanwhile given to a new process or thread is taken over (pid_max is 32768 on
// many systems: ids do come round). The one window left: 1 start time in 512 matches by chance.
//
// Robustness without the kernel's robust list: a waiter that slept for a while (the check
// interval, per user) asks the kernel whether the holder still exists (a zombie counts as dead)
// and, if not, takes the word over with one CAS, which only succeeds if that same dead holder
// still holds it, so two waiters that both noticed the death cannot both take over.
//
// Why not glibc's PTHREAD_MUTEX_ROBUST: its robust-list bookkeeping costs ~25-30 ns per
// uncontended lock+unlock here; this word costs one CAS and one exchange (~10 ns), which is most
// of the budget of a 20 M items/s queue, and runs under ThreadSanitizer as ordinary atomics. The
// price: a dead owner is noticed by polling instead of instantly by the kernel.
//
// Lifetime: lives in shared memory, zero-initialized means unlocked. Memory ordering: acquiring
// is an acquire and unlocking a release, across processes. Fork: the word keeps the forking
// process's or thread's id, which the child does not have, so the child never owns it. Blocking:
// only lock() sleeps (spins first, then futex waits; EINTR is absorbed). Never throws.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "shm/deadline.hpp"

namespace mpp::shm {

// What an acquisition did (every robust lock of mpp answers with it).
enum class Acquire : std::uint8_t {
  acquired,       // now held by the caller
  owner_died,     // now held; the previous holder died holding it: repair what it protects
  already_owned,  // (SyncLock, errorcheck kind) the calling thread already held it; no change
  timed_out,      // not acquired
};

// How a lock's waiters wait: spin, then sleep in slices, and every check interval (doubling from
// `first_check` to `last_check`) look whether the holder is still alive.
struct OwnerLockTiming {
  int spins = 100;                                // attempts before the first sleep
  std::chrono::nanoseconds slice{1'000'000'000};  // longest single futex sleep
  std::chrono::nanoseconds first_check{10'000'000};
  std::chrono::nanoseconds last_check{160'000'000};
};

class OwnerLock {
 public:
  static constexpr std::uint32_t kWaiters = 0x8000'0000u;
  static constexpr std::uint32_t kIdMask = ~kWaiters;
  // Bits of an id that hold the pid or thread id, and the start-time bits above them.
  static constexpr std::uint32_t kPidBits = 22;
  static constexpr std::uint32_t kStartMask = 0x1ffu;
  static_assert((kStartMask << kPidBits) < kWaiters, "an id never reaches the waiters bit");

  // The id of process or thread `pid` (> 0) that started at `start` (sys::process_start_time;
  // 0 = unknown, then the pid alone identifies the holder).
  static constexpr std::int32_t id_for(std::int32_t pid, std::uint32_t start) noexcept {
    const auto p = static_cast<std::uint32_t>(pid);
    if (pid <= 0 || (p >> kPidBits) != 0) return pid;
    return static_cast<std::int32_t>(p | ((start & kStartMask) << kPidBits));
  }
  static constexpr std::int32_t pid_of(std::uint32_t id) noexcept {
    return static_cast<std::int32_t>(id & ((1u << kPidBits) - 1));
  }
  // Whether the holder named by `id` is still the process or thread that took the lock: alive
  // (not a zombie) and, when the id carries start-time bits, started at that time.
  static bool holder_alive(std::uint32_t id) noexcept;
  // How many times this process took a lock over from a dead owner (tests and diagnostics).
  static std::uint64_t takeovers() noexcept;

  // One CAS; true if acquired. Never sleeps and never takes a dead owner's lock over.
  bool try_lock(std::uint32_t self) noexcept {
    std::uint32_t expected = 0;
    return word_.compare_exchange_strong(expected, self, std::memory_order_acquire,
                                         std::memory_order_relaxed);
  }
  // Blocks until acquired (acquired or owner_died) or `deadline` passes (then timed_out).
  // The uncontended path is one CAS, inline.
  Acquire lock(std::uint32_t self, const OwnerLockTiming& timing,
               Deadline deadline = Deadline::forever()) noexcept {
    if (try_lock(self)) [[likely]]
      return Acquire::acquired;
    return lock_slow(self, timing, deadline);
  }
  // Takes the lock over if its holder is dead (and still holds it once that is known): a few
  // system calls, no sleep. True if now held by `self`.
  bool take_over_if_dead(std::uint32_t self) noexcept;

  void unlock() noexcept {
    if (word_.exchange(0, std::memory_order_release) & kWaiters) wake_one();
  }
  // Like unlock(), but without a locked instruction when nobody announced a sleep: a locked
  // exchange makes this process wait until every store before it (an item just written, a
  // position just published, lines the other side is reading) has reached the other core, which
  // measured 7 M vs 30+ M items/s for a 1 -> 1 stream of 8-byte items. The cost: a waiter that
  // sets kWaiters between our load and our store is not woken by us. Its futex_wait still sees
  // the word change (EAGAIN) unless our store is delayed past its system call entry (we were
  // preempted in between); then it sleeps one timing.slice, which bounds that rare delay (so
  // users of unlock_plain pick a short slice).
  void unlock_plain() noexcept {
    if ((word_.load(std::memory_order_relaxed) & kWaiters) != 0) {
      unlock();
      return;
    }
    word_.store(0, std::memory_order_release);
  }

  // The holder's id (0 when free). A plain load: exact only for the holder itself.
  [[nodiscard]] std::uint32_t holder() const noexcept {
    return word_.load(std::memory_order_relaxed) & kIdMask;
  }

 private:
  Acquire lock_slow(std::uint32_t self, const OwnerLockTiming& timing, Deadline deadline) noexcept;
  void wake_one() noexcept;

  std::atomic<std::uint32_t> word_{0};  // 0 free; else holder id | kWaiters when someone may sleep
};

static_assert(sizeof(OwnerLock) == 4, "an OwnerLock is one futex word");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "the lock word is shared between processes and must be a plain lock-free word");

}  // namespace mpp::shm
