#include "shm/robust_mutex.hpp"

#include <cerrno>
#include <ctime>
#include <system_error>

namespace mpp::shm {

namespace {
[[noreturn]] void fail(int err, const char* what) {
  throw std::system_error(err, std::generic_category(), what);
}
LockResult classify(int r, const char* what) {
  switch (r) {
    case 0:
      return LockResult::acquired;
    case EOWNERDEAD:
      return LockResult::owner_died;
    case ETIMEDOUT:
    case EBUSY:
      return LockResult::timed_out;
    default:
      fail(r, what);
  }
}
}  // namespace

void RobustMutex::init() {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  int r = pthread_mutex_init(&m_, &a);
  pthread_mutexattr_destroy(&a);
  if (r != 0) fail(r, "cannot initialize shared lock");
}

LockResult RobustMutex::lock() { return classify(pthread_mutex_lock(&m_), "cannot acquire lock"); }

LockResult RobustMutex::lock_for(std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return try_lock();
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  auto ns = ts.tv_nsec + timeout.count() % 1'000'000'000;
  ts.tv_sec += static_cast<time_t>(timeout.count() / 1'000'000'000 + ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  // clocklock (glibc >= 2.30) takes CLOCK_MONOTONIC: wall-clock jumps never stretch a timeout.
  return classify(pthread_mutex_clocklock(&m_, CLOCK_MONOTONIC, &ts), "cannot acquire lock");
}

LockResult RobustMutex::try_lock() {
  return classify(pthread_mutex_trylock(&m_), "cannot acquire lock");
}

void RobustMutex::mark_consistent() noexcept { pthread_mutex_consistent(&m_); }

void RobustMutex::unlock() noexcept { pthread_mutex_unlock(&m_); }

}  // namespace mpp::shm
