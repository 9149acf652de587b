// mpp/pool.hpp: mpp::Pool, a pool of worker processes (Python's multiprocessing.Pool).
//
// What: `Pool pool(4); auto r = pool.map(f, inputs);` runs f on every input in worker processes
// and returns the results in input order. map/map_async/starmap/apply/apply_async/imap/
// imap_unordered, close/join/terminate, initializer, maxtasksperchild, nice, task_timeout and
// per-task seeds (task_seed()) follow API.md section 4.
//
// Lifetime: the workers are started when the Pool is constructed and live until join(),
// terminate() or ~Pool() (which is terminate() unless join() ran: Python's `with Pool() as p`).
// They are reused for every call: no fork per call. How they start is PoolOptions::start_method
// (mpp/start_method.hpp, docs/fork-safety.md): under fork (the default) a zygote, a copy of the
// program forked when the Pool is constructed, forks every worker and every replacement, so none
// is a fork of a program that became multi-threaded later; under forkserver the program's
// forkserver forks them, under spawn each is a fresh execution of the program. Workers die with the
// parent (PDEATHSIG plus a liveness check every 200 ms), so a SIGKILLed or Ctrl-C'd parent leaves
// nothing behind. Every worker that ends is reaped: no zombies.
//
// Fork: a process forked from the pool's owner (mpp::Process, fork()) must not use the owner's
// Pool (the workers are not its children); it can create its own.
//
// Threads: every member of a Pool may be called from any number of threads at once (map,
// map_async, apply, apply_async, starmap, imap, imap_unordered, close, join, terminate, stats,
// processes, worker_pids), and the AsyncResults and imap ranges it hands out may be used from any
// thread, each object by one thread at a time. A thread waiting on one result never holds up
// another thread's submissions or results. There is no background thread: work already handed to
// workers keeps running, and results are collected whenever a thread calls into the pool or waits
// on a result. Of the threads waiting on one pool, one drives it (moves chunks and results,
// checks for crashed workers and task_timeout) while the others sleep until the driver delivers
// their result or hands them the role when its own wait ends; a submission from any thread is
// handed to the workers at once. The pool's state is guarded by one mutex, held for
// microseconds at a time (longer only while a replacement worker is forked, or while join() or
// terminate() reap the workers). Ordering: calls made by one thread are served in the order it
// made them; between threads, in the order they took the mutex. close(), join() and terminate()
// from another thread act on the calls in progress as they would on the caller's own: results
// not in yet fail with WorkerLost after terminate(); map() in another thread completes before
// join() returns. The Pool object itself must outlive every call made on it (destroy it only
// once the other threads' calls returned; the AsyncResults and imap ranges may outlive it).
// PoolOptions::on_progress runs in whichever thread drives, while the mutex is held: calling into
// the same pool or waiting on its results from there throws std::logic_error (close(),
// terminate(), stats() and worker_pids() are allowed). Workers are forked with the mutex held by
// the forking thread; a worker never touches it (nor does any mpp code in a child of a fork,
// which must not use its parent's pools). A worker whose forking thread exits is not killed by
// that (the parent-death signal follows threads; mpp's worker checks that the parent process is
// really gone).
//
// Callables: functions, function pointers and empty lambdas/functors (no captures) run on the
// persistent workers: the workers run this program, so the code of the callable is already there
// and only its address crosses (under fork) or its ids (under forkserver and spawn, whose workers
// are fresh executions: the trampoline's registry id and the function's place in its module,
// checked by the worker; an id it does not know fails the task with RemoteError). A callable WITH
// state (a lambda capturing by value or by reference, a std::function, a functor with members) must
// see the caller's state as of the call, so that call forks its own temporary workers
// (min(processes, chunks) of them) which see the whole address space as it is at that moment
// through copy-on-write, and are reaped when the call completes. That costs one fork (and reap) per
// temporary worker: measured 0.2 ms per apply() with a small parent on the reference VM, growing
// with the parent's memory (fork copies its page tables) and with the initializer, against ~8 us on
// the persistent workers. Prefer captureless callables with the data passed as inputs for hot
// loops. Under forkserver and spawn a callable with state cannot run (its state is not in a fresh
// execution): the call throws std::invalid_argument naming the start method, and so does a Pool
// whose initializer has state. Inputs and results travel through the codec (see <mpp/codec.hpp>); a
// type that cannot travel is a compile error.
//
// Transport: per-worker single-producer/single-consumer shared-memory rings (tasks in, results
// out) and futex wake-ups that cost a system call only when the other side is asleep; numbers
// cross as raw bytes (a chunk of ints is one memcpy), other types through the codec. Each worker
// holds at most two chunks (one running, one queued); the least-loaded worker gets the next
// chunk, which balances uneven tasks. chunksize 0 picks ceil(n / (16 * processes)) (Python: 4)
// (256 when the input's length is unknown).
//
// Faults: a worker that dies (signal, _exit, OOM kill) fails exactly the item it was decoding or
// running with WorkerLost (pid, input index, signal): a worker notes the index before it decodes
// the item's input, so an input whose decoder crashes is the one blamed. That item is never sent
// again (its bytes are cut from the re-sent chunk); the other items the worker held run again on a
// replacement worker (items of its chunk that had already completed before the crash are re-run:
// their results died with the worker). A worker that dies between items (while sending a chunk's
// results) fails no item: the chunk runs again, up to 3 times, then its items fail with
// WorkerLost. A task running longer than task_timeout gets its worker SIGKILLed and fails with
// WorkerLost ("exceeded task_timeout"). Nothing hangs: a crash is noticed within ~10 ms while the
// parent waits.
//
// A task that throws fails only itself with RemoteError. That includes `throw mpp::SystemExit{N}`:
// in a pool task it does not end the worker, the item fails with RemoteError (type_name()
// "mpp::SystemExit", what() containing "exit code N") and the worker goes on serving. (Python's
// Pool catches only Exception: a SystemExit ends that worker process, the pool starts another, and
// the task's result never arrives, so map() blocks forever.) An input whose decoder throws in the
// worker fails with RemoteError, and so do the inputs after it in its chunk (they cannot be
// located without decoding it). A result whose decoder throws in the parent fails its position
// with that exception (map: thrown as is); the results after it in its chunk cannot be located
// either and fail with SerializationError; every position still gets exactly one outcome
// (chunksize 1 confines such a failure to its own item).
//
// Cancel: AsyncResult::cancel() and ImapRange::cancel() (API.md section 9; Python's
// Future.cancel(), but running tasks are stopped too, like pebble). cancel() never blocks and
// returns true unless the call had completed already (a result that is back counts: cancel()
// first collects what has arrived). After true the call is finished at once: get() throws
// mpp::CancelledError, an imap's next position throws it and the range ends. What happens to the
// call's chunks: one still in the parent is dropped; one waiting in a worker's ring is skipped by
// that worker (it never runs); one running has its worker sent SIGTERM (a task's own SIGTERM
// handler may clean up), then SIGKILL if it is still alive after a short grace (docs/design.md,
// "Cancel", has the grace and the measurements), and the worker is replaced. The chunks of other
// calls that worker held are re-sent to other workers once it is dead, unless it finished them
// first: nothing of theirs is lost or returned twice (side effects of a chunk the worker had just
// begun may repeat, as after a crash). Noticing the death, the SIGKILL and the replacement happen
// while the parent drives the pool (any wait, get, map or later call), which looks for the death
// far more often than usual while a worker is being stopped. Pool::stats() counts such restarts
// as `cancels`. A callable with state runs on workers forked for its call: those are stopped the
// same way and reaped by get(). Dropping an imap range before its end cancels the rest of its
// input without stopping what already runs (at most one chunk per worker, one item with the
// default chunksize): those finish and their results are discarded, so a `break` out of a loop
// does not cost a restart. Dropping an AsyncResult does not cancel (Python's neither): its work
// runs, the result is discarded.
//
// Memory ordering: results handed back by get()/map/imap happen-after everything the task did in
// its worker (the rings publish with release/acquire).
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
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "mpp/detail/export.hpp"
#include "mpp/detail/pool_core/batch.hpp"
#include "mpp/detail/pool_core/front.hpp"
#include "mpp/detail/pool_core/results.hpp"
#include "mpp/detail/pool_core/task.hpp"  // mpp::task_seed()
#include "mpp/detail/pool_engine.hpp"
#include "mpp/errors.hpp"
#include "mpp/start_method.hpp"

