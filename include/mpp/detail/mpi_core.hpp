// mpp/detail/mpi_core.hpp: the MPI transport of the pool core: mpp::mpi::Pool's engine over the
// ranks of an MPI job (implemented in src/mpi/).
//
// The templates in <mpp/mpi.hpp> turn every call into a batch of the pool core
// (pool_core/batch.hpp), which produces chunks of encoded inputs and consumes encoded results.
// Everything that talks MPI lives in src/mpi/*.cpp behind the functions below, so this header (and
// <mpp/mpi.hpp>) compiles without <mpi.h>.
//
// Function identity: a task names its code by two 64-bit ids, never by an address. The
// trampoline id is the hash of the mangled name of Trampoline<F, In, R, Star> (registered by a
// static member before main on every rank of the same program); the function id is 0 for empty
// callables (their type already names them) or the id of a function pointer registered with
// MPP_MPI_REGISTER. A worker looks both up in its own registry; an unknown id fails the task.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>

#include "mpp/detail/export.hpp"
#include "mpp/detail/pool_core/batch.hpp"
#include "mpp/detail/pool_core/task.hpp"
#include "mpp/detail/registry.hpp"

namespace mpp::mpi::detail {

using mpp::detail::AnyFn;
using mpp::detail::item_result_t;
using mpp::detail::range_size;
using mpp::detail::TaskCall;
using TrampolineFn = mpp::detail::TaskFn;

class Engine;

// The MPI transport, as the pool core sees it (see pool_core/batch.hpp).
struct MpiTransport {
  using Engine = detail::Engine;
  struct CallFields {
    // Set by the template that builds the batch (see "Function identity" above).
    std::uint64_t trampoline = 0;
    std::uint64_t function = 0;
    // Set from the pool's options.
    std::uint64_t seed = 0;
    std::chrono::milliseconds timeout{0};  // per item; 0 = none
    unsigned max_ranks = 0;                // worker ranks this call may use; 0 = all
    unsigned per_rank = 2;                 // chunks queued at one rank at most
    // Set by the engine.
    std::uint64_t id = 0;        // names the call in the messages
    const char* name = nullptr;  // the callable, for reports
  };
  static void release(Engine&) noexcept {}  // the ranks outlive every call
  static constexpr const char* kTimeout = "mpp::mpi::Pool result not ready within the timeout";
  static constexpr const char* kRetrieved = "mpp::mpi::Pool result already retrieved";
  static constexpr const char* kChunksizeTooLarge = "mpp::mpi::Pool: chunksize larger than 2^30";
  // About four chunks per rank: few enough that a message per chunk is cheap next to the work,
  // enough that uneven chunks still balance; 64 items a chunk when the length is unknown.
  static constexpr mpp::detail::ChunkPolicy kChunks{4, 64, 1 << 20};
};

// One pool call on rank 0, and the core's batches for this transport.
using Batch = mpp::detail::Batch<MpiTransport>;
template <class In, class R, class Src, class Out>
using CollectBatch = mpp::detail::CollectBatch<MpiTransport, In, R, Src, Out>;
template <class In, class R, class Src, bool Ordered>
using ImapBatch = mpp::detail::ImapBatch<MpiTransport, In, R, Src, Ordered>;

// The function registry (filled before main on every rank) is the one mpp::Pool uses too:
// mpp/detail/registry.hpp.
using mpp::detail::check_trampoline;
using mpp::detail::function_id;
using mpp::detail::register_function;
using mpp::detail::register_trampoline;
using mpp::detail::registry_hash;

// Starts (once per process) the engine: MPI_Init if nobody did, a private communicator, the
// registry handshake. On ranks other than 0 this serves tasks until rank 0 finalizes, then calls
// MPI_Finalize and exits the process with status 0: it never returns there.
[[nodiscard]] MPP_API std::shared_ptr<Engine> engine_start();
// Adds a batch. Does not block.
MPP_API void engine_submit(Engine& e, std::shared_ptr<Batch> batch);
// Pumps (sends chunks, receives results, checks timeouts) until done() or the deadline; returns
// done()'s last value. Blocks.
MPP_API bool engine_wait(
    Engine& e, const std::function<bool()>& done,
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max());
// Makes whatever progress is possible now. Does not block.
MPP_API void engine_poll(Engine& e);
// The mutex guarding the engine and its batches (every engine_* function takes it; the handles
// hold it while they read their batch). Throws std::logic_error from a thread other than the
// engine's first when MPI runs below MPI_THREAD_SERIALIZED.
[[nodiscard]] MPP_API std::unique_lock<std::mutex> engine_lock(Engine& e);
// Fails every item of `b` whose result is not in yet with `error` and drops its chunks still out
// (their results are discarded when they arrive). A chunk a rank already received runs there to
// its end whatever `stop_running` says (a rank cannot be stopped from here; its result is
// discarded): the rank is busy until then. Never throws.
MPP_API void engine_cancel(Engine& e, Batch& b, const std::exception_ptr& error,
                           bool stop_running = true) noexcept;
// Worker ranks still in service (0 when the job has a single rank: tasks then run on rank 0).
[[nodiscard]] MPP_API unsigned engine_workers(const Engine& e) noexcept;

// Rank of this process in MPI_COMM_WORLD, and the job's size. MPI must be initialized.
[[nodiscard]] MPP_API int world_rank();
[[nodiscard]] MPP_API int world_size();

}  // namespace mpp::mpi::detail
