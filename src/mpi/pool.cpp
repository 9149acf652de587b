// mpp::mpi::Pool's non-template members: options, the per-pool view of the shared engine.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <vector>

#include "mpp/mpi.hpp"

namespace mpp::mpi {

// Several pools on rank 0 share one engine (the worker ranks); a pool only remembers its own
// calls, so that join() waits for them and terminate() fails them.
struct Pool::State {
  PoolOptions options;
  bool closed = false;
  bool joined = false;
  std::vector<std::weak_ptr<detail::Batch>> calls;
};

namespace {
PoolOptions checked(PoolOptions o) {
  if (o.processes > (1u << 20)) throw std::invalid_argument("mpp::mpi::Pool: absurd processes");
  if (o.task_timeout && o.task_timeout->count() <= 0) {
    throw std::invalid_argument("mpp::mpi::Pool: task_timeout must be positive");
  }
  if (o.chunks_per_rank == 0) throw std::invalid_argument("mpp::mpi::Pool: chunks_per_rank is 0");
  return o;
}
PoolOptions with_processes(unsigned processes) {
  PoolOptions o;
  o.processes = processes;
  return o;
}
}  // namespace

int rank() { return detail::world_rank(); }
int size() { return detail::world_size(); }

Pool::Pool() : Pool(PoolOptions{}) {}
Pool::Pool(unsigned processes) : Pool(with_processes(processes)) {}
Pool::Pool(PoolOptions options) : state_(std::make_unique<State>()) {
  state_->options = checked(std::move(options));
  engine_ = detail::engine_start();  // does not return on worker ranks
}

// state_ (closed, joined, calls) is guarded by the engine's mutex, like the batches: every member
// may be called from any thread (see mpi.hpp, "Threads").
Pool::~Pool() {
  if (state_ && engine_) terminate();  // a no-op once joined
}

void Pool::close() noexcept {
  if (!state_ || !engine_) return;
  try {
    const auto lk = detail::engine_lock(*engine_);
    state_->closed = true;
  } catch (...) {
    // Only from a thread MPI does not allow (below MPI_THREAD_SERIALIZED): nothing to change.
  }
}

void Pool::join() {
  auto& calls = state_->calls;
  {
    const auto lk = detail::engine_lock(*engine_);
    if (!state_->closed) throw std::logic_error("mpp::mpi::Pool::join() before close()");
  }
  // done() runs with the engine's mutex held, in whichever thread drives.
  detail::engine_wait(*engine_, [&calls] {
    return std::all_of(calls.begin(), calls.end(), [](const auto& w) {
      auto b = w.lock();
      return !b || b->finished();
    });
  });
  const auto lk = detail::engine_lock(*engine_);
  calls.clear();
  state_->joined = true;
}

void Pool::terminate() noexcept {
  if (!state_ || !engine_) return;
  std::vector<std::shared_ptr<detail::Batch>> live;
  try {
    const auto lk = detail::engine_lock(*engine_);
    if (state_->joined) return;
    state_->closed = true;
    for (auto& w : state_->calls) {
      if (auto b = w.lock(); b && !b->finished()) live.push_back(std::move(b));
    }
    state_->calls.clear();
  } catch (...) {
    return;  // out of memory, or a thread MPI does not allow
  }
  // engine_cancel takes the mutex itself; a batch that finished meanwhile is left as it is.
  for (auto& b : live) {
    detail::engine_cancel(
        *engine_, *b, std::make_exception_ptr(WorkerLost(0, -1, 0, 0, "mpp::mpi::Pool terminated")),
        true);
  }
}

unsigned Pool::processes() const noexcept {
  const unsigned n = detail::engine_workers(*engine_);
  const unsigned cap = state_->options.processes;
  return cap == 0 ? n : std::min(cap, n);
}

void Pool::configure(const std::shared_ptr<detail::Batch>& b) {
  const auto& o = state_->options;
  b->seed = o.seed;
  b->timeout = o.task_timeout.value_or(std::chrono::milliseconds(0));
  b->max_ranks = o.processes;
  b->per_rank = o.chunks_per_rank;
  const auto lk = detail::engine_lock(*engine_);
  auto& calls = state_->calls;
  std::erase_if(calls, [](const auto& w) {
    auto p = w.lock();
    return !p || p->finished();
  });
  calls.push_back(b);
}

Pool::ProgressLine::ProgressLine(const Pool& pool, std::int64_t items)
    : pool_(pool),
      items_(items),
      start_(std::chrono::steady_clock::now()),
      exceptions_(std::uncaught_exceptions()) {}

Pool::ProgressLine::~ProgressLine() {
  if (!pool_.state_->options.progress || std::uncaught_exceptions() != exceptions_) return;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (items_ >= 0) {
    std::fprintf(stderr, "mpp::mpi: %lld items done in %.2f s on %u ranks\n",
                 static_cast<long long>(items_), secs, pool_.processes());
  } else {
    std::fprintf(stderr, "mpp::mpi: done in %.2f s on %u ranks\n", secs, pool_.processes());
  }
}

void Pool::require_open() const {
  const auto lk = detail::engine_lock(*engine_);
  if (state_->closed) throw std::logic_error("mpp::mpi::Pool used after close()");
}

}  // namespace mpp::mpi