namespace mpp {

// What a progress callback sees. Called in the parent, at most about ten times a second and once
// more when the call finishes.
struct PoolProgress {
  std::int64_t done = 0;    // items finished (successfully or not)
  std::int64_t total = -1;  // items in the input, -1 while unknown
  // Time since the call started.
  std::chrono::steady_clock::duration elapsed{};
  bool finished = false;  // the last call for this map/imap
};

// What one worker slot of a Pool has done (Pool::stats()). A pool has `processes` slots; when a
// slot's process is replaced (it crashed, ran past task_timeout, was recycled, or was stopped by
// a cancel()), the slot keeps counting across its processes.
struct PoolWorkerStats {
  pid_t pid = 0;                     // the slot's current process (0: none, e.g. after terminate)
  std::uint64_t tasks_done = 0;      // items whose result (or error) came back from this slot
  std::chrono::nanoseconds busy{0};  // time its processes spent running chunks
  std::uint64_t restarts = 0;        // processes forked into the slot after its first
  std::uint64_t crashes = 0;         // restarts because the process died while it had work
  std::uint64_t timeouts = 0;        // restarts because a task ran past task_timeout
  std::uint64_t recycled = 0;        // restarts for maxtasksperchild or max_memory_per_child
  std::uint64_t cancels = 0;         // restarts because cancel() stopped the task it ran
  std::size_t peak_rss = 0;          // bytes: peak resident memory of the current process
                                     // (VmHWM), 0 when it cannot be read
};
// What a Pool has done (Pool::stats()): per slot, and the sums.
struct PoolStats {
  std::vector<PoolWorkerStats> workers;  // one per slot, in slot order
  std::uint64_t tasks_done = 0;          // sums over the slots
  std::uint64_t restarts = 0;            // a sum over the slots too
};

// PoolOptions::initializer: a std::function<void()> that also remembers, when it is made from a
// function, a function pointer or a captureless lambda (or a std::function holding a function
// pointer), how a worker that is not a fork of the program (StartMethod::forkserver, spawn) can
// rebuild it: by the ids of pool_core/callable.hpp. Assign to it as to a std::function.
class PoolInitializer : public std::function<void()> {
 public:
  PoolInitializer() noexcept = default;
  PoolInitializer(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor)
  // From any callable taking no arguments, as std::function; a stateless one is also
  // remembered by id for forkserver and spawn workers.
  template <class F>
  requires(!std::is_same_v<std::decay_t<F>, PoolInitializer> &&
           std::is_invocable_v<std::decay_t<F>&>)
      PoolInitializer(F&& f)  // NOLINT(google-explicit-constructor): converts like std::function
      : std::function<void()>(std::forward<F>(f)) {
    using Fd = std::decay_t<F>;
    if constexpr (detail::kStateless<Fd>) {
      id_ = detail::InitTrampoline<Fd>::id;
      if constexpr (detail::kFunctionPointer<Fd>) {
        fn_ = reinterpret_cast<detail::AnyFn>(static_cast<Fd>(f));
      }
    } else if constexpr (std::is_same_v<Fd, std::function<void()>>) {
      if (auto* p = f.template target<void (*)()>(); p != nullptr && *p != nullptr) {
        // Spelled dependent on F, so that only code converting a std::function instantiates
        // (and registers) it, never the library itself (no guard variable in libmpp).
        id_ = detail::InitTrampoline<typename detail::DependentFn<Fd>::type>::id;
        fn_ = reinterpret_cast<detail::AnyFn>(*p);
      }
    }
  }
  // For the engine: the initializer's trampoline id (0: it has state, or is empty) and its
  // function pointer (if it is one).
  [[nodiscard]] std::uint64_t stateless_id() const noexcept { return *this ? id_ : 0; }
  [[nodiscard]] detail::AnyFn function() const noexcept { return fn_; }

