// CPU and I/O scheduling: niceness, I/O priority, CPU affinity, giving the CPU away, and short
// sleeps.
#pragma once

#include <sys/types.h>

#include <vector>

#include "mpp/detail/export.hpp"

namespace mpp::sys {

// nice(2) semantics with errors as exceptions: adds `increment`, returns the new niceness.
int nice_increment(int increment);
[[nodiscard]] int current_nice();
// I/O priority (ioprio_set/ioprio_get, Linux's "ionice"): best-effort class, level 0 (first)
// to 7 (last). Set for the calling thread's process; the child of a fork inherits it. Returns 0,
// or -1 with errno. Async-signal-safe (one system call).
inline constexpr int kIoniceLevels = 8;
int set_best_effort_ionice(int level) noexcept;
// The calling process's I/O priority as {class, level} (class 0 none: the kernel derives it from
// the niceness; 1 real-time, 2 best-effort, 3 idle). Throws std::system_error.
struct IoPriority {
  int io_class;
  int level;
};
[[nodiscard]] IoPriority current_ionice();
// How many CPUs this process may run on (its affinity mask; the online CPUs if unreadable).
[[nodiscard]] unsigned cpus_allowed();
// The CPUs `pid` may run on. Throws std::system_error.
[[nodiscard]] std::vector<int> affinity_of(pid_t pid);

// Sleeps about `us` microseconds (EINTR ends it early, which is harmless for a poll loop).
MPP_API void sleep_us(unsigned us) noexcept;
// sched_yield(2).
MPP_API void yield_cpu() noexcept;

}  // namespace mpp::sys
