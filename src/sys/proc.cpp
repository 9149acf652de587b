// Processes: fork, child set-up, waiting for children, pidfds, identity (see proc.hpp).
#include "sys/proc.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "sys/check.hpp"
#include "sys/fault.hpp"
#include "sys/mem.hpp"
#include "sys/poll.hpp"
#include "sys/sched.hpp"

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

bool register_atfork_once(std::atomic<int>& state, void (*prepare)(), void (*parent)(),
                          void (*child)()) noexcept {
  constexpr int kDone = -1;
  int s = state.load(std::memory_order_acquire);
  if (s == kDone) return true;
  const int self = static_cast<int>(::getpid());
  for (;;) {
    if (s == kDone) return true;
    if (s == self) {
      // Another thread of this process is registering: it is running and finishes.
      ::sched_yield();
      s = state.load(std::memory_order_acquire);
      continue;
    }
    // Nobody yet (0), or a process we were forked from while one of its threads was registering
    // (that thread does not exist here, and its registration may not have reached our copy).
    if (state.compare_exchange_weak(s, self, std::memory_order_acq_rel)) break;
  }
  if (::pthread_atfork(prepare, parent, child) != 0) {
    state.store(0, std::memory_order_release);  // ENOMEM: let a later call try again
    return false;
  }
  state.store(kDone, std::memory_order_release);
  return true;
}

namespace {

// The parent-death signal is sent when the THREAD that forked us exits, not the process: a pool
// worker forked by a short-lived thread of the parent (one that drove the pool when a worker had
// to be replaced, or that created the pool) would die with it. So the signal is a catchable one
// whose handler ends the process only when the parent process is really gone; when a thread
// exits, the kernel re-parents us to another thread of the same process (getppid() unchanged)
// and keeps the signal armed for that thread's exit. SIGRTMAX: reserved by no library in use
// here (glibc takes the first two real-time signals, sanitizers none).
std::atomic<pid_t> g_death_parent{0};  // the parent whose death ends this child

void on_parent_death_signal(int) noexcept {
  const int saved = errno;
  if (::getppid() != g_death_parent.load(std::memory_order_relaxed)) {
    ::kill(::getpid(), SIGKILL);
  }
  errno = saved;
}

}  // namespace

int parent_death_signal() noexcept { return SIGRTMAX; }

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
    g_death_parent.store(s.parent, std::memory_order_relaxed);
    struct sigaction on_death {};
    on_death.sa_handler = &on_parent_death_signal;
    on_death.sa_flags = SA_RESTART;
    sigemptyset(&on_death.sa_mask);
    if (::sigaction(parent_death_signal(), &on_death, nullptr) != 0) return -4;
    if (::prctl(PR_SET_PDEATHSIG, parent_death_signal()) != 0) return -4;
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
  if (s.has_ionice && set_best_effort_ionice(s.ionice) != 0) return -5;
  if (s.memory_limit != 0 && limit_private_memory(s.memory_limit) != 0) return -6;
  return 0;
}

std::size_t peak_resident_bytes(pid_t pid) noexcept {
  char path[40];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096];
  std::size_t len = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf + len, sizeof buf - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<std::size_t>(n);
    if (len == sizeof buf - 1) break;
  }
  ::close(fd);
  buf[len] = '\0';
  const char* p = std::strstr(buf, "VmHWM:");
  if (p == nullptr) return 0;
  p += 6;
  while (*p == ' ' || *p == '\t') ++p;
  std::size_t kib = 0;
  while (*p >= '0' && *p <= '9') kib = kib * 10 + static_cast<std::size_t>(*p++ - '0');
  return kib * 1024;
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
  // ENOSYS (old kernel) leaves it invalid: wait_for falls back to polling.
  pidfd_ = sys::open_pidfd(pid_);
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

pid_t self_pid() noexcept { return ::getpid(); }
pid_t parent_pid() noexcept { return ::getppid(); }

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

void exit_worker(int code) noexcept {
  std::fflush(nullptr);
  ::_exit(code);
}

void exit_immediately(int code) noexcept { ::_exit(code); }

Fd open_pidfd(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  long r = ::syscall(SYS_pidfd_open, pid, 0);
  if (r >= 0) {
    // pidfd_open sets O_CLOEXEC itself (man pidfd_open); nothing to add.
    return Fd(static_cast<int>(r));
  }
#else
  (void)pid;
#endif
  return Fd();
}

