// mpp/process.hpp: mpp::Process, a function running in a child process (Python's
// multiprocessing.Process), plus nice(), cpu_count() and active_children().
//
// What: `mpp::Process p(target, args...); p.start(); p.join();` forks the calling process; the
// child runs `target(args...)` and exits. Any callable works, lambdas capturing by reference
// included: the child is a fork, so it sees the parent's memory as it was at start()
// (copy-on-write: later writes on either side are invisible to the other; use a Queue, Value or
// Pipe to send results back).
//
// Start methods (ProcessOptions::start_method, mpp/start_method.hpp): the above is fork, the
// default. Under forkserver the child is forked by the program's forkserver, under spawn it is a
// fresh execution of the program; either way it sees the program as it was when mpp::init
// returned, so the target must be a function, a function pointer or a captureless lambda, and its
// arguments must travel through the codec (start() throws std::invalid_argument otherwise, and
// std::logic_error without mpp::init). Exit codes and error() are the same; such a child never
// outlives the program (it dies with the forkserver), and its crash stack is not named.
//
// Lifetime: a Process owns its child. Destroying a Process whose child still runs kills it (daemon)
// or joins it (non-daemon); the child is always reaped, never left as a zombie. Process is movable
// (it can live in a std::vector) but not copyable.
//
// Fork guarantees: between fork and the target, the child only makes async-signal-safe system calls
// (name, nice, affinity, parent-death signal, default signal dispositions), so starting a Process
// from a multi-threaded program is as safe as fork itself allows: only the calling thread exists in
// the child, and a mutex another thread held at fork time stays locked there (see
// docs/fork-safety.md). stdio buffers are flushed before fork (no duplicated output); when the
// target returns, pending output of stdout, stderr and std::cout is flushed (streams the target
// opened itself must be closed by it). The child ends with _exit(): the parent's static destructors
// and atexit handlers are not run twice.
//
// Exit codes (Python's convention): 0 when the target returns; 1 when an exception escapes it (and
// error() describes it in the parent); N for `throw mpp::SystemExit{N}` (like sys.exit(N)); -N when
// killed by signal N.
//
// Crash stacks: a child killed by SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT has the frames of its
// faulting thread recorded by a handler mpp installs in the child (on an alternate stack, only
// for those of the five signals whose action is still the default; a program's or a sanitizer's
// handler is left alone). The parent names them ("function at file:line" where debug info is
// present) and prints them on stderr, innermost first, when it learns that the child ended
// (join(), join_for(), exitcode(), the destructor). SIGKILL leaves no stack.
//
// Thread-safety: one Process object must not be used from several threads at once; distinct
// Process objects are independent.
#pragma once

#include <chrono>
#include <concepts>
#include <csignal>  // pid_t
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "mpp/detail/export.hpp"
#include "mpp/detail/pool_core/buffer.hpp"
#include "mpp/detail/pool_core/callable.hpp"
#include "mpp/detail/pool_core/values.hpp"
#include "mpp/errors.hpp"
#include "mpp/start_method.hpp"

