// Shared futex waits and wakes, and membarrier (see futex.hpp).
#include "sys/futex.hpp"

#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace mpp::sys {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "futex words must be plain 32-bit integers in shared memory");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word must be lock-free to be shared between processes");

WaitResult futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                      std::chrono::nanoseconds timeout) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout != std::chrono::nanoseconds::max()) {
    if (timeout.count() <= 0) return WaitResult::timed_out;
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    tsp = &ts;
  }
  // Shared futex (no FUTEX_PRIVATE_FLAG): the key is the physical page, so waiters in other
  // processes that map the same memory are found.
  long r = ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word), FUTEX_WAIT, expected,
                     tsp, nullptr, 0);
  if (r == -1 && errno == ETIMEDOUT) return WaitResult::timed_out;
  return WaitResult::woken;  // woken, EAGAIN (value changed) or EINTR: the caller re-checks
}

namespace {
long membarrier_call(int cmd) noexcept { return ::syscall(SYS_membarrier, cmd, 0, 0); }
// -1 unknown, 0 no, 1 yes: whether this kernel offers GLOBAL_EXPEDITED (asked once).
std::atomic<int> g_membarrier_supported{-1};
bool membarrier_supported() noexcept {
  int s = g_membarrier_supported.load(std::memory_order_relaxed);
  if (s < 0) {
    const long q = membarrier_call(MEMBARRIER_CMD_QUERY);
    const bool ok = q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0 &&
                    (q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0;
    s = ok ? 1 : 0;
    g_membarrier_supported.store(s, std::memory_order_relaxed);
  }
  return s == 1;
}
}  // namespace

bool membarrier_register() noexcept {
  return membarrier_supported() && membarrier_call(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
}

bool membarrier_global() noexcept {
  // Unsupported: no process can have registered, so there is nobody whose fence is missing.
  return !membarrier_supported() || membarrier_call(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

int futex_wake(const std::atomic<std::uint32_t>* word, int n) noexcept {
  long r = ::syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(word), FUTEX_WAKE, n,
                     nullptr, nullptr, 0);
  return r < 0 ? 0 : static_cast<int>(r);
}

}  // namespace mpp::sys
