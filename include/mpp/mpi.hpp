// mpp/mpi.hpp: mpp::mpi::Pool, the mpp::Pool interface over the ranks of an MPI job.
//
// What: `mpirun -n 4 ./program`, and in the program `mpp::mpi::Pool pool; pool.map(f, inputs)`
// runs f on the other ranks (possibly other machines) with the ordering, error and task_seed()
// semantics of mpp::Pool (API.md sections 4 and 7). Target mpp::mpi; this header needs no MPI
// headers (every MPI call is in src/mpi/).
//
// Lifetime and ranks: the first Pool constructed in a process starts the backend: MPI_Init (with
// MPI_THREAD_SERIALIZED) unless the program already initialized MPI, a private duplicate of
// MPI_COMM_WORLD (your own messages never mix with the pool's), and a start-up handshake that
// checks every rank runs the same function registry. Then:
//   - on rank 0 the constructor returns: rank 0 runs main's work and hands tasks out;
//   - on every other rank the constructor NEVER RETURNS: the rank serves tasks until rank 0 is
//     done (MPI_Finalize on rank 0, which mpp calls at exit if it initialized MPI), then calls
//     MPI_Finalize and exits the process with status 0 (static destructors and atexit handlers
//     run; automatic objects of the frames above do not). Code before the first Pool runs on
//     every rank, like the top of a Python script under mpi4py.futures.
// Several Pools may live on rank 0, one after the other or at once; they share the worker ranks.
// A job of a single rank runs every task on rank 0, in the calling thread.
//
// Callables: what crosses machines is an id, never an address (load addresses differ between
// ranks). Captureless lambdas and empty functors need nothing: their type names them, and a
// template registry keyed by the mangled name of that type is filled before main on every rank.
// Plain functions and function pointers need one registration line at namespace scope,
// `MPP_MPI_REGISTER(f);`, or can be passed as `mpp::mpi::fn<&f>` (an empty functor, no line
// needed). A capturing lambda, std::function or functor with data members is a compile error:
// captures cannot cross machines; pass the data as inputs. An id a rank does not know fails the
// task with RemoteError (it never jumps anywhere); ranks whose registries differ are refused at
// start-up. Inputs and results travel through the codec (<mpp/codec.hpp>).
//
// Scheduling: chunks (chunksize items; 0 = automatic, about four chunks per worker rank) go to
// the least-loaded worker rank, with up to PoolOptions::chunks_per_rank chunks queued at each, so
// uneven tasks keep every rank busy and a rank never idles between chunks. Results are assembled
// in input order (imap_unordered: completion order).
//
// Faults: a task that throws fails only itself, with a RemoteError whose what() names the rank,
// its host and pid. A rank that dies makes Debian's Open MPI abort the whole job (within about a
// second on one host); before it goes, the dying rank prints which rank it is and which task of
// which function it was running. MPI never notices a network partition or a hung task, so set
// PoolOptions::task_timeout: a chunk whose result is not in within task_timeout per item fails
// with WorkerLost ("exceeded task_timeout"), the rank gets no more work, and its other queued
// chunks run elsewhere. At exit, a rank that was given up on gets task_timeout (at least 5 s) to
// come back; after that rank 0 calls MPI_Abort rather than hang in MPI_Finalize.
//
// Fork: MPI does not survive fork(); a child forked from a rank (an mpp::Process, an mpp::Pool
// worker) must not use an mpp::mpi::Pool.
//
// Threads: as mpp::Pool (API.md section 8): every member may be called from any number of threads
// at once, and results and imap ranges consumed from any thread (each object by one thread at a
// time). There is no background thread: of the threads waiting on rank 0, one polls the MPI
// traffic while the others sleep until it delivers their results or hands them the role. All of
// mpp's MPI calls are made under one mutex, so MPI_THREAD_SERIALIZED (what mpp's own MPI_Init
// asks for) suffices. If the program initialized MPI itself below SERIALIZED (SINGLE, FUNNELED),
// the pools may be used from the thread that created the first one only; other threads get
// std::logic_error. A 1-rank job runs the tasks on rank 0 while that mutex is held: other threads'
// calls wait for the task. Tasks running on other ranks are single-threaded (each rank serves one
// chunk at a time).
//
// Memory ordering: everything a task did on its rank is visible in the values get()/map/imap
// return (they are copies that crossed MPI).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "mpp/codec.hpp"
#include "mpp/detail/export.hpp"
#include "mpp/detail/mpi_callable.hpp"
#include "mpp/detail/mpi_core.hpp"
#include "mpp/detail/pool_core/batch.hpp"
#include "mpp/detail/pool_core/front.hpp"
#include "mpp/detail/pool_core/results.hpp"
#include "mpp/detail/pool_core/task.hpp"  // mpp::task_seed(), which works inside MPI tasks too
#include "mpp/errors.hpp"