namespace mpp {

// Options of a Process (designated initializers: `ProcessOptions{.name = "w", .nice = 10}`).
struct ProcessOptions {
  std::string name{};         // default "Process-N"; also the OS thread name (prctl, 15 bytes kept)
  std::optional<int> nice{};  // niceness increment applied in the child before the target runs
  std::vector<int> cpus{};    // CPU affinity of the child; empty = inherit
  bool daemon = false;        // true: killed when the parent exits, never outlives it
  std::optional<int> ionice{};  // best-effort I/O priority 0 (first) .. 7 (last) of the child,
                                // set before the target runs (ioprio_set; `ionice -c2 -n N`)
  // How the child is started (mpp/start_method.hpp); nullopt = get_start_method().
  std::optional<StartMethod> start_method{};
};

// Thrown inside a target to end the child with a given exit status, like Python's sys.exit(code).
// Deliberately not a std::exception, so `catch (const std::exception&)` in user code lets it pass.
struct SystemExit {
  // The child's exit status.
  int code = 0;
};

namespace detail {
// What a child that is not a fork (StartMethod::forkserver, spawn) needs to run a target: the
// registry id of its trampoline, its function pointer (if it is one) and its encoded arguments.
struct FreshTarget {
  std::uint64_t id = 0;
  AnyFn fn = nullptr;
  ByteBuffer args;
  const char* type = nullptr;  // mangled type of the callable, for messages
};
// Type-erased, move-only target: the callable and its decayed arguments.
struct TargetBase {
  virtual ~TargetBase() = default;
  virtual void run() = 0;
  // False when the target cannot run in a fresh execution (it has state, or an argument cannot
  // travel through the codec); `out.type` is set either way.
  virtual bool fresh(FreshTarget& out) const = 0;
};
template <class F, class... Args>
struct Target final : TargetBase {
  template <class G, class... A>
  explicit Target(G&& g, A&&... a) : f(std::forward<G>(g)), args(std::forward<A>(a)...) {}
  void run() override {
    // Arguments are passed as lvalues, so a target may take them by value, by const& or by &.
    std::apply([this](auto&... a) { std::invoke(f, a...); }, args);
  }
  bool fresh(FreshTarget& out) const override {
    out.type = typeid(F).name();
    if constexpr (kCrossesMachines<F> && std::is_trivially_copyable_v<F> &&
                  (PoolCodable<Args> && ...)) {
      using Tuple = std::tuple<Args...>;
      out.id = ProcessTrampoline<F, Tuple>::id;
      if constexpr (kFunctionPointer<F>) out.fn = reinterpret_cast<AnyFn>(f);
      append_encoded(out.args, args);
      return true;
    } else {
      return false;
    }
  }
  F f;
  std::tuple<Args...> args;
};
struct ProcessState;
}  // namespace detail

// A function running in a child process (Python's multiprocessing.Process); see the file comment.
class MPP_API Process {
 public:
  // target(args...) will run in the child. Arguments are decay-copied now (std::ref to share).
  template <class F, class... Args>
  requires(
      !std::same_as<std::remove_cvref_t<F>, ProcessOptions> &&
      std::invocable<std::decay_t<F>&, std::decay_t<Args>&...>) explicit Process(F&& target,
                                                                                 Args&&... args)
      : Process(ProcessOptions{}, std::forward<F>(target), std::forward<Args>(args)...) {}

  // The same, with options (name, nice, cpus, daemon, ionice).
  template <class F, class... Args>
  requires std::invocable < std::decay_t<F>
  &, std::decay_t<Args>&... > Process(ProcessOptions options, F&& target, Args&&... args)
      : Process(std::move(options),
                std::make_unique<detail::Target<std::decay_t<F>, std::decay_t<Args>...>>(
                    std::forward<F>(target), std::forward<Args>(args)...)) {}

  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  // Kills (daemon) or joins (non-daemon) a running child, then reaps it. Never throws.
  ~Process();

  // Forks; the child runs target(args...) then exits. Does not block beyond fork itself.
  // Throws std::logic_error if already started, std::invalid_argument for a nice increment outside
  // [-39, 39], an ionice level outside [0, 7] or a negative cpu number, std::system_error ("cannot
  // fork process") if fork fails.
  void start();

  // Blocks until the child ends (EINTR-safe). Throws std::logic_error if not started.
  void join();
  // Blocks at most `timeout`; returns true if the child ended. Throws std::logic_error if not
  // started.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_for(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
  }

  // Non-blocking. False before start() and after the child ended.
  [[nodiscard]] bool is_alive() const;
  // Non-blocking. nullopt while running (or not started); >= 0 exit status; -N if killed by signal
  // N.
  [[nodiscard]] std::optional<int> exitcode() const;
  // The child's pid; 0 before start().
  [[nodiscard]] pid_t pid() const noexcept;
  // ProcessOptions::name, or "Process-N".
  [[nodiscard]] const std::string& name() const noexcept;
  // ProcessOptions::daemon.
  [[nodiscard]] bool daemon() const noexcept;

  // Send SIGTERM / SIGKILL. No-op once the child has ended. Throws std::logic_error if not started.
  // Never signals a recycled pid (pidfd_send_signal).
  void terminate();
  void kill();

  // Non-blocking. Set once the child has ended with an exception escaping the target: type name,
  // message, pid (task_index() is -1).
  [[nodiscard]] std::optional<RemoteError> error() const;

 private:
  Process(ProcessOptions options, std::unique_ptr<detail::TargetBase> target);
  bool join_for(std::chrono::nanoseconds timeout);
  void start_fresh(StartMethod method);
  std::unique_ptr<detail::ProcessState> state_;
};

// Like os.nice: adds `increment` to this process's niceness and returns the new value (clamped to
// [-20, 19] like nice(2)). Throws std::invalid_argument if |increment| > 39; std::system_error
// (EPERM/EACCES) when lowering niceness without the privilege to.
MPP_API int nice(int increment);

// CPUs this process may run on (affinity-aware, like len(os.sched_getaffinity(0))). Never throws.
[[nodiscard]] MPP_API unsigned cpu_count();

// Pids of the children started by mpp::Process in this process that are still running. Like Python,
// it reaps children that have ended as a side effect. Non-blocking.
[[nodiscard]] MPP_API std::vector<pid_t> active_children();

}  // namespace mpp
