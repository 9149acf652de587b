// The worker side of mpp::Pool: what a forked worker runs until it is told to stop, its parent
// dies, or it reached maxtasksperchild (src/pool/worker.cpp).
#pragma once

#include <sys/types.h>

#include "mpp/pool.hpp"
#include "pool/wire.hpp"
#include "sys/proc.hpp"

namespace mpp::detail {

struct WorkerEnv {
  wire::WorkerShared* sh;
  wire::PoolShared* ps;
  pid_t parent;
  bool by_id = false;  // chunks name their code by ids (a forkserver or spawned worker)
};

// The child side of the fork: applies `setup` (async-signal-safe steps only), runs the
// initializer, then serves chunks. Never returns, never throws: it leaves with _exit.
[[noreturn]] void worker_main(const WorkerEnv& env, const PoolOptions& options,
                              const sys::ChildSetup& setup) noexcept;

}  // namespace mpp::detail
