// CPU scheduling (see sched.hpp).
#include "sys/sched.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "sys/check.hpp"

namespace mpp::sys {

int nice_increment(int increment) {
  errno = 0;
  int cur = ::getpriority(PRIO_PROCESS, 0);
  if (cur == -1 && errno != 0) throw_errno("cannot read niceness");
  int target = cur + increment;
  if (target > 19) target = 19;  // like nice(2): clamp to the valid range
  if (target < -20) target = -20;
  if (::setpriority(PRIO_PROCESS, 0, target) != 0) {
    throw_errno(errno == EACCES || errno == EPERM
                    ? "cannot lower niceness (raising priority needs CAP_SYS_NICE)"
                    : "cannot change niceness");
  }
  return target;
}

int current_nice() {
  errno = 0;
  int cur = ::getpriority(PRIO_PROCESS, 0);
  if (cur == -1 && errno != 0) throw_errno("cannot read niceness");
  return cur;
}

unsigned cpus_allowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

std::vector<int> affinity_of(pid_t pid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(pid, sizeof(set), &set) != 0) throw_errno("cannot read cpu affinity");
  std::vector<int> cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i)
    if (CPU_ISSET(i, &set)) cpus.push_back(i);
  return cpus;
}

void sleep_us(unsigned us) noexcept {
  timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000) * 1000};
  ::nanosleep(&ts, nullptr);
}

void yield_cpu() noexcept { ::sched_yield(); }

namespace {
// <linux/ioprio.h> is not in every distribution's headers; the ABI values are stable.
constexpr int kIoprioWhoProcess = 1;
constexpr int kIoprioClassShift = 13;
constexpr int kIoprioClassBestEffort = 2;
}  // namespace

int set_best_effort_ionice(int level) noexcept {
  if (level < 0 || level >= kIoniceLevels) {
    errno = EINVAL;
    return -1;
  }
  const long r = ::syscall(SYS_ioprio_set, kIoprioWhoProcess, 0,
                           (kIoprioClassBestEffort << kIoprioClassShift) | level);
  return r == 0 ? 0 : -1;
}

IoPriority current_ionice() {
  const long r = ::syscall(SYS_ioprio_get, kIoprioWhoProcess, 0);
  if (r < 0) throw_errno("cannot read I/O priority");
  const int v = static_cast<int>(r);
  return {v >> kIoprioClassShift, v & ((1 << kIoprioClassShift) - 1)};
}

}  // namespace mpp::sys
