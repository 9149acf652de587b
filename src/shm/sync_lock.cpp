#include "shm/sync_lock.hpp"

#include <new>

namespace mpp::shm {

namespace {
// A user's critical section may be long (it is user code): spin briefly, sleep until woken, and
// check whether the holder is alive after 10 ms, then at doubling intervals up to 160 ms.
constexpr OwnerLockTiming kTiming{.spins = 100,
                                  .slice = std::chrono::milliseconds(160),
                                  .first_check = std::chrono::milliseconds(10),
                                  .last_check = std::chrono::milliseconds(160)};
}  // namespace

void SyncLock::init(Kind kind) noexcept {
  new (&word_) OwnerLock;
  kind_ = kind;
  count_ = 0;
  owner_died_.store(0, std::memory_order_relaxed);
  deaths_.store(0, std::memory_order_relaxed);
}

Acquire SyncLock::relock() noexcept {
  if (kind_ == Kind::recursive) {
    ++count_;
    return Acquire::acquired;
  }
  return Acquire::already_owned;
}

Acquire SyncLock::lock_slow(std::uint32_t self, Deadline deadline) noexcept {
  if (word_.holder() == self) return relock();
  const Acquire a = word_.lock(self, kTiming, deadline);
  return a == Acquire::timed_out ? a : acquired_by(a == Acquire::owner_died);
}

Acquire SyncLock::lock_for(std::chrono::nanoseconds timeout) noexcept {
  if (timeout.count() <= 0) return try_lock();
  const std::uint32_t self = self_id();
  if (word_.try_lock(self)) return acquired_by(false);
  return lock_slow(self, Deadline::after(timeout));
}

Acquire SyncLock::try_lock() noexcept {
  const std::uint32_t self = self_id();
  if (word_.try_lock(self)) return acquired_by(false);
  if (word_.holder() == self) return relock();
  // A try on a lock whose holder died must not fail forever.
  if (word_.take_over_if_dead(self)) return acquired_by(true);
  return Acquire::timed_out;
}

}  // namespace mpp::shm
