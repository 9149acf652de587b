// Shared helpers for mpp's tests: checking for zombies, leaked fds, leaked /dev/shm entries, and a
// watchdog so that a hang fails the test instead of stalling the run.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace mpp::test {

struct ProcStat {
  char state = '?';
  pid_t ppid = 0;
  long nice = 0;
};

// Parses /proc/PID/stat; state '?' if the process does not exist.
inline ProcStat proc_stat(pid_t pid) {
  ProcStat st;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return st;
  auto rp = line.rfind(')');
  if (rp == std::string::npos) return st;
  std::istringstream rest(line.substr(rp + 2));
  std::string field;
  std::vector<std::string> fields;
  while (rest >> field) fields.push_back(field);
  // fields[0] is state (field 3); nice is field 19 -> fields[16]; ppid field 4 -> fields[1].
  if (fields.size() > 16) {
    st.state = fields[0][0];
    st.ppid = static_cast<pid_t>(std::stol(fields[1]));
    st.nice = std::stol(fields[16]);
  }
  return st;
}

inline std::string proc_comm(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string s;
  std::getline(f, s);
  return s;
}

// Children of this process (any state) and those that are zombies.
inline std::vector<pid_t> children_of(pid_t parent, bool zombies_only = false) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    ProcStat st = proc_stat(static_cast<pid_t>(pid));
    if (st.ppid == parent && (!zombies_only || st.state == 'Z'))
      out.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return out;
}
inline std::vector<pid_t> zombie_children() { return children_of(getpid(), true); }
inline std::vector<pid_t> live_children() { return children_of(getpid(), false); }

// True once `pid` no longer exists or is a zombie/dead, polling up to `timeout`.
inline bool gone_within(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    char s = proc_stat(pid).state;
    if (s == '?' || s == 'Z' || s == 'X') return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

inline int open_fd_count() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the DIR's own fd
}

// Shared mappings of this process ("rw-s" in /proc/self/maps). mpp uses anonymous shared memory
// (nothing in /dev/shm), so this is how a leaked mapping shows.
inline int shared_mappings() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) {
    std::istringstream fields(line);
    std::string range, perms;
    fields >> range >> perms;
    if (perms.size() == 4 && perms[3] == 's') ++n;
  }
  return n;
}

// Runs f() in a forked child that exits with its return value (100 if it threw). stdio is flushed
// first so the child does not print the parent's buffered output again.
inline pid_t fork_child(const std::function<int()>& f) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    int rc = 100;
    try {
      rc = f();
    } catch (...) {
    }
    _exit(rc);
  }
  return pid;
}

// Waits for a child (EINTR-safe); Python's exitcode convention (-N when killed by signal N).
inline int reap_child(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
}

// Names in /dev/shm that start with `prefix`.
inline std::vector<std::string> shm_entries(const std::string& prefix = "mpp") {
  std::vector<std::string> out;
  DIR* d = opendir("/dev/shm");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (std::strncmp(e->d_name, prefix.c_str(), prefix.size()) == 0) out.emplace_back(e->d_name);
  }
  closedir(d);
  return out;
}

// Kills the whole test binary (with a message) if the scope lasts longer than `limit`: a hang
// becomes a failure with a name instead of a ctest timeout.
//
// A POSIX timer and a signal handler, not a thread: gcc 12's AddressSanitizer does not lock its
// allocator around fork(), so a watchdog thread that happened to be inside malloc (its own start
// up) while the test forked left the child blocked forever on an allocator mutex. That was the
// intermittent ASan-only pool hang; with no second thread in the test process it cannot happen.
// Timers are not inherited by fork children, so a worker never fires its parent's watchdog.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit, const char* what = "test") : what_(what) {
    struct sigaction sa {};
    sa.sa_sigaction = &Watchdog::on_timer;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(signal_number(), &sa, nullptr) != 0) std::abort();
    sigevent ev{};
    ev.sigev_notify = SIGEV_SIGNAL;
    ev.sigev_signo = signal_number();
    ev.sigev_value.sival_ptr = const_cast<char*>(what_);
    if (timer_create(CLOCK_MONOTONIC, &ev, &timer_) != 0) std::abort();
    itimerspec when{};
    when.it_value.tv_sec = static_cast<time_t>(limit.count());
    if (timer_settime(timer_, 0, &when, nullptr) != 0) std::abort();
  }
  ~Watchdog() { timer_delete(timer_); }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  static int signal_number() noexcept { return SIGRTMIN + 7; }
  // Async-signal-safe: write(2) and _exit only.
  static void on_timer(int, siginfo_t* info, void*) {
    const char* what = static_cast<const char*>(info->si_value.sival_ptr);
    auto put = [](const char* s) { (void)!write(2, s, std::strlen(s)); };
    put("WATCHDOG: ");
    put(what != nullptr ? what : "test");
    put(" hung; aborting\n");
    _exit(99);
  }
  const char* what_;
  timer_t timer_{};
};

}  // namespace mpp::test
