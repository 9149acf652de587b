#include "shm/sync_lock.hpp"

#include <cerrno>
#include <ctime>
#include <system_error>

#include "sys/sync_sys.hpp"

namespace mpp::shm {

static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "the owner-died flag lives in shared memory and must be lock-free");

void SyncLock::init(Kind kind) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutexattr_settype(
      &a, kind == Kind::recursive ? PTHREAD_MUTEX_RECURSIVE : PTHREAD_MUTEX_ERRORCHECK);
  int r = pthread_mutex_init(&m_, &a);
  pthread_mutexattr_destroy(&a);
  if (r != 0) throw std::system_error(r, std::generic_category(), "cannot initialize shared lock");
  owner_died_.store(0, std::memory_order_relaxed);
  deaths_.store(0, std::memory_order_relaxed);
}

Acquire SyncLock::classify(int r) {
  switch (r) {
    case 0:
      return Acquire::acquired;
    case EOWNERDEAD:
      // Made consistent at once: mpp's contract is "the next acquirer is told" (owner_died()),
      // not glibc's "unusable forever unless repaired before unlock", which would turn every
      // forgotten check into a permanently dead lock (ENOTRECOVERABLE).
      pthread_mutex_consistent(&m_);
      died_holder_.store(sys::current_tid(), std::memory_order_relaxed);
      owner_died_.store(1, std::memory_order_relaxed);
      deaths_.fetch_add(1, std::memory_order_relaxed);
      return Acquire::owner_died;
    case EDEADLK:
      return Acquire::already_owned;
    case ETIMEDOUT:
    case EBUSY:
      return Acquire::timed_out;
    default:
      throw std::system_error(r, std::generic_category(), "cannot acquire lock");
  }
}

Acquire SyncLock::lock() { return classify(pthread_mutex_lock(&m_)); }

Acquire SyncLock::try_lock() { return classify(pthread_mutex_trylock(&m_)); }

Acquire SyncLock::lock_for(std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return try_lock();
  Acquire fast = try_lock();
  if (fast != Acquire::timed_out) return fast;
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  auto ns = ts.tv_nsec + timeout.count() % 1'000'000'000;
  ts.tv_sec += static_cast<time_t>(timeout.count() / 1'000'000'000 + ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  // CLOCK_MONOTONIC: wall-clock jumps never stretch or cut a timeout.
  return classify(pthread_mutex_clocklock(&m_, CLOCK_MONOTONIC, &ts));
}

bool SyncLock::unlock() noexcept {
  // Clear the flag before the release so the next holder never sees a stale "died". Only the
  // holder that was told may clear it, and for a recursive lock only at its final unlock. The
  // thread-id lookup is a system call, paid only in the rare "someone died" state.
  if (owner_died_.load(std::memory_order_relaxed) != 0 &&
      died_holder_.load(std::memory_order_relaxed) == sys::current_tid() &&
      m_.__data.__count <= 1) {
    owner_died_.store(0, std::memory_order_relaxed);
  }
  return pthread_mutex_unlock(&m_) == 0;
}

}  // namespace mpp::shm
