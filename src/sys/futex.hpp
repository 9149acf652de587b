// Cross-process futex waits on 32-bit words in shared memory.
//
// These use the shared (non-PRIVATE) futex ops, so they work between processes that map the same
// memory (libstdc++'s std::atomic::wait uses private futexes and does not). EINTR and spurious
// wake-ups are reported as `woken`: callers always re-check their condition in a loop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace mpp::sys {

enum class WaitResult { woken, timed_out };

// Sleeps while *word == expected, at most `timeout` if given (relative, CLOCK_MONOTONIC).
WaitResult futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
                      std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) noexcept;
// Wakes at most n waiters (INT32_MAX for all); returns how many were woken.
int futex_wake(const std::atomic<std::uint32_t>* word, int n = 1) noexcept;
inline int futex_wake_all(const std::atomic<std::uint32_t>* word) noexcept {
  return futex_wake(word, 0x7fffffff);
}

// Brief busy-wait hint for spin-then-sleep loops.
inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

}  // namespace mpp::sys
