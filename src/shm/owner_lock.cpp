#include "shm/owner_lock.hpp"

#include <algorithm>

#include "sys/futex.hpp"
#include "sys/proc.hpp"

namespace mpp::shm {

namespace {
std::atomic<std::uint64_t> g_takeovers{0};
}  // namespace

bool OwnerLock::holder_alive(std::uint32_t id) noexcept {
  // kill(tid, 0) accepts any thread id and /proc/TID/stat exists for every thread, so thread
  // holders are checked like processes; the /proc check treats a zombie as dead, so a parent
  // waiting for a lock held by its SIGKILLed, not yet reaped child is not stuck.
  return sys::process_alive(pid_of(id), id >> kPidBits, kStartMask);
}

std::uint64_t OwnerLock::takeovers() noexcept {
  return g_takeovers.load(std::memory_order_relaxed);
}

void OwnerLock::wake_one() noexcept { sys::futex_wake(&word_, 1); }

bool OwnerLock::take_over_if_dead(std::uint32_t self) noexcept {
  std::uint32_t seen = word_.load(std::memory_order_relaxed);
  const std::uint32_t holder = seen & kIdMask;
  if (holder == 0 || holder == self || holder_alive(holder)) return false;
  // The CAS succeeds only if that same dead holder still holds the word, so two waiters that both
  // noticed the death cannot both take over. Keep the waiters bit: others may be asleep on the
  // word, and our unlock must wake them.
  if (!word_.compare_exchange_strong(seen, self | kWaiters, std::memory_order_acquire,
                                     std::memory_order_relaxed))
    return false;
  g_takeovers.fetch_add(1, std::memory_order_relaxed);
  return true;
}

Acquire OwnerLock::lock_slow(std::uint32_t self, const OwnerLockTiming& timing,
                             Deadline deadline) noexcept {
  using clock = std::chrono::steady_clock;
  // Critical sections are short (a record copy, a user's few statements): a holder on another CPU
  // usually releases within a microsecond, while a futex sleep/wake round trip between processes
  // costs ~20 us here. Plain loads until the word looks free.
  for (int i = 0; i < timing.spins; ++i) {
    sys::cpu_relax();
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    if (w == 0 &&
        word_.compare_exchange_weak(w, self, std::memory_order_acquire, std::memory_order_relaxed))
      return Acquire::acquired;
  }
  std::chrono::nanoseconds interval = timing.first_check;
  clock::time_point next_check = clock::now() + interval;
  for (;;) {
    std::uint32_t w = word_.load(std::memory_order_relaxed);
    if (w == 0) {
      // Taken after sleeping: keep the waiters bit, others may still be asleep (an extra wake
      // is cheap, a lost one would leave a waiter asleep until its next check).
      if (word_.compare_exchange_weak(w, self | kWaiters, std::memory_order_acquire,
                                      std::memory_order_relaxed))
        return Acquire::acquired;
      continue;
    }
    if ((w & kWaiters) == 0) {
      if (!word_.compare_exchange_weak(w, w | kWaiters, std::memory_order_relaxed)) continue;
      w |= kWaiters;
    }
    const clock::time_point now = clock::now();
    if (now >= next_check) {
      // The holder kept the lock for a while: is it still the process or thread that took it?
      if (take_over_if_dead(self)) return Acquire::owner_died;
      interval = std::min(interval * 2, timing.last_check);
      next_check = now + interval;
    }
    const std::chrono::nanoseconds left = deadline.remaining();
    if (left.count() <= 0) return Acquire::timed_out;
    const std::chrono::nanoseconds t = std::min({timing.slice, next_check - now, left});
    (void)sys::futex_wait(&word_, w, std::max(t, std::chrono::nanoseconds(1000)));
  }
}

}  // namespace mpp::shm
