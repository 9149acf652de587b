// mpp/detail/pool_engine.hpp: the local transport of the pool core: mpp::Pool's worker processes
// (implemented in src/pool/).
//
// The templates in <mpp/pool.hpp> turn a call (map, imap, apply...) into a batch of the pool core
// (pool_core/batch.hpp). This Engine owns the worker processes and their shared-memory rings, and
// moves chunks and results between them. It is driven by the threads that call into the pool
// (there is no background thread): a wait pumps it, or, while another thread does, sleeps until
// that thread delivers what it waits for (src/pool/driver.hpp). Its state, and that of the batches
// it drives, is guarded by one mutex (engine_lock).
//
// Worker side: a chunk names a TaskFn, a pointer to a template trampoline (run_chunk below)
// instantiated for the user's callable and types. Under StartMethod::fork, workers are forks of
// the same program image, so that pointer is valid in every worker; the callable itself is
// rebuilt there from `fstate` (empty callables, function pointers) or, for callables with state,
// read at `context` in a worker forked for that call. Under forkserver and spawn, workers are
// fresh executions: the chunk names the trampoline by its registry id (`fn_id`,
// pool_core/callable.hpp) and a function pointer by its place in its module (src/sys/module.hpp),
// never by an address.
#pragma once

#include <array>
#include <bit>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "mpp/detail/export.hpp"
#include "mpp/detail/pool_core/batch.hpp"
#include "mpp/detail/pool_core/callable.hpp"
#include "mpp/detail/pool_core/task.hpp"

namespace mpp {
struct PoolOptions;
struct PoolStats;
}  // namespace mpp