namespace mpp::mpi {

// Options of an mpp::mpi::Pool.
struct PoolOptions {
  unsigned processes = 0;  // most worker ranks this pool uses; 0 = all (the job size - 1)
  std::optional<std::chrono::milliseconds> task_timeout{};  // per item; see "Faults" above
  std::uint64_t seed = 0;        // base of task_seed(), as in mpp::PoolOptions
  unsigned chunks_per_rank = 2;  // chunks queued at each rank (>= 1)
  bool progress = false;         // map/starmap print one line on stderr when they finish (no bar)
};

// The function `F` as an empty functor: needs no MPP_MPI_REGISTER line (`pool.map(fn<&f>, v)`).
template <auto F>
struct Fn {
  // F(a...).
  template <class... A>
  decltype(auto) operator()(A&&... a) const {
    return std::invoke(F, std::forward<A>(a)...);
  }
};
// `fn<&f>`: the function f as an Fn, to pass to the pool's calls.
template <auto F>
inline constexpr Fn<F> fn{};

// Rank of this process in MPI_COMM_WORLD and the job size. Start MPI if needed (no handshake, no
// serving). Never block; throw std::runtime_error if MPI cannot start.
[[nodiscard]] MPP_API int rank();
[[nodiscard]] MPP_API int size();

// The outcome of map_async/starmap_async/apply_async: mpp::AsyncResult<T>'s interface and
// contract (mpp/detail/pool_core/results.hpp). Move-only; get() hands the value over once (a second
// get() throws std::logic_error).
template <class T>
class [[nodiscard]] AsyncResult : public mpp::detail::BasicAsyncResult<T, detail::MpiTransport> {
 public:
  using mpp::detail::BasicAsyncResult<T, detail::MpiTransport>::BasicAsyncResult;
};

// The lazy input range returned by imap/imap_unordered (mpp::ImapRange<R>'s interface).
// Advancing blocks for the next result; a failed position rethrows its error when dereferenced
// (RemoteError, WorkerLost, or, as one last position, what the input range threw), and
// iteration may go on after it. Dropping the range abandons the rest (results still out are
// discarded).
// Completion order over results of mpp::mpi pools, as mpp::as_completed (<mpp/pool.hpp>): each
// element once, as it becomes ready; mpp::TimeoutError once `timeout` (from this call) passed.
template <class T>
[[nodiscard]] auto as_completed(std::vector<AsyncResult<T>>& results,
                                std::optional<std::chrono::milliseconds> timeout = {}) {
  return mpp::detail::BasicAsCompleted<AsyncResult<T>, T, detail::MpiTransport>(results, timeout);
}

// The lazy range of mpi::Pool::imap / imap_unordered: the same contract as mpp::ImapRange
// (pool.hpp), results coming from the worker ranks.
template <class R>
class [[nodiscard]] ImapRange : public mpp::detail::BasicImapRange<R, detail::MpiTransport> {
 public:
  using mpp::detail::BasicImapRange<R, detail::MpiTransport>::BasicImapRange;
};

// A pool of MPI ranks (Python's multiprocessing.Pool over an MPI job); see the file comment.
class MPP_API Pool : public mpp::detail::PoolFront<Pool> {
 public:
  // All worker ranks. On ranks other than 0: serves and exits the process (see the header
  // comment). Throws std::runtime_error if MPI cannot start, std::logic_error if the ranks'
  // registries differ (they run different programs).
  Pool();
  // At most `processes` worker ranks (0 = all). std::invalid_argument if absurd (> 1 << 20).
  explicit Pool(unsigned processes);
  // std::invalid_argument for bad options (a zero task_timeout, chunks_per_rank 0).
  explicit Pool(PoolOptions options);
  // terminate() unless join() ran. Never throws.
  ~Pool();
  Pool(Pool&&) noexcept = default;
  Pool& operator=(Pool&&) noexcept = default;

