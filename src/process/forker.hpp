// Forkers: processes that fork workers on request, so that a worker is never a fork of a program
// that runs threads. Two kinds, one protocol:
// - the forkserver (StartMethod::forkserver): one per program, a fresh execution of the
//   program's binary that mpp::init diverts into forker_loop (src/process/start.cpp); started on
//   first use. Its children run an entry registered by kind (register_fork_entry), with the
//   payload and descriptors of the request (a pool worker gets its config and the memfd of its
//   shared slot).
// - a zygote (StartMethod::fork): one per Pool, forked from the program when the Pool is built,
//   so it has the program's memory of that moment at the same addresses; its children run the
//   ZygoteEntry it was made with.
//
// Channel: a SOCK_SEQPACKET socket pair, one end inherited by the forker, the other held by the
// program (nothing else can reach it: it has no name). A request is one message,
// [RequestHeader][payload], with descriptors: first a fresh "status" socket end made for that
// child, then the request's own. The forker forks, and answers on the status socket: "started"
// (pid, with the child's pidfd attached) or "failed" (errno); then, once it reaped the child,
// "ended" (the raw wait status), and closes it. So the program learns of a death by the status
// socket turning readable, gets the real exit status, and signals through the pidfd, which names
// that process even after its pid is reused; pids are never reused under us.
//
// Lifetime: a forker exits (SIGKILLing and reaping the children it still has) when its channel
// closes (the last holder closed it) or when the process that started it dies (it polls a pidfd
// of that process: a SIGKILLed program leaves nothing behind, and no parent-death signal is
// needed, which would follow the thread that started it rather than the process). Its children
// get PR_SET_PDEATHSIG from it (it has a single thread).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "sys/fd.hpp"
#include "sys/proc.hpp"

namespace mpp::detail {

// What a forker's child runs: the request's payload and descriptors (owned by the callee). Never
// returns.
using ForkEntry = void (*)(const void* payload, std::size_t n, sys::Fd* fds,
                           std::size_t nfds) noexcept;
using ZygoteEntry = void (*)(void* context, const void* payload, std::size_t n, sys::Fd* fds,
                             std::size_t nfds) noexcept;
inline constexpr std::uint32_t kEntryPoolWorker = 1;
inline constexpr std::uint32_t kEntryProcess = 2;
inline constexpr std::uint32_t kEntryCount = 4;
inline constexpr std::size_t kMaxRequestPayload = 1024;
// Registers the entry a forkserver child or a spawned process of kind `kind` runs (static
// initialisation of the layer that owns it). Never throws.
void register_fork_entry(std::uint32_t kind, ForkEntry entry) noexcept;
// Runs the entry of `kind` (a forkserver child, a spawned process); exits 70 if none.
[[noreturn]] void run_fork_entry(std::uint32_t kind, const void* payload, std::size_t n,
                                 sys::Fd* fds, std::size_t nfds) noexcept;

// A process started by a forker (its child, not ours), or one of our own children: the handle
// mpp::Pool keeps per worker. poll/wait/wait_for/signal/exitcode as sys::Child. Not thread-safe.
class WorkerProcess {
 public:
  WorkerProcess() = default;
  explicit WorkerProcess(sys::Child own) : own_(std::move(own)) {}
  WorkerProcess(pid_t pid, sys::Fd status, sys::Fd pidfd)
      : remote_(true), pid_(pid), status_fd_(std::move(status)), pidfd_(std::move(pidfd)) {}
  WorkerProcess(WorkerProcess&&) noexcept = default;
  WorkerProcess& operator=(WorkerProcess&&) noexcept = default;

  [[nodiscard]] pid_t pid() const noexcept { return remote_ ? pid_ : own_.pid(); }
  // Python exitcode once ended (>= 0 exit status, -N signal N), nullopt before.
  [[nodiscard]] std::optional<int> exitcode() const noexcept;
  // Non-blocking: true once the process ended (and its status is known).
  bool poll();
  void wait();
  bool wait_for(std::chrono::nanoseconds timeout);
  // Never reaches another process (pidfd, or a not-yet-reaped child). False if not delivered.
  bool signal(int sig) noexcept;

 private:
  bool take_status(bool block);

