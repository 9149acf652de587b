// mpp/errors.hpp: the exception types every mpp component throws.
//
// What: the error vocabulary of API.md section 1. OS failures are std::system_error with the real
// errno; misuse is std::logic_error; bad arguments are std::invalid_argument. Everything specific
// to mpp derives from mpp::Error (itself a std::runtime_error), so `catch (const mpp::Error&)`
// catches all of them.
//
// Lifetime / fork: these are plain value types; they hold no OS resources and are safe to copy,
// store, and rethrow in any process. RemoteError and WorkerLost describe what happened in another
// process (the one that ran a task or a Process target); they are rebuilt in the parent from bytes
// that crossed the process boundary (see codec.hpp for the encoding).
#pragma once

#include <csignal>  // pid_t (POSIX defines it in <signal.h>); no <sys/*.h> in public headers.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "mpp/detail/export.hpp"

namespace mpp {

// Base of every mpp-specific error.
class MPP_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A task or a Process target threw. Keeps the demangled type name of what was thrown, its
// what() text, the pid of the process it ran in and, for pool tasks, the input index.
class MPP_API RemoteError : public Error {
 public:
  // task_index() of an error raised outside a pool task.
  static constexpr std::int64_t kNoTask = -1;

  // type_name: demangled type of what was thrown; message: its what(); pid: where it ran.
  RemoteError(std::string type_name, std::string message, pid_t pid,
              std::int64_t task_index = kNoTask);

  // Demangled type name of what was thrown ("std::out_of_range"); "unknown" for a non-exception.
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  // The what() text of what was thrown (what() of this error also names type and pid).
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  // Pid of the process that ran the task or target.
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  // Index of the input element in the pool call, or kNoTask (-1) outside a pool task.
  [[nodiscard]] std::int64_t task_index() const noexcept { return task_index_; }

 private:
  std::string type_name_;
  std::string message_;
  pid_t pid_;
  std::int64_t task_index_;
};

// The process running a task died (signal, _exit, OOM kill) before producing its result.
class MPP_API WorkerLost : public Error {
 public:
  // signal: the signal that killed it, or 0 if it exited; exit_code: its exit status if it
  // exited (meaningless when signal != 0); task_index: -1 if it held no identifiable task.
  WorkerLost(pid_t pid, std::int64_t task_index, int signal, int exit_code);
  // Same fields, with a caller-provided message (used when the cause is known better, e.g. a
  // task that was killed because it exceeded its timeout).
  WorkerLost(pid_t pid, std::int64_t task_index, int signal, int exit_code,
             const std::string& what);
  // Same fields plus the frames of the worker's faulting thread (see stack()); what() names
  // the first few.
  WorkerLost(pid_t pid, std::int64_t task_index, int signal, int exit_code,
             std::vector<std::string> stack);

  // The fields given to the constructor: pid of the lost process, its task (-1: none), the signal
  // that killed it (0: it exited) and its exit status.
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] std::int64_t task_index() const noexcept { return task_index_; }
  [[nodiscard]] int signal() const noexcept { return signal_; }
  [[nodiscard]] int exit_code() const noexcept { return exit_code_; }
  // Frames of the faulting thread of a worker killed by SIGSEGV, SIGBUS, SIGFPE, SIGILL or
  // SIGABRT, innermost first ("function at file:line" where debug info allows, the function name
  // otherwise). Empty when none could be taken: SIGKILL (an OOM kill, a task_timeout, kill -9)
  // cannot be caught, a worker that exited has none, and a program's (or a sanitizer's) own
  // handler for the signal is left in charge.
  [[nodiscard]] const std::vector<std::string>& stack() const noexcept { return stack_; }

 private:
  pid_t pid_;
  std::int64_t task_index_;
  int signal_;
  int exit_code_;
  std::vector<std::string> stack_;
};

// A wait ran past its timeout where the API says it throws (AsyncResult::get(timeout), ...).
class MPP_API TimeoutError : public Error {
 public:
  using Error::Error;
};

// The result was cancelled (AsyncResult::cancel(), ImapRange::cancel()): get() of a cancelled
// result, and the positions of an imap after its cancel, throw it.
class CancelledError : public Error {
 public:
  using Error::Error;
};

// get() on a queue that is closed and drained, put() on a closed queue; also recv() on a
// Connection whose peer closed or died.
class MPP_API QueueClosed : public Error {
 public:
  using Error::Error;
};

// A value could not be encoded, or bytes could not be decoded into the requested type.
class MPP_API SerializationError : public Error {
 public:
  using Error::Error;
};

// Name of a signal as in "SIGKILL"; "signal N" for unknown numbers. Never throws.
[[nodiscard]] MPP_API std::string signal_name(int signal);

}  // namespace mpp

#include <cstdint>
#include <stdexcept>
#include <string>