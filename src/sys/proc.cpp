// fork, child set-up, and waiting for children.
#include "sys/proc.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "sys/check.hpp"
#include "sys/fault.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace mpp::sys {

pid_t fork_or_throw(const char* what) {
  if (int e = fault::take(fault::Op::fork)) throw_errno(e, what);
  // Flush stdio first: otherwise buffered output of the parent would be written twice, once by
  // each process (the classic fork-and-printf duplication).
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw_errno(what);
  return pid;
}

int apply_child_setup(const ChildSetup& s) noexcept {
  if (s.reset_signals) {
    // A child inherits the forking thread's mask and any handlers; give user code the defaults
    // for the signals mpp uses to stop it.
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGTERM, &dfl, nullptr);
    ::sigaction(SIGINT, &dfl, nullptr);
    ::sigaction(SIGCHLD, &dfl, nullptr);
  }
  if (s.die_with_parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return -4;
    // The parent may have died between fork and prctl: then we were re-parented already.
    if (::getppid() != s.parent) ::_exit(1);
  }
  if (s.name != nullptr && ::prctl(PR_SET_NAME, s.name) != 0) return -1;
  if (s.has_nice) {
    errno = 0;
    // setpriority on our own tid: the kernel's niceness is per thread; the child has one thread.
    int cur = ::getpriority(PRIO_PROCESS, 0);
    if (cur == -1 && errno != 0) return -2;
    if (::setpriority(PRIO_PROCESS, 0, cur + s.nice) != 0) return -2;
  }
  if (s.cpus != nullptr && s.ncpus > 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (std::size_t i = 0; i < s.ncpus; ++i) {
      if (s.cpus[i] < 0 || s.cpus[i] >= CPU_SETSIZE) {
        errno = EINVAL;
        return -3;
      }
      CPU_SET(s.cpus[i], &set);
    }
    if (::sched_setaffinity(0, sizeof(set), &set) != 0) return -3;
  }
  return 0;
}

int exitcode_from_status(int st) noexcept {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return 0;
}

Child::Child(pid_t pid) : pid_(pid) { open_pidfd(); }

void Child::open_pidfd() {
  // Opened lazily: only timed waits need it. Until we reap the child its pid cannot be recycled
  // (the zombie holds it), so kill(pid) is already safe; the pidfd is for poll()ing with a timeout.
  if (pidfd_ || status_ || pid_ <= 0) return;
  if (fault::take(fault::Op::pidfd) != 0) return;
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  // pidfd_open gives O_CLOEXEC fds by definition. ENOSYS (old kernel) falls back to polling.
  if (fd >= 0) pidfd_.reset(fd);
}

std::optional<int> Child::exitcode() const noexcept {
  if (!status_) return std::nullopt;
  return exitcode_from_status(*status_);
}

bool Child::poll() {
  if (status_) return true;
  if (pid_ <= 0) return false;
  int st = 0;
  pid_t r = retry_eintr([&] { return ::waitpid(pid_, &st, WNOHANG); });
  if (r == pid_) {
    status_ = st;
    pidfd_.reset();
    return true;
  }
  if (r < 0 && errno == ECHILD) {
    // Someone else reaped it (a SIGCHLD handler with SIG_IGN, or waitpid(-1)). Record an unknown
    // end rather than waiting forever.
    status_ = 0;
    pidfd_.reset();
    return true;
  }
  return false;
}

void Child::wait() {
  if (status_ || pid_ <= 0) return;
  int st = 0;
  pid_t r = retry_eintr([&] { return ::waitpid(pid_, &st, 0); });
  status_ = (r == pid_) ? st : 0;
  pidfd_.reset();
}

bool poll_readable(int fd, std::chrono::nanoseconds timeout) {
  using namespace std::chrono;
  const auto deadline =
      timeout.count() < 0 ? steady_clock::time_point::max() : steady_clock::now() + timeout;
  for (;;) {
    int ms = -1;
    if (deadline != steady_clock::time_point::max()) {
      auto left = duration_cast<milliseconds>(deadline - steady_clock::now() + microseconds(999));
      ms = static_cast<int>(std::max<long long>(0, std::min<long long>(left.count(), 1 << 30)));
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, ms);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) throw_errno("cannot poll");
  }
}

bool Child::wait_for(std::chrono::nanoseconds timeout) {
  using namespace std::chrono;
  if (poll()) return true;
  open_pidfd();
  if (pidfd_) {
    if (!poll_readable(pidfd_.get(), timeout)) return poll();
    return poll() || (wait(), true);
  }
  // No pidfd: poll with a short, growing sleep.
  const auto deadline = steady_clock::now() + timeout;
  auto nap = microseconds(50);
  while (steady_clock::now() < deadline) {
    if (poll()) return true;
    ::usleep(static_cast<useconds_t>(nap.count()));
    nap = std::min<microseconds>(nap * 2, milliseconds(10));
  }
  return poll();
}

bool Child::signal(int sig) noexcept {
  if (status_ || pid_ <= 0) return false;
  // Not reaped yet, so the pid still names our child (alive or zombie), never a recycled one.
  return ::kill(pid_, sig) == 0;
}

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

pid_t self_pid() noexcept { return ::getpid(); }
pid_t parent_pid() noexcept { return ::getppid(); }

bool process_alive(pid_t pid) noexcept {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  // kill() succeeds on zombies: look at the state letter in /proc/PID/stat ("pid (comm) S ...").
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno != ENOENT;
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return true;
  buf[n] = '\0';
  const char* close_paren = std::strrchr(buf, ')');
  if (close_paren == nullptr || close_paren[1] == '\0') return true;
  char state = close_paren[2];
  return state != 'Z' && state != 'X';
}

void write_stderr(const char* s) noexcept {
  std::size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(2, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace mpp::sys