  sys::Child own_;
  bool remote_ = false;
  pid_t pid_ = 0;
  sys::Fd status_fd_;
  sys::Fd pidfd_;
  std::optional<int> status_;
};

// The program's side of a forker.
class Forker {
 public:
  // A zygote: forks now. Its children run entry(context, payload...) in its copy of our memory.
  // Throws std::system_error ("cannot fork worker").
  [[nodiscard]] static std::unique_ptr<Forker> make_zygote(ZygoteEntry entry, void* context);
  // The program's forkserver, started on first use (a fresh execution of /proc/self/exe, which
  // mpp::init diverts), again in a forked child of the program, and again if it died. Throws
  // std::logic_error without mpp::init, std::system_error if it cannot start.
  [[nodiscard]] static std::shared_ptr<Forker> server();
  // Tests: stops the program's forkserver (if any) and reaps it.
  static void stop_server() noexcept;
  // Tests and diagnostics: the forkserver's pid, 0 when none runs.
  [[nodiscard]] static pid_t server_pid() noexcept;

  Forker(const Forker&) = delete;
  Forker& operator=(const Forker&) = delete;
  // Closes the channel: the forker kills the children it still has, and exits; a zygote is
  // reaped here.
  ~Forker();

  // Asks for a child of kind `kind` (forkserver) or for the zygote's entry, with `payload` and up
  // to 3 descriptors; then waits for its answer. Thread-safe. Throws std::system_error ("cannot
  // fork worker": the forker's fork failed, or the forker is gone).
  [[nodiscard]] WorkerProcess start(std::uint32_t kind, const void* payload, std::size_t n,
                                    const int* fds = nullptr, std::size_t nfds = 0);
  [[nodiscard]] pid_t pid() const noexcept { return proc_.pid(); }
  // False once the forker is known to have ended, or to be ending: its socket refused a request
  // (a SIGKILLed process closes its files before it can be reaped).
  [[nodiscard]] bool alive();

 private:
  Forker(sys::Fd channel, sys::Child proc, pid_t owner)
      : channel_(std::move(channel)), proc_(std::move(proc)), owner_(owner) {}
  std::mutex mutex_;
  sys::Fd channel_;
  sys::Child proc_;
  std::atomic<bool> gone_{false};  // a request found its socket closed
  pid_t owner_ = 0;
};

// StartMethod::spawn: a fresh execution of the program's binary (our child), diverted by mpp::init
// into the entry of `kind`, which gets `payload` and the descriptors (sent over an inherited
// socket pair, closed on both sides once delivered). Thread-safe. Throws std::logic_error without
// mpp::init, std::system_error ("cannot start worker").
[[nodiscard]] WorkerProcess spawn_process(std::uint32_t kind, const void* payload, std::size_t n,
                                          const int* fds = nullptr, std::size_t nfds = 0);
// The spawned side (mpp::init): receives the request on `channel` and runs its entry.
[[noreturn]] void spawned_main(int channel) noexcept;

// The forkserver's first message (mpp::init sends it before forker_loop). Never throws.
void forkserver_hello(int channel) noexcept;

// The forker's side: serves requests on `channel` until it closes or `owner` dies, then exits.
// `zygote` is null in the forkserver (children run the entry of their request's kind).
[[noreturn]] void forker_loop(int channel, pid_t owner, ZygoteEntry zygote, void* context) noexcept;

// Prints, once per process, the warning that a worker is forked from a process that runs other
// threads (unless MPP_NO_FORK_WARNING is set to anything but "0"). `threads` as counted before
// the fork. Never throws.
void warn_threaded_fork(unsigned threads) noexcept;
// True (and warns) when this process runs more than one thread. One read of /proc/self/stat
// until the warning was printed, nothing after. Never throws.
bool check_threaded_fork() noexcept;

// Start-method plumbing of src/process/start.cpp for the layers that start processes.
// Throws std::logic_error naming mpp::init when it was not called (or this process is a
// forkserver/spawned worker that was not diverted by it: a program whose main does not begin with
// mpp::init). `who` starts the message ("mpp::Pool").
void require_init(const char* who);
// The argv mpp::init saw (nullptr-ended; {"mpp", nullptr} before init).
[[nodiscard]] char* const* saved_argv() noexcept;

}  // namespace mpp::detail