namespace mpp::detail {

inline constexpr std::size_t kMaxFunctionState = 16;

class Engine;

// The local transport, as the pool core sees it (see pool_core/batch.hpp).
struct LocalTransport {
  using Engine = detail::Engine;
  struct CallFields {
    TaskFn fn = nullptr;
    unsigned char fstate[kMaxFunctionState] = {};
    std::uintptr_t context = 0;
    // For workers that are not forks (forkserver, spawn): the trampoline's registry id (0 for a
    // callable with state, which cannot run there) and the function pointer, if the callable is
    // one.
    std::uint64_t fn_id = 0;
    AnyFn fn_ptr = nullptr;
  };
  // Reaps the workers forked for one call.
  static void release(Engine& e);
  static constexpr const char* kTimeout = "pool result not ready within the timeout";
  static constexpr const char* kRetrieved = "pool result already retrieved";
  static constexpr const char* kChunksizeTooLarge =
      "pool chunksize is absurd (more than 2^30 items)";
  // 16 chunks per worker (Python uses 4): per-chunk cost is a few microseconds, and on a machine
  // shared with other work, finer chunks measured 0.82 -> 0.93 parallel efficiency for 1 ms
  // tasks while map(x + 1) stayed at ~3-4 ns per item. An input of unknown length: 256 items a
  // chunk amortize the per-chunk cost and keep some balance.
  static constexpr ChunkPolicy kChunks{16, 256, 1 << 24};
};

// Callables that can run on persistent workers: their whole state is (at most) a code address.
template <class Fd>
inline constexpr bool kStateless = std::is_trivially_copyable_v<Fd> &&
                                   sizeof(Fd) <= kMaxFunctionState &&
                                   (std::is_empty_v<Fd> ||
                                    (std::is_pointer_v<Fd> &&
                                     std::is_function_v<std::remove_pointer_t<Fd>>));

// The trampoline whose address travels to the workers.
template <class Fd, class In, class R, bool Star>
void run_chunk(TaskCall& c) noexcept {
  if constexpr (kStateless<Fd>) {
    std::array<unsigned char, sizeof(Fd)> bytes{};
    std::memcpy(bytes.data(), c.fstate, sizeof(Fd));
    Fd f = std::bit_cast<Fd>(bytes);
    run_items<Fd, In, R, Star>(f, c);
  } else {
    // A worker forked for this call: the callable is where it was in the parent at the fork.
    run_items<Fd, In, R, Star>(*reinterpret_cast<Fd*>(c.context), c);
  }
}

// Tells the batch how the workers find the callable `f`.
template <class Fd, class In, class R, bool Star, class F>
void setup_batch(Batch<LocalTransport>& b, F& f) {
  b.fn = &run_chunk<Fd, In, R, Star>;
  if constexpr (kStateless<Fd>) {
    const Fd copy = f;  // a function reference decays to its pointer here
    std::memcpy(b.fstate, static_cast<const void*>(std::addressof(copy)), sizeof(Fd));
    b.fn_id = Trampoline<Fd, In, R, Star>::id;
    if constexpr (kFunctionPointer<Fd>) b.fn_ptr = reinterpret_cast<AnyFn>(copy);
  } else {
    b.context = reinterpret_cast<std::uintptr_t>(std::addressof(f));
  }
}

// Starts `processes` workers (0 = cpu count) with the options' start method. `per_call`: the
// workers of one call with a callable with state (forked from the caller now, fork only). Throws
// std::invalid_argument for bad options (an initializer with state under forkserver or spawn),
// std::logic_error for forkserver or spawn without mpp::init, std::system_error when the OS
// refuses.
[[nodiscard]] MPP_API std::shared_ptr<Engine> make_engine(const PoolOptions& options,
                                                          unsigned processes,
                                                          bool per_call = false);
// Throws std::invalid_argument unless the engine's workers can run a callable with state (of
// mangled type `type`): only forks of the caller can.
MPP_API void engine_check_stateful(const Engine& e, const char* type);
// Adds a batch; throws std::logic_error after close()/terminate().
MPP_API void engine_submit(Engine& e, std::shared_ptr<Batch<LocalTransport>> batch);
// Pumps until done() or the deadline; returns done()'s last value. Blocks.
MPP_API bool engine_wait(
    Engine& e, const std::function<bool()>& done,
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max());
// Makes whatever progress is possible now, without waiting for workers.
MPP_API void engine_poll(Engine& e);
// cancel_call's engine side (pool_core/results.hpp): `b` produces nothing more and is finished on
// return; its chunks not yet started are dropped (a worker skips one already in its ring); with
// `stop_running`, a worker running one of its chunks is sent SIGTERM, SIGKILL after a grace, and
// replaced, and the other calls' chunks it held run elsewhere. Its items are not failed one by
// one: the call's `error` (set by cancel_call) stands for all of them. Does not block. Never
// throws.
MPP_API void engine_cancel(Engine& e, Batch<LocalTransport>& b, const std::exception_ptr& error,
                           bool stop_running) noexcept;
// The mutex guarding the engine and its batches: the handles (pool_core/results.hpp) read and
// take their batch's results under it. Never hold it across another engine_* call. Throws
// std::logic_error when called from the engine's own progress callback.
[[nodiscard]] MPP_API std::unique_lock<std::mutex> engine_lock(Engine& e);
[[nodiscard]] MPP_API unsigned engine_workers(const Engine& e) noexcept;
[[nodiscard]] MPP_API bool engine_accepting(const Engine& e) noexcept;
MPP_API void engine_close(Engine& e) noexcept;
MPP_API void engine_join(Engine& e);
MPP_API void engine_terminate(Engine& e) noexcept;
// Pids of the live workers (tests, diagnostics).
[[nodiscard]] MPP_API std::vector<pid_t> engine_pids(const Engine& e);
[[nodiscard]] MPP_API PoolStats engine_stats(const Engine& e);
[[nodiscard]] MPP_API std::exception_ptr engine_broken(const Engine& e) noexcept;

inline void LocalTransport::release(Engine& e) {
  engine_close(e);
  engine_join(e);
}

}  // namespace mpp::detail