 private:
  std::uint64_t id_ = 0;
  detail::AnyFn fn_ = nullptr;
};

// Options of a Pool (designated initializers: `PoolOptions{.processes = 4, .nice = 10}`).
struct PoolOptions {
  unsigned processes = 0;     // 0 = cpu_count()
  std::optional<int> nice{};  // niceness increment for every worker
  // Runs once in each worker when it starts. If it throws, the pool is broken: every outstanding
  // and later call fails with that RemoteError (rather than Python's endless respawning). Under
  // forkserver and spawn it must be a function, a function pointer or a captureless lambda.
  PoolInitializer initializer{};
  std::size_t maxtasksperchild = 0;  // 0 = unlimited; else chunks per worker (Python counts so)
  // A task running longer is killed (SIGKILL) and fails with WorkerLost; checked while the parent
  // waits on the pool (map, get, imap...), every min(10 ms, timeout / 4).
  std::optional<std::chrono::milliseconds> task_timeout{};
  std::uint64_t seed = 0;  // base of task_seed()
  bool progress = false;   // map/imap draw a progress bar on stderr (a final line if not a tty)
  // Custom progress for map/imap. Runs in whichever thread drives the pool, with its mutex held
  // (see "Threads"): it must not call into the same pool (std::logic_error) except close(),
  // terminate(), stats(), worker_pids().
  std::function<void(const PoolProgress&)> on_progress{};
  // Bytes of private memory each worker may allocate beyond what it had when it started
  // (RLIMIT_DATA): a task that needs more gets std::bad_alloc (RemoteError "std::bad_alloc" in
  // the parent, the worker stays), never the machine's OOM killer. Under AddressSanitizer the
  // sanitizer's allocator aborts instead: the worker is lost (WorkerLost) and replaced.
  std::optional<std::size_t> memory_limit{};
  // Between chunks, a worker whose resident memory (RSS) grew past this many bytes finishes the
  // chunk, hands back what it had not started, and is replaced (loky, Celery
  // max_memory_per_child).
  std::optional<std::size_t> max_memory_per_child{};
  std::optional<int> ionice{};  // best-effort I/O priority 0 (first) .. 7 (last) of every worker
  // How the workers are started (mpp/start_method.hpp); nullopt = get_start_method().
  std::optional<StartMethod> start_method{};
};

// The outcome of map_async/apply_async (detail/pool_core/results.hpp has the whole contract).
// Move-only; get() hands the value over once (a second get() throws std::logic_error). Waiting on
// it drives the pool (see "Threads" above). cancel() (never blocks; see "Cancel" above): true if
// the call will not complete normally, then get() throws mpp::CancelledError; false if it had
// completed. cancelled(): cancel() returned true.
template <class T>
class [[nodiscard]] AsyncResult : public detail::BasicAsyncResult<T, detail::LocalTransport> {
 public:
  using detail::BasicAsyncResult<T, detail::LocalTransport>::BasicAsyncResult;
};

// Completion order over results handed out by one pool (Python's concurrent.futures.as_completed):
// an input range of AsyncResult<T>&, yielding each element of `results` once, as it becomes ready
// (those ready already first, in vector order). Advancing blocks (it drives the pool as get()
// does, sleeping on the pool's wake-up, never polling) and throws mpp::TimeoutError once
// `timeout`, counted from this call, has passed with no further result ready; advancing again
// retries. Task errors are not thrown: get() on the yielded result rethrows them. Throws
// std::invalid_argument at once for an empty (moved-from) result. `results` must keep its size
// while the range is used, and outlive it. Results of callables with state run on workers of
// their own and results of different pools are waited on one pool at a time, 1 ms each in turn.
// Each step scans the results not yet yielded: O(n) per result. From any thread, like the results.
template <class T>
[[nodiscard]] auto as_completed(std::vector<AsyncResult<T>>& results,
                                std::optional<std::chrono::milliseconds> timeout = {}) {
  return detail::BasicAsCompleted<AsyncResult<T>, T, detail::LocalTransport>(results, timeout);
}

// The lazy range returned by imap/imap_unordered: an input range of R. Advancing blocks for the
// next result. A position whose task failed (or where the input range threw) rethrows that error
// when dereferenced; iteration can go on past it (`++it`), like calling next() again in Python.
// Dropping the range before its end cancels the rest (nothing more starts; chunks already running
// finish, their results are discarded); cancel() also stops those (see "Cancel" above) and makes
// the next position throw mpp::CancelledError.
template <class R>
class [[nodiscard]] ImapRange : public detail::BasicImapRange<R, detail::LocalTransport> {
 public:
  using detail::BasicImapRange<R, detail::LocalTransport>::BasicImapRange;
};

// A pool of worker processes (Python's multiprocessing.Pool); see the file comment.
class MPP_API Pool : public detail::PoolFront<Pool> {
 public:
  // cpu_count() workers. Throws std::system_error ("cannot fork worker") if the OS refuses,
  // std::logic_error under forkserver or spawn when main() did not call mpp::init.
  Pool();
  // std::invalid_argument if processes is absurd (> 1024, e.g. a negative number converted).
  explicit Pool(unsigned processes);
  // std::invalid_argument for bad options (processes > 1024, nice outside [-40, 40], a zero
  // task_timeout).
  explicit Pool(PoolOptions options);
  Pool(Pool&&) noexcept = default;
  Pool& operator=(Pool&&) noexcept = default;
  // terminate() unless join() ran. Never throws.
  ~Pool();

