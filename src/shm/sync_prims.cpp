#include "shm/sync_prims.hpp"

#include "sys/futex.hpp"

namespace mpp::shm {

namespace {
// Brief spinning before sleeping: on this VM a futex sleep/wake round trip between processes costs
// ~20 us, while a partner that is about to release usually does so within a microsecond.
constexpr int kSpins = 100;
}  // namespace

// ---- Semaphore ---------------------------------------------------------------------------------
void SemaphoreState::init(std::uint32_t initial, std::uint32_t bound) noexcept {
  value_.reset();
  value_.word().store(initial, std::memory_order_relaxed);
  bound_ = bound;
}

bool SemaphoreState::try_acquire() noexcept {
  auto& v_ = value_.word();
  std::uint32_t v = v_.load(std::memory_order_relaxed);
  while (v > 0) {
    if (v_.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed))
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
    if (value_.sleep_while(0, deadline.remaining()) == sys::WaitResult::timed_out) {
      return try_acquire();
    }
  }
}

bool SemaphoreState::release() noexcept {
  auto& v_ = value_.word();
  std::uint32_t v = v_.load(std::memory_order_relaxed);
  do {
    if (v >= bound_) return false;
  } while (
      !v_.compare_exchange_weak(v, v + 1, std::memory_order_seq_cst, std::memory_order_relaxed));
  if (value_.waiting(WakerFence::after_locked_op)) value_.wake(1);
  return true;
}

// ---- Event -------------------------------------------------------------------------------------
void EventState::init() noexcept { flag_.reset(); }

void EventState::set() noexcept {
  flag_.word().store(1, std::memory_order_seq_cst);
  if (flag_.waiting()) flag_.wake();
}

void EventState::clear() noexcept { flag_.word().store(0, std::memory_order_release); }

bool EventState::is_set() const noexcept {
  return flag_.word().load(std::memory_order_acquire) != 0;
}

bool EventState::wait(Deadline deadline) noexcept {
  for (;;) {
    if (is_set()) return true;
    if (flag_.sleep_while(0, deadline.remaining()) == sys::WaitResult::timed_out) return is_set();
  }
}

// ---- Barrier -----------------------------------------------------------------------------------
void BarrierState::init(std::uint32_t parties) noexcept {
  word_.reset();
  parties_ = parties;
}

std::uint32_t BarrierState::wait() noexcept {
  auto& word = word_.word();
  const std::uint32_t old = word.fetch_add(1, std::memory_order_acq_rel);
  const std::uint32_t gen = old >> 16;
  const std::uint32_t index = old & 0xffff;
  if (index + 1 == parties_) {
    // Last arriver: count back to zero and next generation in one store; it is the only writer
    // now, because every other party of this generation is waiting and none of the next has
    // been released yet.
    word.store(((gen + 1) & 0xffff) << 16, std::memory_order_release);
    if (word_.waiting()) word_.wake();
    return index;
  }
  int spins = kSpins;
  for (;;) {
    std::uint32_t w = word.load(std::memory_order_acquire);
    if ((w >> 16) != gen) return index;
    if (spins > 0) {
      --spins;
      sys::cpu_relax();
      continue;
    }
    // The word also changes as later parties arrive; futex_wait then returns and we re-check.
    (void)word_.sleep_while(w, std::chrono::nanoseconds::max());
  }
}

// ---- Condition ---------------------------------------------------------------------------------
void CondState::init() noexcept { seq_.reset(); }

std::uint32_t CondState::prepare() noexcept { return seq_.prepare(); }

bool CondState::sleep(std::uint32_t ticket, Deadline deadline) noexcept {
  const auto& word = seq_.word();
  bool notified = true;
  for (;;) {
    if (word.load(std::memory_order_acquire) != ticket) break;
    if (seq_.sleep(ticket, deadline.remaining()) == sys::WaitResult::timed_out) {
      notified = word.load(std::memory_order_acquire) != ticket;
      break;
    }
    // A wake-up without a sequence change is EINTR or spurious: go back to sleep.
  }
  seq_.unregister();
  return notified;
}

void CondState::notify(std::uint32_t n) noexcept {
  seq_.notify(static_cast<int>(n > 0x7fffffffu ? 0x7fffffffu : n));
}

void CondState::notify_all() noexcept { seq_.notify(); }

}  // namespace mpp::shm
