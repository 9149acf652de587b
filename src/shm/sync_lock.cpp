#include "shm/sync_lock.hpp"

#include <algorithm>

#include "sys/futex.hpp"
#include "sys/proc.hpp"

namespace mpp::shm {

static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "the lock word is shared between processes and must be a plain lock-free word");

namespace {
constexpr int kSpins = 100;
constexpr auto kFirstCheck = std::chrono::milliseconds(10);
constexpr auto kLastCheck = std::chrono::milliseconds(160);
}  // namespace

void SyncLock::init(Kind kind) noexcept {
  word_.store(0, std::memory_order_relaxed);
  kind_ = kind;
  count_ = 0;
  owner_died_.store(0, std::memory_order_relaxed);
  deaths_.store(0, std::memory_order_relaxed);
}

void SyncLock::wake_one() noexcept { sys::futex_wake(&word_, 1); }

Acquire SyncLock::relock(std::uint32_t self, std::uint32_t w) noexcept {
  (void)self;
  (void)w;
  if (kind_ == Kind::recursive) {
    ++count_;
    return Acquire::acquired;
  }
  return Acquire::already_owned;
}

bool SyncLock::take_over_if_dead(std::uint32_t self, std::uint32_t w) noexcept {
  const auto owner = static_cast<pid_t>(w & kTidMask);
  // kill(tid, 0) accepts any thread id; the /proc check behind it treats a zombie as dead, so a
  // parent waiting for a lock held by its SIGKILLed, not yet reaped child is not stuck.
  if (sys::process_alive(owner)) return false;
  // Keep the waiters bit: others may be asleep on the word, and our unlock must wake them.
  return word_.compare_exchange_strong(w, self | kWaiters, std::memory_order_acquire,
                                       std::memory_order_relaxed);
}

Acquire SyncLock::lock_slow(std::uint32_t self, std::uint32_t w, Deadline deadline) noexcept {
  if ((w & kTidMask) == self) return relock(self, w);
  // Spin briefly: a holder on another CPU usually releases within a microsecond, while a futex
  // sleep/wake round trip between processes costs ~20 us here. Plain loads until it looks free.
  for (int i = 0; i < kSpins; ++i) {
    sys::cpu_relax();
    w = word_.load(std::memory_order_relaxed);
    if (w == 0 &&
        word_.compare_exchange_weak(w, self, std::memory_order_acquire, std::memory_order_relaxed))
      return acquired_by(false);
  }
  auto check = std::chrono::duration_cast<std::chrono::nanoseconds>(kFirstCheck);
  for (;;) {
    w = word_.load(std::memory_order_relaxed);
    if (w == 0) {
      // Taken after sleeping: mark waiters conservatively, others may still be asleep.
      if (word_.compare_exchange_weak(w, self | kWaiters, std::memory_order_acquire,
                                      std::memory_order_relaxed))
        return acquired_by(false);
      continue;
    }
    if ((w & kWaiters) == 0) {
      if (!word_.compare_exchange_weak(w, w | kWaiters, std::memory_order_relaxed)) continue;
      w |= kWaiters;
    }
    std::chrono::nanoseconds t = check;
    if (deadline != kForever) {
      const auto left = deadline - std::chrono::steady_clock::now();
      if (left.count() <= 0) return Acquire::timed_out;
      t = std::min<std::chrono::nanoseconds>(t, left);
    }
    if (sys::futex_wait(&word_, w, t) == sys::WaitResult::timed_out) {
      // The holder kept it for a while: is it still alive?
      if (word_.load(std::memory_order_relaxed) == w && take_over_if_dead(self, w))
        return acquired_by(true);
      check = std::min<std::chrono::nanoseconds>(check * 2, kLastCheck);
    }
  }
}

Acquire SyncLock::lock_for(std::chrono::nanoseconds timeout) noexcept {
  if (timeout.count() <= 0) return try_lock();
  const std::uint32_t self = static_cast<std::uint32_t>(sys::cached_tid());
  std::uint32_t w = 0;
  if (word_.compare_exchange_strong(w, self, std::memory_order_acquire, std::memory_order_relaxed))
    return acquired_by(false);
  return lock_slow(self, w, deadline_after(timeout));
}

Acquire SyncLock::try_lock() noexcept {
  const std::uint32_t self = static_cast<std::uint32_t>(sys::cached_tid());
  std::uint32_t w = 0;
  if (word_.compare_exchange_strong(w, self, std::memory_order_acquire, std::memory_order_relaxed))
    return acquired_by(false);
  if ((w & kTidMask) == self) return relock(self, w);
  // A try on a lock whose holder died must not fail forever.
  if (take_over_if_dead(self, w)) return acquired_by(true);
  return Acquire::timed_out;
}

}  // namespace mpp::shm
