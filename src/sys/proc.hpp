// Processes: fork (through the test seam), the async-signal-safe child set-up, the parent's
// handle on a child (pidfd when the kernel has it, waitpid otherwise), pidfds of other processes,
// and a process's identity (pid, start time, liveness) and end. Scheduling (niceness, affinity) is
// in sched.hpp, signal handlers in signal.hpp.
#pragma once

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <string>

#include "mpp/detail/export.hpp"
#include "sys/fd.hpp"

namespace mpp::sys {

// fork() through the fault seam. Parent: returns the child's pid, or throws std::system_error with
// `what` ("cannot fork process"). Child: returns 0.
[[nodiscard]] pid_t fork_or_throw(const char* what);

// Registers pthread_atfork handlers once per `state`, a constant-initialized word that starts at 0
// (declare it at namespace scope: std::atomic<int> s{0}). Returns true once they are registered,
// by this call or an earlier one in this process or in a parent it was forked from.
//
// Why not a function-local static or std::call_once: glibc's pthread_atfork waits while a fork()
// is in progress in another thread, so a thread whose first mpp call registers a handler sits
// inside the static's guard for the whole fork (0.1-6 ms here); the child inherits the guard
// "being initialised" with no thread left to finish it, and its first call waits forever (issue
// 16: 22 of 40 fresh programs of tests/helpers/lock_first_use.cpp hung that way). Here `state`
// holds the pid of the process registering: a thread of the same process waits for it (it
// finishes), while a child forked half-way sees a pid not its own and registers for itself.
// Callers also call it during static initialisation (before main, before threads), so that the
// slow path is practically never taken. Memory + pthread_atfork + getpid only; never throws.
bool register_atfork_once(std::atomic<int>& state, void (*prepare)(), void (*parent)(),
                          void (*child)()) noexcept;

// What a child applies to itself between fork and user code. Every step is a raw system call
// (async-signal-safe), so this is safe in the child of a multi-threaded parent.
struct ChildSetup {
  const char* name = nullptr;  // PR_SET_NAME (the kernel keeps 15 bytes)
  bool has_nice = false;       // apply `nice` as a niceness increment
  int nice = 0;
  bool has_ionice = false;  // set best-effort I/O priority `ionice` (0..7)
  int ionice = 0;
  std::size_t memory_limit = 0;  // > 0: sys::limit_private_memory(memory_limit)
  const int* cpus = nullptr;     // affinity; nullptr/0 = inherit
  std::size_t ncpus = 0;
  // PR_SET_PDEATHSIG(parent_death_signal()), handled by killing the child (SIGKILL) once
  // `parent` is no longer its parent (not when only the forking thread exited), then re-check
  // the parent.
  bool die_with_parent = false;
  pid_t parent = 0;           // the parent's pid, for that re-check
  bool reset_signals = true;  // unblock all signals, default SIGTERM/SIGINT/SIGCHLD
};
// The signal die_with_parent arms (SIGRTMAX); user code in such a child should leave it alone.
[[nodiscard]] int parent_death_signal() noexcept;
// Returns 0, or a negative step number (-1 name, -2 nice, -3 affinity, -4 pdeathsig, -5 I/O
// priority, -6 memory limit) with errno set. Never throws, never allocates.
int apply_child_setup(const ChildSetup& setup) noexcept;

// Peak resident memory of `pid` in bytes (VmHWM in /proc/PID/status); 0 when unreadable.
[[nodiscard]] std::size_t peak_resident_bytes(pid_t pid) noexcept;

// Python's exitcode convention from a raw wait status: exit status >= 0, or -N for signal N.
[[nodiscard]] int exitcode_from_status(int wait_status) noexcept;

// The parent's handle on one child. Not thread-safe. Never leaves a zombie once the child ended
// and poll()/wait() saw it.
class Child {
 public:
  Child() = default;
  // Opens a pidfd now (O_CLOEXEC) when the kernel has pidfd_open, for poll()ing many children.
  explicit Child(pid_t pid);
  // Defers the pidfd until a timed wait needs it (one syscall less per short-lived child).
  struct LazyPidfd {};
  Child(pid_t pid, LazyPidfd) : pid_(pid) {}
  Child(Child&&) noexcept = default;
  Child& operator=(Child&&) noexcept = default;

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] int pidfd() const noexcept { return pidfd_.get(); }
  [[nodiscard]] bool reaped() const noexcept { return status_.has_value(); }
  // Raw wait status once reaped.
  [[nodiscard]] std::optional<int> status() const noexcept { return status_; }
  // Python exitcode once reaped, nullopt before.
  [[nodiscard]] std::optional<int> exitcode() const noexcept;