namespace {

// What process_alive and process_start_time need from /proc/PID/stat ("pid (comm) S f4 ... f22
// ..."). Async-signal-safe: the path is formatted by hand and the file read into the stack.
struct StatInfo {
  enum class Result { ok, gone, unreadable } result = Result::unreadable;
  char state = '?';
  std::uint64_t start = 0;  // field 22, clock ticks after boot
  unsigned threads = 0;     // field 20
};

StatInfo read_stat(pid_t pid) noexcept {
  StatInfo info;
  char path[32] = "/proc/";
  char digits[16];
  int nd = 0;
  if (pid == 0) {
    // This process: /proc/self/stat.
    for (const char* self = "fles"; *self != '\0'; ++self) digits[nd++] = *self;
  } else {
    for (auto v = static_cast<unsigned>(pid); nd == 0 || v != 0; v /= 10) {
      digits[nd++] = static_cast<char>('0' + v % 10);
    }
  }
  std::size_t at = 6;
  while (nd > 0) path[at++] = digits[--nd];
  for (const char* tail = "/stat"; *tail != '\0'; ++tail) path[at++] = *tail;
  path[at] = '\0';
  int fd;
  do {
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ENOENT || errno == ESRCH) info.result = StatInfo::Result::gone;
    return info;
  }
  char buf[512];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  if (n <= 0) {
    if (n < 0 && errno == ESRCH) info.result = StatInfo::Result::gone;
    return info;
  }
  buf[n] = '\0';
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const char* p = nullptr;
  for (ssize_t k = n - 1; k >= 0; --k) {
    if (buf[k] == ')') {
      p = buf + k;
      break;
    }
  }
  if (p == nullptr || p[1] != ' ' || p[2] == '\0') return info;
  info.state = p[2];
  p += 3;  // now at " f4 f5 ..."
  for (int field = 4; field <= 22; ++field) {
    while (*p == ' ') ++p;
    if (*p == '\0') return info;
    if (field == 20) {
      unsigned v = 0;
      for (const char* q = p; *q >= '0' && *q <= '9'; ++q)
        v = v * 10 + static_cast<unsigned>(*q - '0');
      info.threads = v;
    }
    if (field == 22) {
      std::uint64_t v = 0;
      while (*p >= '0' && *p <= '9') v = v * 10 + static_cast<std::uint64_t>(*p++ - '0');
      info.start = v;
      info.result = StatInfo::Result::ok;
      return info;
    }
    while (*p != ' ' && *p != '\0') ++p;
  }
  return info;
}

std::uint32_t fold_start(std::uint64_t ticks) noexcept {
  const auto folded = static_cast<std::uint32_t>(ticks ^ (ticks >> 32));
  return folded == 0 ? 1 : folded;
}

}  // namespace

unsigned thread_count() noexcept {
  const StatInfo info = read_stat(0);
  return info.result == StatInfo::Result::ok ? info.threads : 0;
}

bool signal_pidfd(int pidfd, int sig) noexcept {
#ifdef SYS_pidfd_send_signal
  if (pidfd < 0) return false;
  return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0;
#else
  (void)pidfd;
  (void)sig;
  return false;
#endif
}

pid_t spawn_self(char* const* argv, const char* env_entry, int pass_fd, int as_fd,
                 const char* what) {
  if (int e = fault::take(fault::Op::fork)) throw_errno(e, what);
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
  env.push_back(const_cast<char*>(env_entry));
  env.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  if (::posix_spawn_file_actions_init(&actions) != 0) throw_errno(ENOMEM, what);
  // dup2 onto another number clears FD_CLOEXEC on the copy: only it crosses the exec.
  int rc = ::posix_spawn_file_actions_adddup2(&actions, pass_fd, as_fd);
  pid_t pid = -1;
  if (rc == 0) {
    std::fflush(nullptr);
    rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv, env.data());
  }
  ::posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw_errno(rc, what);
  return pid;
}

std::uint32_t process_start_time(pid_t pid) noexcept {
  if (pid <= 0) return 0;
  const StatInfo info = read_stat(pid);
  return info.result == StatInfo::Result::ok ? fold_start(info.start) : 0;
}

std::uint32_t self_start_time() noexcept {
  // Per process: a forked child inherits these and sees its own pid differ, so it re-reads.
  static std::atomic<pid_t> cached_pid{0};
  static std::atomic<std::uint32_t> cached_start{0};
  const pid_t self = ::getpid();
  if (cached_pid.load(std::memory_order_acquire) == self) {
    return cached_start.load(std::memory_order_relaxed);
  }
  const std::uint32_t start = process_start_time(self);
  cached_start.store(start, std::memory_order_relaxed);
  cached_pid.store(self, std::memory_order_release);
  return start;
}

bool process_alive(pid_t pid, std::uint32_t start, std::uint32_t start_mask) noexcept {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  // kill() succeeds on zombies: look at the state letter in /proc/PID/stat.
  const StatInfo info = read_stat(pid);
  if (info.result == StatInfo::Result::gone) return false;
  if (info.result != StatInfo::Result::ok) return true;  // cannot tell: assume alive
  if (info.state == 'Z' || info.state == 'X') return false;
  return (start & start_mask) == 0 || (fold_start(info.start) & start_mask) == (start & start_mask);
}

}  // namespace mpp::sys