  // map, map_async, starmap, starmap_async, imap, imap_unordered, apply, apply_async: see
  // detail/pool_core/front.hpp (the contract both pools share) and this header's comment.

  // No more submissions; workers exit once the queued work is done (see join()). Never throws.
  void close() noexcept;
  // After close(): blocks until all submitted work is done and the workers exited and were
  // reaped. An imap still being iterated gets no more work: its remaining positions fail with
  // WorkerLost. std::logic_error if close() was not called. From several threads at once: each
  // returns once the pool is joined.
  void join();
  // Kills the workers now (SIGKILL) and reaps them; results not yet in fail with WorkerLost (also
  // those other threads are waiting on: they wake up). Returns quickly whatever is queued. A
  // no-op after join(). Never throws.
  void terminate() noexcept;

  // Number of workers. Never blocks, never throws.
  [[nodiscard]] unsigned processes() const noexcept;
  // Pids of the current workers (replacements included). For diagnostics and tests. Never blocks.
  [[nodiscard]] std::vector<pid_t> worker_pids() const;
  // Per-slot counters (PoolStats above): a snapshot, taken without waiting (it reads each live
  // worker's /proc/PID/status for peak_rss: a few microseconds per worker). Counters are updated
  // as the parent handles results, that is while a call waits on the pool.
  [[nodiscard]] PoolStats stats() const;

