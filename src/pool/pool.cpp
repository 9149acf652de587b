// mpp::Pool's non-template members: a thin layer over the local transport's engine
// (src/pool/engine.cpp), like src/mpi/pool.cpp over the MPI one.
#include "mpp/pool.hpp"

#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

namespace mpp {

Pool::Pool() : Pool(PoolOptions{}) {}
Pool::Pool(unsigned processes)
    : Pool([&] {
        PoolOptions o;
        o.processes = processes;
        return o;
      }()) {}
Pool::Pool(PoolOptions options)
    : options_(std::make_shared<PoolOptions>(std::move(options))),
      engine_(detail::make_engine(*options_, options_->processes)) {}

// (terminate() is a no-op on a joined engine: no flag here that join() in another thread would
// race with.)
Pool::~Pool() {
  if (engine_) detail::engine_terminate(*engine_);
}

void Pool::close() noexcept {
  if (engine_) detail::engine_close(*engine_);
}

void Pool::join() {
  if (!engine_) throw std::logic_error("pool was moved from");
  detail::engine_join(*engine_);
}

void Pool::terminate() noexcept {
  if (engine_) detail::engine_terminate(*engine_);
}

unsigned Pool::processes() const noexcept { return engine_ ? detail::engine_workers(*engine_) : 0; }

std::vector<pid_t> Pool::worker_pids() const {
  return engine_ ? detail::engine_pids(*engine_) : std::vector<pid_t>{};
}

PoolStats Pool::stats() const { return engine_ ? detail::engine_stats(*engine_) : PoolStats{}; }

void Pool::require_open() const {
  if (!engine_) throw std::logic_error("pool was moved from");
  if (auto b = detail::engine_broken(*engine_)) std::rethrow_exception(b);
  if (!detail::engine_accepting(*engine_)) {
    throw std::logic_error("pool is closed (close() or terminate() ran)");
  }
}

}  // namespace mpp
