// mpp/detail/mpi_core.hpp: the non-template core of mpp::mpi::Pool (implemented in src/mpi/).
//
// The templates in <mpp/mpi.hpp> reduce every call to bytes: a Batch produces chunks of encoded
// inputs and consumes encoded results. Everything that talks MPI lives in src/mpi/*.cpp behind
// the functions below, so this header (and <mpp/mpi.hpp>) compiles without <mpi.h>.
//
// Function identity: a task names its code by two 64-bit ids, never by an address. The
// trampoline id is the hash of the mangled name of Trampoline<F, In, R, Star> (registered by a
// static member before main on every rank of the same program); the function id is 0 for empty
// callables (their type already names them) or the id of a function pointer registered with
// MPP_MPI_REGISTER. A worker looks both up in its own registry; an unknown id fails the task.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace mpp::mpi::detail {

using AnyFn = void (*)();

// Worker side: one chunk to run. Everything it points to is worker-local memory.
struct TaskCall {
  std::span<const std::byte> in;             // encoded inputs, one after the other
  std::int64_t first_index = 0;              // input index of the chunk's first item
  std::uint32_t count = 0;                   // items in the chunk
  AnyFn fn = nullptr;                        // the registered function (function-pointer callables)
  std::uint64_t seed = 0;                    // PoolOptions::seed, base of task_seed()
  std::vector<std::byte>* out = nullptr;     // encoded results of the items that succeeded
  std::vector<std::byte>* errors = nullptr;  // encoded failures (see record_failure)
  std::uint32_t nerrors = 0;
};
using TrampolineFn = void (*)(TaskCall&) noexcept;

// Registry (filled before main on every rank). `key` must outlive the program (a string literal
// or a typeid name). Never throw: a clash is remembered and reported when the id is used, and the
// start-up handshake compares every rank's registry.
// `callable` is the mangled type of the user's callable, for messages.
std::uint64_t register_trampoline(const char* key, const char* callable, TrampolineFn t) noexcept;
// A function pointer: its id hashes `name` (as written in MPP_MPI_REGISTER) and `signature` (the
// mangled type of the pointer), so overloads and equal names in other binaries stay apart.
std::uint64_t register_function(const char* name, const char* signature, AnyFn f) noexcept;
// Rank 0, at submission: the id of a registered function pointer. Throws std::invalid_argument
// when `f` was not registered (the message says how to register it).
[[nodiscard]] std::uint64_t function_id(AnyFn f, const char* type_name);
// Throws std::logic_error if `id` names two different callables in this program.
void check_trampoline(std::uint64_t id);

// Worker side: appends "item `pos` of the chunk failed" with the exception in flight (call only
// inside a catch block). Never throws.
void record_failure(TaskCall& call, std::uint32_t pos) noexcept;
// Worker side: item `index` is about to run (task_seed() and the crash report read it).
void begin_item(const TaskCall& call, std::int64_t index) noexcept;
void end_chunk() noexcept;

// Rank 0: one chunk's outcome, as it arrived.
struct Delivery {
  std::int64_t first_index = 0;
  std::uint32_t count = 0;
  std::span<const std::byte> results;  // encoded results of the items that succeeded, in order
  // Failed items by position in the chunk, ascending, each already a RemoteError naming the rank.
  std::span<const std::pair<std::uint32_t, std::exception_ptr>> failures;
};

// One pool call on rank 0. The engine only touches the bookkeeping fields.
class Batch {
 public:
  virtual ~Batch() = default;
  // Appends the next chunk's encoded inputs to `payload`, sets first_index and
  // returns the item count, 0 once the input is exhausted. May throw (the input range threw).
  virtual std::uint32_t produce(std::vector<std::byte>& payload, std::int64_t& first_index) = 0;
  // False while the batch must not take more work (a full imap window).
  [[nodiscard]] virtual bool may_produce() const { return true; }
  // A chunk's results arrived. Never throws (decode errors become per-item failures).
  virtual void deliver(const Delivery& d) noexcept = 0;
  // Item `index` failed without a result (rank lost, pool terminated). Never throws.
  virtual void fail(std::int64_t index, std::exception_ptr error) noexcept = 0;

  [[nodiscard]] bool finished() const noexcept { return exhausted && in_flight == 0; }

  // Set by the template that builds the batch.
  std::uint64_t trampoline = 0;
  std::uint64_t function = 0;
  std::uint64_t seed = 0;
  std::uint32_t chunksize = 1;
  std::chrono::milliseconds timeout{0};  // per item; 0 = none
  unsigned max_ranks = 0;                // worker ranks this call may use; 0 = all
  unsigned per_rank = 2;                 // chunks queued at one rank at most

  // Engine bookkeeping.
  std::size_t in_flight = 0;       // chunks sent whose results are not in yet
  bool exhausted = false;          // no more chunks will be produced
  bool abandoned = false;          // the caller is gone: results are dropped
  std::exception_ptr batch_error;  // what ended it early: the input range threw, or cancelled
  std::uint64_t id = 0;            // names the call in the messages
  const char* name = nullptr;      // the callable, for reports
};

class Engine;

// Starts (once per process) the engine: MPI_Init if nobody did, a private communicator, the
// registry handshake. On ranks other than 0 this serves tasks until rank 0 finalizes, then calls
// MPI_Finalize and exits the process with status 0: it never returns there.
[[nodiscard]] std::shared_ptr<Engine> engine_start();
// Adds a batch. Does not block.
void engine_submit(Engine& e, std::shared_ptr<Batch> batch);
// Pumps (sends chunks, receives results, checks timeouts) until done() or the deadline; returns
// done()'s last value. Blocks.
bool engine_wait(
    Engine& e, const std::function<bool()>& done,
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max());
// Makes whatever progress is possible now. Does not block.
void engine_poll(Engine& e);
// Fails every item of `b` whose result is not in yet with `error` and drops its chunks still out
// (their results are discarded when they arrive). Never throws.
void engine_cancel(Engine& e, Batch& b, std::exception_ptr error) noexcept;
// Worker ranks still in service (0 when the job has a single rank: tasks then run on rank 0).
[[nodiscard]] unsigned engine_workers(const Engine& e) noexcept;

// Rank of this process in MPI_COMM_WORLD, and the job's size. MPI must be initialized.
[[nodiscard]] int world_rank();
[[nodiscard]] int world_size();

// Hash of this process's whole registry (what the start-up handshake compares across ranks).
[[nodiscard]] std::uint64_t registry_hash() noexcept;

}  // namespace mpp::mpi::detail
