#include "shm/ring_lock.hpp"

#include "mpp/detail/failpoint.hpp"
#include "sys/futex.hpp"
#include "sys/proc.hpp"

namespace mpp::shm {

namespace {

std::atomic<std::uint64_t> g_takeovers{0};

// Whether the holder named by lock id `id` (see RingLock::id_for) is still the process that took
// the lock: alive, and (when the id carries start-time bits) started at the same time.
bool holder_alive(std::uint32_t id) noexcept {
  const auto pid = static_cast<std::int32_t>(id & ((1u << RingLock::kPidBits) - 1));
  return sys::process_alive(pid, id >> RingLock::kPidBits, RingLock::kStartMask);
}

}  // namespace

std::uint64_t RingLock::takeovers() noexcept { return g_takeovers.load(std::memory_order_relaxed); }

RingLockResult RingLock::lock_slow(std::int32_t self) noexcept {
  const auto me = static_cast<std::uint32_t>(self);
  // Critical sections are a few hundred ns (one record copy) except for huge items: a short spin
  // catches the common case without a syscall.
  for (int i = 0; i < 200; ++i) {
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    if (w == 0 &&
        word_.compare_exchange_weak(w, me, std::memory_order_acquire, std::memory_order_relaxed)) {
      return RingLockResult::acquired;
    }
    sys::cpu_relax();
  }
  int slept = 0;  // slices slept since the last check that the owner is alive
  for (;;) {
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    if (w == 0) {
      // We may not be the only sleeper, so keep the waiters bit: an extra wake is cheap, a lost
      // one would leave a waiter asleep until its next poll.
      if (word_.compare_exchange_weak(w, me | kWaiters, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
        return RingLockResult::acquired;
      }
      continue;
    }
    if (!(w & kWaiters)) {
      if (!word_.compare_exchange_weak(w, w | kWaiters, std::memory_order_relaxed)) continue;
      w |= kWaiters;
    }
    if (sys::futex_wait(&word_, w, kSleepSlice) == sys::WaitResult::timed_out &&
        ++slept * kSleepSlice >= kDeadOwnerPoll) {
      slept = 0;
      const std::uint32_t owner = w & ~kWaiters;
      // The CAS only succeeds if the very same dead owner still holds the word, so two waiters
      // that both noticed the death cannot both take over.
      if (owner != me && !holder_alive(owner) &&
          word_.compare_exchange_strong(w, me | kWaiters, std::memory_order_acquire,
                                        std::memory_order_relaxed)) {
        g_takeovers.fetch_add(1, std::memory_order_relaxed);
        MPP_FAILPOINT("queue.lock.after_takeover");  // a second death, while recovering
        return RingLockResult::owner_died;
      }
    }
  }
}

void RingLock::wake_one() noexcept { sys::futex_wake(&word_, 1); }

}  // namespace mpp::shm
