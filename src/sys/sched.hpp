// CPU scheduling: niceness, CPU affinity, giving the CPU away, and short sleeps.
#pragma once

#include <sys/types.h>

#include <vector>

namespace mpp::sys {

// nice(2) semantics with errors as exceptions: adds `increment`, returns the new niceness.
int nice_increment(int increment);
[[nodiscard]] int current_nice();
// How many CPUs this process may run on (its affinity mask; the online CPUs if unreadable).
[[nodiscard]] unsigned cpus_allowed();
// The CPUs `pid` may run on. Throws std::system_error.
[[nodiscard]] std::vector<int> affinity_of(pid_t pid);

// Sleeps about `us` microseconds (EINTR ends it early, which is harmless for a poll loop).
void sleep_us(unsigned us) noexcept;
// sched_yield(2).
void yield_cpu() noexcept;

}  // namespace mpp::sys