 private:
  friend class detail::PoolFront<Pool>;

  template <class In, class R>
  static constexpr void check_codable() {
    static_assert(detail::PoolCodable<In>,
                  "mpp::Pool: the input type cannot travel to a worker process (see codec.hpp "
                  "for the types that can, and how to make a type codable)");
    static_assert(std::is_void_v<R> || detail::PoolCodable<R>,
                  "mpp::Pool: the result type cannot travel back from a worker process (see "
                  "codec.hpp for the types that can, and how to make a type codable)");
  }

  // Sets up the batch, picks the engine (the pool's, or a fresh one for callables with state)
  // and submits. Returns the engine that runs it.
  template <class Fd, class In, class R, bool Star, class F>
  std::shared_ptr<detail::Engine> submit(
      detail::Batch<detail::LocalTransport>& b, F& f,
      std::shared_ptr<detail::Batch<detail::LocalTransport>> owner, std::int64_t chunks) {
    require_open();
    detail::setup_batch<Fd, In, R, Star>(b, f);
    std::shared_ptr<detail::Engine> e = engine_;
    if constexpr (!detail::kStateless<Fd>) {
      // Workers that see the caller's state as of now (see the header comment for the cost);
      // only forks can (std::invalid_argument under forkserver and spawn).
      detail::engine_check_stateful(*engine_, typeid(Fd).name());
      unsigned n = detail::engine_workers(*engine_);
      if (chunks >= 0 && chunks < static_cast<std::int64_t>(n)) {
        n = static_cast<unsigned>(std::max<std::int64_t>(chunks, 1));
      }
      e = detail::make_engine(*options_, n, true);
    }
    detail::engine_submit(*e, std::move(owner));
    return e;
  }

  template <class Fd, class In, class F>
  auto apply_impl(F& f, In&& args) {
    using R = detail::item_result_t<Fd, In, true>;
    check_codable<In, R>();
    using B = detail::CollectBatch<detail::LocalTransport, In, R, std::array<In, 1>, R>;
    auto batch = std::make_shared<B>(std::array<In, 1>{std::move(args)});
    batch->chunksize = 1;
    batch->total = 1;
    return AsyncResult<R>(submit<Fd, In, R, true>(*batch, f, batch, 1), batch,
                          !detail::kStateless<Fd>);
  }