  // map, map_async, starmap, starmap_async, imap, imap_unordered, apply, apply_async: see
  // mpp/detail/pool_core/front.hpp (the contract both pools share) and this header's comment.
  // map and starmap print PoolOptions::progress's line.

  // No more submissions. Never throws.
  void close() noexcept;
  // After close(): blocks until every call of this pool completed. The worker ranks stay up for
  // other pools (they stop when rank 0 finalizes). std::logic_error if close() was not called.
  void join();
  // Results not in yet fail with WorkerLost ("pool terminated"); tasks already on a rank run to
  // their end there and their results are dropped. Never throws.
  void terminate() noexcept;

  // Worker ranks this pool uses (0 in a job of one rank: tasks run on rank 0).
  [[nodiscard]] unsigned processes() const noexcept;

 private:
  friend class mpp::detail::PoolFront<Pool>;
  struct State;

  // With PoolOptions::progress: one line on stderr when a blocking call returns normally.
  class ProgressLine {
   public:
    ProgressLine(const Pool& pool, std::int64_t items);
    ~ProgressLine();
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;

   private:
    const Pool& pool_;
    std::int64_t items_;
    std::chrono::steady_clock::time_point start_;
    int exceptions_;
  };

  template <class Fd, class In, class R>
  static constexpr void check_types() {
    static_assert(detail::kCrossesMachines<Fd>,
                  "mpp::mpi::Pool: this callable carries state (a capturing lambda, a "
                  "std::function or a functor with data members) and captures cannot cross "
                  "machines. Pass the data as inputs, and use a function (MPP_MPI_REGISTER(f) "
                  "or mpp::mpi::fn<&f>), a captureless lambda or an empty functor");
    static_assert(mpp::detail::PoolCodable<In>,
                  "mpp::mpi::Pool: the input type cannot travel to another rank (see codec.hpp "
                  "for the types that can, and how to make a type codable)");
    static_assert(std::is_void_v<R> || mpp::detail::PoolCodable<R>,
                  "mpp::mpi::Pool: the result type cannot travel back from another rank (see "
                  "codec.hpp for the types that can, and how to make a type codable)");
  }

  template <class Fd, class In, class R, bool Star>
  void submit(detail::Batch& b, const Fd& f, std::shared_ptr<detail::Batch> owner) {
    b.trampoline = detail::Trampoline<Fd, In, R, Star>::id;
    detail::check_trampoline(b.trampoline);
    if constexpr (detail::kFunctionPointer<Fd>) {
      if (f == nullptr) throw std::invalid_argument("mpp::mpi::Pool: null function pointer");
      b.function = detail::function_id(reinterpret_cast<detail::AnyFn>(f), typeid(Fd).name());
    }
    configure(owner);
    detail::engine_submit(*engine_, std::move(owner));
  }

  template <class Fd, class In, class F>
  auto apply_impl(F& f, In&& args) {
    using R = detail::item_result_t<Fd, In, true>;
    check_types<Fd, In, R>();
    using B = detail::CollectBatch<In, R, std::array<In, 1>, R>;
    require_open();
    auto batch = std::make_shared<B>(std::array<In, 1>{std::move(args)});
    batch->chunksize = 1;
    submit<Fd, In, R, true>(*batch, f, batch);
    return AsyncResult<R>(engine_, std::move(batch));
  }

