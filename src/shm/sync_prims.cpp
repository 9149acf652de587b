#include "shm/sync_prims.hpp"

#include "sys/futex.hpp"

namespace mpp::shm {

namespace {
// Brief spinning before sleeping: on this VM a futex sleep/wake round trip between processes costs
// ~20 us, while a partner that is about to release usually does so within a microsecond.
constexpr int kSpins = 100;

// Remaining time until the deadline, for futex_wait (nanoseconds::max() = forever).
std::chrono::nanoseconds remaining(Deadline d) noexcept {
  if (d == kForever) return std::chrono::nanoseconds::max();
  return d - std::chrono::steady_clock::now();
}
}  // namespace

Deadline deadline_after(std::chrono::nanoseconds timeout) noexcept {
  const auto now = std::chrono::steady_clock::now();
  if (timeout >= Deadline::max() - now) return kForever;
  return now + timeout;
}

// ---- Semaphore ---------------------------------------------------------------------------------
void SemaphoreState::init(std::uint32_t initial, std::uint32_t bound) noexcept {
  value_.store(initial, std::memory_order_relaxed);
  waiters_.store(0, std::memory_order_relaxed);
  bound_ = bound;
}

bool SemaphoreState::try_acquire() noexcept {
  std::uint32_t v = value_.load(std::memory_order_relaxed);
  while (v > 0) {
    if (value_.compare_exchange_weak(v, v - 1, std::memory_order_acquire,
                                     std::memory_order_relaxed))
      return true;
  }
  return false;
}

bool SemaphoreState::acquire(Deadline deadline) noexcept {
  for (int i = 0; i < kSpins; ++i) {
    if (try_acquire()) return true;
    sys::cpu_relax();
  }
  for (;;) {
    if (try_acquire()) return true;
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    auto r = sys::futex_wait(&value_, 0, remaining(deadline));
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    if (r == sys::WaitResult::timed_out) return try_acquire();
  }
}

bool SemaphoreState::release() noexcept {
  std::uint32_t v = value_.load(std::memory_order_relaxed);
  do {
    if (v >= bound_) return false;
  } while (!value_.compare_exchange_weak(v, v + 1, std::memory_order_seq_cst,
                                         std::memory_order_relaxed));
  if (waiters_.load(std::memory_order_seq_cst) != 0) sys::futex_wake(&value_, 1);
  return true;
}

// ---- Event -------------------------------------------------------------------------------------
void EventState::init() noexcept {
  flag_.store(0, std::memory_order_relaxed);
  waiters_.store(0, std::memory_order_relaxed);
}

void EventState::set() noexcept {
  flag_.store(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) != 0) sys::futex_wake_all(&flag_);
}

void EventState::clear() noexcept { flag_.store(0, std::memory_order_release); }

bool EventState::is_set() const noexcept { return flag_.load(std::memory_order_acquire) != 0; }

bool EventState::wait(Deadline deadline) noexcept {
  for (;;) {
    if (flag_.load(std::memory_order_acquire) != 0) return true;
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    auto r = sys::futex_wait(&flag_, 0, remaining(deadline));
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    if (r == sys::WaitResult::timed_out) return flag_.load(std::memory_order_acquire) != 0;
  }
}

// ---- Barrier -----------------------------------------------------------------------------------
void BarrierState::init(std::uint32_t parties) noexcept {
  word_.store(0, std::memory_order_relaxed);
  parties_ = parties;
}

std::uint32_t BarrierState::wait() noexcept {
  const std::uint32_t old = word_.fetch_add(1, std::memory_order_acq_rel);
  const std::uint32_t gen = old >> 16;
  const std::uint32_t index = old & 0xffff;
  if (index + 1 == parties_) {
    // Last arriver: count back to zero and next generation in one store; it is the only writer
    // now, because every other party of this generation is waiting and none of the next has
    // been released yet.
    word_.store(((gen + 1) & 0xffff) << 16, std::memory_order_release);
    sys::futex_wake_all(&word_);
    return index;
  }
  int spins = kSpins;
  for (;;) {
    std::uint32_t w = word_.load(std::memory_order_acquire);
    if ((w >> 16) != gen) return index;
    if (spins > 0) {
      --spins;
      sys::cpu_relax();
      continue;
    }
    // The word also changes as later parties arrive; futex_wait then returns and we re-check.
    sys::futex_wait(&word_, w);
  }
}

// ---- Condition ---------------------------------------------------------------------------------
void CondState::init() noexcept {
  seq_.store(0, std::memory_order_relaxed);
  waiters_.store(0, std::memory_order_relaxed);
}

std::uint32_t CondState::prepare() noexcept {
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  return seq_.load(std::memory_order_seq_cst);
}

bool CondState::sleep(std::uint32_t ticket, Deadline deadline) noexcept {
  bool notified = true;
  for (;;) {
    if (seq_.load(std::memory_order_acquire) != ticket) break;
    if (sys::futex_wait(&seq_, ticket, remaining(deadline)) == sys::WaitResult::timed_out) {
      notified = seq_.load(std::memory_order_acquire) != ticket;
      break;
    }
    // A wake-up without a sequence change is EINTR or spurious: go back to sleep.
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  return notified;
}

void CondState::notify(std::uint32_t n) noexcept {
  if (waiters_.load(std::memory_order_seq_cst) == 0) return;
  seq_.fetch_add(1, std::memory_order_seq_cst);
  sys::futex_wake(&seq_, static_cast<int>(n > 0x7fffffffu ? 0x7fffffffu : n));
}

void CondState::notify_all() noexcept {
  if (waiters_.load(std::memory_order_seq_cst) == 0) return;
  seq_.fetch_add(1, std::memory_order_seq_cst);
  sys::futex_wake_all(&seq_);
}

}  // namespace mpp::shm
