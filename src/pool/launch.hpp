// How mpp::Pool starts its workers (StartMethod), and how its chunks name their code for them:
// the engine's (src/pool/engine.cpp) one seam to the start methods.
//
// - fork, the pool's own workers: a zygote (src/process/forker.hpp) is forked when the pool is
//   built, before any worker; it forks every worker and every replacement, so no worker is ever a
//   fork of a program that became multi-threaded after the pool was created. It is a copy of the
//   program at that moment: a worker it forks runs the options and initializer of the pool
//   exactly as a direct fork would, in the same shared mapping, at the same addresses.
// - fork, the workers of one call with a callable with state: direct forks of the caller (they
//   must see its memory as of the call), replacements included.
// - forkserver: the program's forkserver forks them; spawn: each is a fresh execution of the
//   program. Both get the pool's shared memory as a memfd and their options as a WorkerBoot
//   (below); chunks name the trampoline by its registry id and a function pointer by a
//   sys::CodeRef, checked by the worker (an unknown one fails the chunk's items with RemoteError).
//
// A worker started by a forker is not our child: WorkerProcess (forker.hpp) watches it through
// the status socket its forker answers on and signals it through its pidfd.
//
// Threads: used by the engine under its own serialisation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "mpp/pool.hpp"
#include "mpp/start_method.hpp"
#include "pool/wire.hpp"
#include "process/forker.hpp"
#include "sys/fd.hpp"
#include "sys/mem.hpp"
#include "sys/module.hpp"
#include "sys/proc.hpp"

namespace mpp::detail {

class Launcher {
 public:
  // `options` must outlive the launcher (the engine's copy). Throws std::invalid_argument for
  // an initializer with state under forkserver/spawn, std::logic_error without mpp::init.
  Launcher(const PoolOptions& options, bool per_call);
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;
  ~Launcher();

  [[nodiscard]] StartMethod method() const noexcept { return method_; }
  // True when chunks must name their code by ids (the workers are not forks of this program).
  [[nodiscard]] bool by_id() const noexcept { return method_ != StartMethod::fork; }

  // The pool's shared mapping (zero-filled): anonymous (fork), or a memfd the workers map too.
  [[nodiscard]] sys::Mapping map_shared(std::size_t size);
  // Once the slots are laid out in the mapping, before the first start(): forks the zygote,
  // or starts the forkserver. `setup` is the engine's (it outlives the launcher).
  void prepare(wire::PoolShared* ps, std::vector<wire::WorkerShared*> slots,
               const sys::ChildSetup& setup);
  // Starts the worker of slot `slot` (its WorkerShared was reset). Throws std::system_error.
  [[nodiscard]] WorkerProcess start(unsigned slot);

  // Once no worker will be started any more (join, terminate): lets the zygote go (it exits,
  // and is reaped here). Never throws.
  void shutdown() noexcept;

  // Fills the code fields of a chunk's header for `b` (fn, fstate, context).
  void describe(const Batch<LocalTransport>& b, wire::TaskHeader& h);

 private:
  static void zygote_entry(void* context, const void* payload, std::size_t n, sys::Fd* fds,
                           std::size_t nfds) noexcept;

  const PoolOptions& options_;
  StartMethod method_ = StartMethod::fork;
  bool per_call_ = false;
  sys::Fd memfd_;
  std::size_t map_size_ = 0;
  wire::PoolShared* ps_ = nullptr;
  std::vector<wire::WorkerShared*> slots_;
  const sys::ChildSetup* setup_ = nullptr;
  std::unique_ptr<Forker> zygote_;
  std::size_t started_ = 0;  // workers the zygote was asked for (the first slots_.size(): initial)
  std::shared_ptr<Forker> server_;
  wire::WorkerBoot boot_{};
  // The last function pointer described, and its reference (a map calls describe per chunk).
  AnyFn last_fn_ = nullptr;
  sys::CodeRef last_ref_{};
};

// Throws std::invalid_argument (naming the start method and the demangled `type`) unless `m` is
// fork: only forks of the caller see a callable's state.
void check_stateful_method(StartMethod m, const char* type);

}  // namespace mpp::detail
