// Cross-process futex waits on 32-bit words in shared memory.
//
// These use the shared (non-PRIVATE) futex ops, so they work between processes that map the same
// memory (libstdc++'s std::atomic::wait uses private futexes and does not). EINTR and spurious
// wake-ups are reported as `woken`: callers always re-check their condition in a loop.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "mpp/detail/export.hpp"

namespace mpp::sys {

enum class WaitResult { woken, timed_out };

// Sleeps while *word == expected, at most `timeout` if given (relative, CLOCK_MONOTONIC).
MPP_API WaitResult
futex_wait(const std::atomic<std::uint32_t>* word, std::uint32_t expected,
           std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) noexcept;
// Wakes at most n waiters (INT32_MAX for all); returns how many were woken.
MPP_API int futex_wake(const std::atomic<std::uint32_t>* word, int n = 1) noexcept;
inline int futex_wake_all(const std::atomic<std::uint32_t>* word) noexcept {
  return futex_wake(word, 0x7fffffff);
}

// Asymmetric memory barriers between processes (membarrier(2), GLOBAL_EXPEDITED).
//
// A process that calls membarrier_register() and gets true may skip the StoreLoad fence of a
// Dekker-style "publish, then look for sleepers" protocol: a would-be sleeper calls
// membarrier_global() after announcing itself and before re-checking, which makes every
// registered process that is running at that moment execute a full barrier (a process that is
// not running has one at its next context switch). Either the publisher then sees the sleeper, or
// the sleeper sees what was published. Registration is per process; call it again in a child.
// Returns false where the kernel lacks it or a sandbox forbids it (then keep the fence).
// Never throws; registering may block briefly (an RCU grace period if the process has threads).
bool membarrier_register() noexcept;
// Issues the barrier. True when every registered process is ordered: the barrier was issued, or
// the kernel offers none (then no process can have registered). False if a registered process
// may exist and the barrier failed: the caller must not rely on it then.
bool membarrier_global() noexcept;

// Brief busy-wait hint for spin-then-sleep loops.
inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

}  // namespace mpp::sys
