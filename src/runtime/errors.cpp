// mpp/errors.hpp: the messages of RemoteError and WorkerLost, and signal names.
#include "mpp/errors.hpp"

#include <csignal>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace mpp {

RemoteError::RemoteError(std::string type_name, std::string message, pid_t pid,
                         std::int64_t task_index)
    : Error([&] {
        std::string w = "remote exception in process " + std::to_string(pid);
        if (task_index >= 0) w += " (task " + std::to_string(task_index) + ")";
        w += ": " + type_name + ": " + message;
        return w;
      }()),
      type_name_(std::move(type_name)),
      message_(std::move(message)),
      pid_(pid),
      task_index_(task_index) {}

namespace {
std::string lost_message(pid_t pid, std::int64_t task, int sig, int code) {
  std::string w = "worker " + std::to_string(pid) + " lost";
  if (task >= 0) w += " while running task " + std::to_string(task);
  if (sig != 0) {
    w += ": killed by signal " + std::to_string(sig) + " (" + signal_name(sig) + ")";
  } else {
    w += ": exited with status " + std::to_string(code);
  }
  return w;
}
// The first frames, on one line: the whole list is in stack().
std::string with_frames(std::string w, int sig, const std::vector<std::string>& stack) {
  constexpr std::size_t kShown = 3;
  if (stack.empty()) {
    if (sig == SIGKILL) w += "; no stack (SIGKILL cannot be caught: OOM killer, timeout, kill -9)";
    return w;
  }
  w += "; stack:";
  for (std::size_t i = 0; i < stack.size() && i < kShown; ++i) {
    w += (i == 0 ? " #" : ", #") + std::to_string(i) + " " + stack[i];
  }
  if (stack.size() > kShown) w += ", ... (" + std::to_string(stack.size()) + " frames in stack())";
  return w;
}
}  // namespace

WorkerLost::WorkerLost(pid_t pid, std::int64_t task_index, int signal, int exit_code)
    : WorkerLost(pid, task_index, signal, exit_code,
                 lost_message(pid, task_index, signal, exit_code)) {}

WorkerLost::WorkerLost(pid_t pid, std::int64_t task_index, int signal, int exit_code,
                       const std::string& what)
    : Error(what), pid_(pid), task_index_(task_index), signal_(signal), exit_code_(exit_code) {}

WorkerLost::WorkerLost(pid_t pid, std::int64_t task_index, int signal, int exit_code,
                       std::vector<std::string> stack)
    : Error(with_frames(lost_message(pid, task_index, signal, exit_code), signal, stack)),
      pid_(pid),
      task_index_(task_index),
      signal_(signal),
      exit_code_(exit_code),
      stack_(std::move(stack)) {}

std::string signal_name(int signal) {
  // sigabbrev_np is glibc >= 2.32 and async-signal-safe; it returns nullptr for unknown numbers.
  if (const char* abbrev = ::sigabbrev_np(signal)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(signal);
}

}  // namespace mpp