  // Non-blocking: reaps the child if it ended. Returns true once it has ended.
  bool poll();
  // Blocks until the child ends (EINTR-safe). Reaps it.
  void wait();
  // Waits at most `timeout`; true if it ended (and was reaped).
  bool wait_for(std::chrono::nanoseconds timeout);
  // Sends sig unless the child was already reaped (an unreaped child's pid cannot be recycled, so
  // the signal never reaches another process). Returns false if it could not be delivered.
  bool signal(int sig) noexcept;
  // Opens the pidfd (O_CLOEXEC) if the kernel has pidfd_open; used by wait_for and by callers that
  // poll() many children at once. Never throws; pidfd() stays -1 when unavailable.
  void open_pidfd();

 private:
  pid_t pid_ = -1;
  Fd pidfd_;
  std::optional<int> status_;
};

// pidfd of any process (not only children), O_CLOEXEC; an invalid Fd if the process is gone or the
// kernel lacks pidfd_open. Not through the fault seam (Child::open_pidfd is).
[[nodiscard]] Fd open_pidfd(pid_t pid) noexcept;

// Who this process is. getpid/getppid: async-signal-safe.
[[nodiscard]] MPP_API pid_t self_pid() noexcept;
[[nodiscard]] pid_t parent_pid() noexcept;
// This host's name ("?" if the kernel will not say). Never throws except std::bad_alloc.
[[nodiscard]] MPP_API std::string host_name();

// The start time of process `pid` (field 22 of /proc/PID/stat, clock ticks after boot), folded
// into 32 bits and never 0; 0 when it cannot be read (no such process, /proc not mounted or
// hidden). Together with the pid it names one process, even after the kernel hands the pid to a
// new one. Async-signal-safe (open/read/close, no allocation, no stdio).
[[nodiscard]] std::uint32_t process_start_time(pid_t pid) noexcept;
// This process's start time (as above), read once per process and cached; a forked child reads
// its own on its first call. Async-signal-safe.
[[nodiscard]] std::uint32_t self_start_time() noexcept;
// True if pid names a live process (not a zombie; one kill(pid, 0) and, when that succeeds, one
// read of /proc/PID/stat) and, when `start` is not 0, still the process that had that start time
// (compared on the bits of `start_mask`): a dead process whose pid now belongs to another process
// is not alive. Where /proc cannot be read, the pid alone decides. Async-signal-safe.
[[nodiscard]] bool process_alive(pid_t pid, std::uint32_t start = 0,
                                 std::uint32_t start_mask = ~0u) noexcept;

// Threads of this process (field 20 of /proc/self/stat); 0 when unreadable. Async-signal-safe.
[[nodiscard]] unsigned thread_count() noexcept;

// Sends `sig` through a pidfd (pidfd_send_signal): never reaches a process other than the one
// the pidfd was opened for, even after that one ended and its pid was reused. False if it could
// not be delivered (the process is gone, or the kernel lacks the call).
bool signal_pidfd(int pidfd, int sig) noexcept;

// Starts a fresh execution of this program's binary (/proc/self/exe) with `argv` (nullptr-ended),
// this process's environment plus `env_entry` ("NAME=value"), and `pass_fd` (any descriptor of
// ours) as descriptor `as_fd` in the new program; every other descriptor of ours that is
// O_CLOEXEC stays behind. posix_spawn (clone(CLONE_VM | CLONE_VFORK) then exec): the new process
// runs none of our code, so this is safe from a multi-threaded program and costs no page-table
// copy. Returns its pid (our child). Throws std::system_error ("cannot start <what>").
[[nodiscard]] pid_t spawn_self(char* const* argv, const char* env_entry, int pass_fd, int as_fd,
                               const char* what);

// Flushes stdio (a worker's printf output must not be lost) and ends the process with `code`
// without running atexit handlers or static destructors (they belong to the parent's program).
[[noreturn]] void exit_worker(int code) noexcept;
// Ends the process at once: no flush, async-signal-safe (for the child before user code ran).
[[noreturn]] void exit_immediately(int code) noexcept;

}  // namespace mpp::sys