  template <bool Star, class F, class Range>
  auto map_impl(F&& f, Range&& inputs, std::size_t chunksize) {
    using Fd = std::decay_t<F>;
    using In = std::ranges::range_value_t<Range>;
    using R = detail::item_result_t<Fd, In, Star>;
    check_codable<In, R>();
    using Out = std::conditional_t<std::is_void_v<R>, void, std::vector<R>>;
    using Src = std::remove_reference_t<Range>&;
    using B = detail::CollectBatch<detail::LocalTransport, In, R, Src, Out>;
    detail::check_chunksize(chunksize, detail::LocalTransport::kChunksizeTooLarge);
    auto batch = std::make_shared<B>(inputs);
    const std::int64_t n = detail::range_size(inputs);
    batch->total = n;
    batch->progress.show = true;
    batch->chunksize =
        detail::pick_chunksize(chunksize, n, processes(), detail::LocalTransport::kChunks);
    const std::int64_t chunks = n < 0 ? -1 : (n + batch->chunksize - 1) / batch->chunksize;
    auto e = submit<Fd, In, R, Star>(*batch, f, batch, chunks);
    auto* b = batch.get();
    try {
      detail::engine_wait(*e, [b] { return b->finished(); });
    } catch (...) {
      const auto lk = detail::engine_lock(*e);
      b->abandoned = true;
      b->exhausted = true;
      throw;
    }
    if (e != engine_) detail::LocalTransport::release(*e);
    const auto lk = detail::engine_lock(*e);
    return batch->take();
  }

  template <bool Star, class F, class Range>
  auto map_async_impl(F&& f, Range&& inputs, std::size_t chunksize) {
    using Fd = std::decay_t<F>;
    using In = std::ranges::range_value_t<Range>;
    using R = detail::item_result_t<Fd, In, Star>;
    check_codable<In, R>();
    using Out = std::conditional_t<std::is_void_v<R>, void, std::vector<R>>;
    using B = detail::CollectBatch<detail::LocalTransport, In, R, std::vector<In>, Out>;
    detail::check_chunksize(chunksize, detail::LocalTransport::kChunksizeTooLarge);
    require_open();
    std::vector<In> copy = detail::copy_inputs<In>(inputs);
    const auto n = static_cast<std::int64_t>(copy.size());
    auto batch = std::make_shared<B>(std::move(copy));
    batch->total = n;
    batch->chunksize =
        detail::pick_chunksize(chunksize, n, processes(), detail::LocalTransport::kChunks);
    const std::int64_t chunks = (n + batch->chunksize - 1) / batch->chunksize;
    auto e = submit<Fd, In, R, Star>(*batch, f, batch, chunks);
    return AsyncResult<Out>(std::move(e), batch, e != engine_);
  }

  template <bool Ordered, class F, class Range>
  auto imap_impl(F&& f, Range&& inputs, std::size_t chunksize) {
    using Fd = std::decay_t<F>;
    using In = std::ranges::range_value_t<Range>;
    using R = detail::item_result_t<Fd, In, false>;
    check_codable<In, R>();
    using B =
        detail::ImapBatch<detail::LocalTransport, In, R, detail::imap_source_t<Range>, Ordered>;
    detail::check_imap_chunksize(chunksize, detail::LocalTransport::kChunksizeTooLarge);
    const std::int64_t n = detail::range_size(inputs);
    auto batch = std::make_shared<B>(std::forward<Range>(inputs),
                                     detail::imap_window(chunksize, processes()));
    batch->chunksize = static_cast<std::uint32_t>(chunksize);
    batch->total = n;
    batch->progress.show = true;
    const std::int64_t chunks = n < 0 ? -1 : (n + batch->chunksize - 1) / batch->chunksize;
    auto e = submit<Fd, In, R, false>(*batch, f, batch, chunks);
    return ImapRange<R>(e, batch, e != engine_);
  }

  void require_open() const;

  std::shared_ptr<PoolOptions> options_;
  std::shared_ptr<detail::Engine> engine_;
};

}  // namespace mpp