  template <bool Star, class F, class Range>
  auto map_impl(F&& f, Range&& inputs, std::size_t chunksize) {
    ProgressLine line(*this, detail::range_size(inputs));
    return collect<Star, true>(f, inputs, chunksize).get();
  }
  template <bool Star, class F, class Range>
  auto map_async_impl(F&& f, Range&& inputs, std::size_t chunksize) {
    return collect<Star, false>(f, inputs, chunksize);
  }

  // map's and map_async's batch. Borrow: map() blocks until the call completes, so it can read
  // the caller's range in place.
  template <bool Star, bool Borrow, class F, class Range>
  auto collect(F& f, Range& inputs, std::size_t chunksize) {
    using Fd = std::decay_t<F>;
    using In = std::ranges::range_value_t<Range>;
    using R = detail::item_result_t<Fd, In, Star>;
    check_types<Fd, In, R>();
    using Out = std::conditional_t<std::is_void_v<R>, void, std::vector<R>>;
    mpp::detail::check_chunksize(chunksize, detail::MpiTransport::kChunksizeTooLarge);
    require_open();
    using Src = std::conditional_t<Borrow, Range&, std::vector<In>>;
    using B = detail::CollectBatch<In, R, Src, Out>;
    std::shared_ptr<B> batch;
    std::int64_t n = -1;
    if constexpr (Borrow) {
      n = detail::range_size(inputs);
      batch = std::make_shared<B>(inputs);
    } else {
      std::vector<In> copy = mpp::detail::copy_inputs<In>(inputs);
      n = static_cast<std::int64_t>(copy.size());
      batch = std::make_shared<B>(std::move(copy));
    }
    batch->chunksize =
        mpp::detail::pick_chunksize(chunksize, n, processes(), detail::MpiTransport::kChunks);
    submit<Fd, In, R, Star>(*batch, f, batch);
    return AsyncResult<Out>(engine_, std::move(batch));
  }

  template <bool Ordered, class F, class Range>
  auto imap_impl(F&& f, Range&& inputs, std::size_t chunksize) {
    using Fd = std::decay_t<F>;
    using In = std::ranges::range_value_t<Range>;
    using R = detail::item_result_t<Fd, In, false>;
    check_types<Fd, In, R>();
    using B = detail::ImapBatch<In, R, mpp::detail::imap_source_t<Range>, Ordered>;
    mpp::detail::check_imap_chunksize(chunksize, detail::MpiTransport::kChunksizeTooLarge);
    require_open();
    auto batch =
        std::make_shared<B>(std::forward<Range>(inputs),
                            mpp::detail::imap_window(chunksize, std::max(processes(), 1u)));
    batch->chunksize = static_cast<std::uint32_t>(chunksize);
    submit<Fd, In, R, false>(*batch, f, batch);
    return ImapRange<R>(engine_, std::move(batch));
  }

  // Seed, timeout, rank limit; remembers the call for join() and terminate().
  void configure(const std::shared_ptr<detail::Batch>& b);
  void require_open() const;

  std::shared_ptr<detail::Engine> engine_;
  std::unique_ptr<State> state_;
};

namespace detail {
// What MPP_MPI_REGISTER expands to.
struct Registration {
  template <class R, class... A>
  Registration(const char* name, R (*f)(A...)) noexcept
      : id(register_function(name, typeid(R(*)(A...)).name(), reinterpret_cast<AnyFn>(f))) {}
  std::uint64_t id;
};
}  // namespace detail

}  // namespace mpp::mpi

#define MPP_MPI_DETAIL_CAT2(a, b) a##b
#define MPP_MPI_DETAIL_CAT(a, b) MPP_MPI_DETAIL_CAT2(a, b)
// Registers the function `f` (a name visible here, not overloaded) so that mpp::mpi::Pool can
// send it by its id. Use at namespace scope, once per function, in the program that every rank
// runs: `MPP_MPI_REGISTER(generate_pseudowords);`.
#define MPP_MPI_REGISTER(f)                                                          \
  [[maybe_unused]] static const ::mpp::mpi::detail::Registration MPP_MPI_DETAIL_CAT( \
      mpp_mpi_registration_, __COUNTER__)(#f, &(f))
