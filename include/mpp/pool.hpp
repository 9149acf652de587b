// mpp/pool.hpp: mpp::Pool, a pool of worker processes (Python's multiprocessing.Pool).
//
// What: `Pool pool(4); auto r = pool.map(f, inputs);` runs f on every input in worker processes
// and returns the results in input order. map/map_async/starmap/apply/apply_async/imap/
// imap_unordered, close/join/terminate, initializer, maxtasksperchild, nice, task_timeout and
// per-task seeds (task_seed()) follow API.md section 4.
//
// Lifetime: the workers are forked when the Pool is constructed and live until join(),
// terminate() or ~Pool() (which is terminate() unless join() ran: Python's `with Pool() as p`).
// They are reused for every call: no fork per call. Workers die with the parent (PDEATHSIG plus a
// liveness check every 200 ms), so a SIGKILLed or Ctrl-C'd parent leaves nothing behind. Every
// worker that ends is reaped: no zombies.
//
// Fork: a process forked from the pool's owner (mpp::Process, fork()) must not use the owner's
// Pool (the workers are not its children); it can create its own.
//
// Threads: a Pool, and the AsyncResults and imap ranges it hands out, are driven by the thread
// that calls them; use one pool from one thread at a time. There is no background thread: work
// already handed to workers keeps running, and results are collected whenever you call into the
// pool or wait on a result (a get() on any result advances all of them).
//
// Callables: functions, function pointers and empty lambdas/functors (no captures) run on the
// persistent workers: the workers are forks of this program, so the code of the callable is
// already there and only its address crosses. A callable WITH state (a lambda capturing by value
// or by reference, a std::function, a functor with members) must see the caller's state as of the
// call, so that call forks its own temporary workers (min(processes, chunks) of them) which see
// the whole address space as it is at that moment through copy-on-write, and are reaped when the
// call completes. That costs one fork (and reap) per temporary worker: measured 0.2 ms per
// apply() with a small parent on the reference VM, growing with the parent's memory (fork copies
// its page tables) and with the initializer, against ~8 us on the persistent workers. Prefer
// captureless callables with the data passed as inputs for hot loops. Inputs and results travel
// through the codec (see <mpp/codec.hpp>); a type that cannot travel is a compile error.
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
// Memory ordering: results handed back by get()/map/imap happen-after everything the task did in
// its worker (the rings publish with release/acquire).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mpp/detail/pool_codec.hpp"
#include "mpp/detail/pool_engine.hpp"
#include "mpp/detail/results.hpp"
#include "mpp/errors.hpp"

namespace mpp {

// What a progress callback sees. Called in the parent, at most about ten times a second and once
// more when the call finishes.
struct PoolProgress {
  std::int64_t done = 0;    // items finished (successfully or not)
  std::int64_t total = -1;  // items in the input, -1 while unknown
  std::chrono::steady_clock::duration elapsed{};
  bool finished = false;  // the last call for this map/imap
};

struct PoolOptions {
  unsigned processes = 0;     // 0 = cpu_count()
  std::optional<int> nice{};  // niceness increment for every worker
  // Runs once in each worker when it starts. If it throws, the pool is broken: every outstanding
  // and later call fails with that RemoteError (rather than Python's endless respawning).
  std::function<void()> initializer{};
  std::size_t maxtasksperchild = 0;  // 0 = unlimited; else chunks per worker (Python counts so)
  // A task running longer is killed (SIGKILL) and fails with WorkerLost; checked while the parent
  // waits on the pool (map, get, imap...), every min(10 ms, timeout / 4).
  std::optional<std::chrono::milliseconds> task_timeout{};
  std::uint64_t seed = 0;  // base of task_seed()
  bool progress = false;   // map/imap draw a progress bar on stderr (a final line if not a tty)
  std::function<void(const PoolProgress&)> on_progress{};  // custom progress for map/imap
};

// Inside a pool task: a seed derived from PoolOptions::seed and the task's input index (the same
// for any number of workers). Outside a task: derived from the seed 0 and index -1. Never throws.
[[nodiscard]] inline std::uint64_t task_seed() noexcept {
  return detail::mix_seed(detail::t_seed_base, detail::t_task_index);
}

namespace detail {

// Callables that can run on persistent workers: their whole state is (at most) a code address.
template <class Fd>
inline constexpr bool kStateless = std::is_trivially_copyable_v<Fd> &&
                                   sizeof(Fd) <= kMaxFunctionState &&
                                   (std::is_empty_v<Fd> ||
                                    (std::is_pointer_v<Fd> &&
                                     std::is_function_v<std::remove_pointer_t<Fd>>));

template <class Fd, class In, bool Star>
decltype(auto) invoke_item(Fd& f, In& x) {
  if constexpr (Star) {
    return std::apply(f, x);
  } else {
    return std::invoke(f, x);
  }
}

template <class Fd, class In, bool Star>
using item_result_t =
    std::decay_t<decltype(invoke_item<Fd, In, Star>(std::declval<Fd&>(), std::declval<In&>()))>;

// Numbers and enums cross as their raw bytes: both ends are this same pool code in the same
// program image, so no portable encoding is needed, and a chunk of them is one memcpy.
template <class T>
inline constexpr bool kRaw = std::is_arithmetic_v<T> || std::is_enum_v<T>;

template <class T>
void append_encoded(ByteBuffer& out, const T& v) {
  if constexpr (kRaw<T>) {
    std::memcpy(out.extend(sizeof(T)), &v, sizeof(T));
  } else if (const std::optional<std::size_t> n = pool_codec::try_encode_to(out.spare(), v)) {
    // The buffer is reused from chunk to chunk, so its capacity usually suffices: one pass over
    // a vector of strings instead of encoded_size's and encode_to's two.
    out.commit(*n);
  } else {
    pool_codec::encode_to(out.extend(pool_codec::encoded_size(v)), v);
  }
}

template <class T>
T decode_one(std::span<const std::byte>& in) {
  if constexpr (kRaw<T>) {
    if (in.size() < sizeof(T)) throw SerializationError("truncated pool message");
    T v;
    std::memcpy(&v, in.data(), sizeof(T));
    in = in.subspan(sizeof(T));
    return v;
  } else {
    return pool_codec::decode_prefix<T>(in);
  }
}

template <class Fd, class In, class R, bool Star>
void run_items(Fd& f, ChunkCall& c) {
  std::span<const std::byte> in{c.in, c.in_len};
  t_seed_base = c.seed;
  if constexpr (kRaw<R>) c.out->reserve(c.out->size() + c.count * sizeof(R));
  std::uint32_t next_skip = 0;
  for (std::uint32_t i = 0; i < c.count; ++i) {
    const std::int64_t idx = c.first_index + static_cast<std::int64_t>(i);
    if (next_skip < c.nskip && c.skip[next_skip] == idx) {
      // A worker died on it before: the parent failed it and left its bytes out of the chunk.
      ++next_skip;
      continue;
    }
    // Say which item this is BEFORE decoding it: if its decoder crashes the worker, the parent
    // blames this index, leaves it out when it re-sends the chunk, and re-runs the others. One
    // relaxed store (the parent reads it once the worker is dead or to time a task), no syscall.
    c.current->store(idx, std::memory_order_relaxed);
    bool decoded = false;
    try {
      In x = decode_one<In>(in);
      decoded = true;
      t_task_index = idx;
      if constexpr (std::is_void_v<R>) {
        invoke_item<Fd, In, Star>(f, x);
      } else {
        append_encoded(*c.out, static_cast<const R&>(invoke_item<Fd, In, Star>(f, x)));
      }
    } catch (...) {
      if (decoded) {
        record_failure(c, i);
      } else {
        // The rest of the chunk cannot be located without this item: fail it all.
        for (std::uint32_t j = i; j < c.count; ++j) {
          const std::int64_t jdx = c.first_index + static_cast<std::int64_t>(j);
          if (next_skip < c.nskip && c.skip[next_skip] == jdx) {
            ++next_skip;
            continue;
          }
          record_failure(c, j);
        }
        return;
      }
    }
  }
}

// The trampoline whose address travels to the workers.
template <class Fd, class In, class R, bool Star>
void run_chunk(ChunkCall& c) noexcept {
  try {
    if constexpr (kStateless<Fd>) {
      std::array<unsigned char, sizeof(Fd)> bytes{};
      std::memcpy(bytes.data(), c.fstate, sizeof(Fd));
      Fd f = std::bit_cast<Fd>(bytes);
      run_items<Fd, In, R, Star>(f, c);
    } else {
      // A worker forked for this call: the callable is where it was in the parent at the fork.
      run_items<Fd, In, R, Star>(*reinterpret_cast<Fd*>(c.context), c);
    }
  } catch (...) {
    // Only allocation failures get here (per-item errors are caught inside); the chunk's missing
    // items are reported by the parent as lost.
  }
}

// Bytes every encoded input takes when that is the same for all values of In (numbers, tuples of
// them...), else 0: then produce() records where each input ends (see Batch::produce).
template <class In>
inline constexpr std::uint64_t kInputSize = [] {
  if constexpr (kRaw<In>) {
    return std::uint64_t{sizeof(In)};
  } else {
    // The codec's own static size fact (a fixed-size value always encodes to that many bytes).
    return std::uint64_t{::mpp::codec::detail::fixed_size<In>().value_or(0)};
  }
}();

template <class Fd, class In, class R, bool Star, class F>
void setup_batch(Batch& b, F& f) {
  b.fn = &run_chunk<Fd, In, R, Star>;
  b.input_size = kInputSize<In>;
  if constexpr (kStateless<Fd>) {
    const Fd copy = f;  // a function reference decays to its pointer here
    std::memcpy(b.fstate, static_cast<const void*>(std::addressof(copy)), sizeof(Fd));
  } else {
    b.context = reinterpret_cast<std::uintptr_t>(std::addressof(f));
  }
}

// Produces chunks from a range. `Src` is a reference type (the caller's range, alive for the
// call) or an owned range.
template <class Src, class In>
class RangeSource {
 public:
  template <class Arg>
  explicit RangeSource(Arg&& r)
      : range_(std::forward<Arg>(r)),
        it_(std::ranges::begin(range_)),
        end_(std::ranges::end(range_)) {}
  RangeSource(const RangeSource&) = delete;
  RangeSource& operator=(const RangeSource&) = delete;

  // Appends up to `chunksize` encoded inputs to `payload`; for inputs of varying size also where
  // each one ends (relative to the first one's start) to `ends`.
  std::uint32_t produce(ByteBuffer& payload, std::uint32_t chunksize,
                        std::vector<std::uint64_t>& ends) {
    using Range = std::remove_reference_t<Src>;
    if constexpr (kRaw<In> && std::ranges::contiguous_range<Range> &&
                  std::is_same_v<std::ranges::range_value_t<Range>, In> &&
                  std::ranges::sized_range<Range>) {
      // A vector of numbers: the chunk is one copy.
      const auto left = static_cast<std::size_t>(end_ - it_);
      const std::size_t n = std::min<std::size_t>(left, chunksize);
      payload.append(std::to_address(it_), n * sizeof(In));
      it_ += static_cast<std::ptrdiff_t>(n);
      return static_cast<std::uint32_t>(n);
    }
    const std::size_t base = payload.size();
    std::uint32_t n = 0;
    while (n < chunksize && it_ != end_) {
      const In& x = *it_;
      append_encoded(payload, x);
      // Only used if a worker dies on one of these inputs: the re-sent chunk then leaves that
      // input's bytes out, so that no worker decodes it again (its decoder may be what crashed).
      if constexpr (kInputSize<In> == 0) ends.push_back(payload.size() - base);
      ++it_;
      ++n;
    }
    return n;
  }

 private:
  Src range_;
  std::ranges::iterator_t<std::remove_reference_t<Src>> it_;
  std::ranges::sentinel_t<std::remove_reference_t<Src>> end_;
};

// A Delivery as deliver_chunk (detail/results.hpp) sees it.
inline ChunkOutcome outcome_of(const Delivery& d) noexcept {
  return ChunkOutcome{d.first_index, d.count, d.skipped};
}

// The failures a worker reported in a Delivery, as deliver_chunk asks for them: RemoteErrors
// naming the worker's pid and the input index.
class DeliveryFailures {
 public:
  explicit DeliveryFailures(const Delivery& d) noexcept : d_(d) {
    if (d.nerrors == 0) return;
    try {
      records_ = decode_failures(d);
    } catch (...) {
      broken_ = std::current_exception();  // malformed records: no position can be trusted
    }
  }
  [[nodiscard]] std::exception_ptr broken() const noexcept { return broken_; }
  [[nodiscard]] std::uint32_t next_pos() const noexcept {
    return next_ < records_.size() ? records_[next_].pos : UINT32_MAX;
  }
  std::exception_ptr take() {
    RemoteFailure& f = records_[next_++];
    // A second record for the same position (a confused worker) must not hide the later ones.
    while (next_ < records_.size() && records_[next_].pos <= f.pos) ++next_;
    return std::make_exception_ptr(RemoteError(std::move(f.type_name), std::move(f.message), d_.pid,
                                               d_.first_index + static_cast<std::int64_t>(f.pos)));
  }

 private:
  const Delivery& d_;
  std::vector<RemoteFailure> records_;
  std::size_t next_ = 0;
  std::exception_ptr broken_;
};

template <class T>
class ResultBatch : public Batch {
 public:
  // Moves the outcome out, or rethrows the first error. Only after finished().
  virtual T take() = 0;
  [[nodiscard]] virtual bool has_error() const noexcept = 0;
};

// map, map_async, starmap, apply, apply_async: all results are kept until the call completes.
// Out is std::vector<R> (map), R (apply) or void.
template <class Fd, class In, class R, bool Star, class Src, class Out>
class CollectBatch final : public ResultBatch<Out> {
 public:
  template <class Arg>
  explicit CollectBatch(Arg&& r) : source_(std::forward<Arg>(r)) {}

  std::uint32_t produce(ByteBuffer& payload, std::int64_t& first_index,
                        std::vector<std::uint64_t>& ends) override {
    first_index = next_;
    const std::uint32_t n = source_.produce(payload, this->chunksize, ends);
    next_ += n;
    results_.resize(next_);
    return n;
  }

  void deliver(const Delivery& d) noexcept override {
    if constexpr (kRaw<R>) {
      if (d.nerrors == 0 && d.skipped.empty() && d.results.size() == d.count * sizeof(R)) {
        // The common case for numbers: the whole chunk is one copy.
        std::memcpy(results_.values().data() + d.first_index, d.results.data(), d.results.size());
        return;
      }
    }
    std::span<const std::byte> in = d.results;
    deliver_chunk(results_, outcome_of(d), DeliveryFailures(d), [&] {
      if constexpr (!std::is_void_v<R>) return decode_one<R>(in);
    });
  }

  void fail(std::int64_t index, std::exception_ptr error) noexcept override {
    results_.set_error(index, std::move(error));
  }

  [[nodiscard]] bool has_error() const noexcept override {
    return this->batch_error != nullptr || results_.has_error();
  }

  Out take() override { return results_.take(this->batch_error, "pool result already retrieved"); }

 private:
  RangeSource<Src, In> source_;
  std::int64_t next_ = 0;
  CollectedResults<R, Out> results_;
};

// imap / imap_unordered: results are buffered until the caller takes them; at most `window`
// items are produced and not yet taken.
template <class R>
class StreamBatch : public Batch {
 public:
  using Item = StreamItem<R>;
  // True when next() will not block.
  [[nodiscard]] virtual bool has_next() const noexcept = 0;
  [[nodiscard]] virtual bool at_end() const noexcept = 0;
  virtual Item next() = 0;
};

template <class Fd, class In, class R, bool Star, class Src, bool Ordered>
class ImapBatch final : public StreamBatch<R> {
  using Item = typename StreamBatch<R>::Item;

 public:
  template <class Arg>
  ImapBatch(Arg&& r, std::int64_t window) : source_(std::forward<Arg>(r)), window_(window) {}

  std::uint32_t produce(ByteBuffer& payload, std::int64_t& first_index,
                        std::vector<std::uint64_t>& ends) override {
    first_index = next_;
    const std::uint32_t n = source_.produce(payload, this->chunksize, ends);
    next_ += n;
    return n;
  }
  [[nodiscard]] bool may_produce() const override { return next_ - ready_.taken() < window_; }

  void deliver(const Delivery& d) noexcept override {
    std::span<const std::byte> in = d.results;
    deliver_chunk(ready_, outcome_of(d), DeliveryFailures(d), [&] { return decode_one<R>(in); });
  }

  void fail(std::int64_t index, std::exception_ptr error) noexcept override {
    ready_.put_error(index, std::move(error));
  }

  [[nodiscard]] bool has_next() const noexcept override { return ready_.has_next(); }
  [[nodiscard]] bool at_end() const noexcept override {
    return this->finished() && ready_.empty() && ready_.taken() >= next_;
  }
  Item next() override { return ready_.next(); }

 private:
  RangeSource<Src, In> source_;
  std::int64_t next_ = 0;
  std::int64_t window_;
  StreamedResults<R, Ordered> ready_;
};

[[nodiscard]] std::uint32_t auto_chunksize(std::int64_t items, unsigned workers) noexcept;
void check_chunksize(std::size_t chunksize);

template <class Range>
std::int64_t range_size(Range& r) {
  if constexpr (std::ranges::sized_range<Range>) {
    return static_cast<std::int64_t>(std::ranges::size(r));
  } else {
    return -1;
  }
}

// How the shared result handles (detail/results.hpp) drive this pool's engine.
struct LocalResults {
  using Engine = detail::Engine;
  template <class T>
  using ResultBatch = detail::ResultBatch<T>;
  template <class R>
  using StreamBatch = detail::StreamBatch<R>;
  static void release(Engine& e) {
    engine_close(e);
    engine_join(e);
  }
  static constexpr const char* kTimeout = "pool result not ready within the timeout";
};
}  // namespace detail

// The outcome of map_async/apply_async (detail/results.hpp has the whole contract). Move-only;
// get() hands the value over once (a second get() throws std::logic_error). Waiting on it drives
// the pool (see "Threads" above).
template <class T>
class [[nodiscard]] AsyncResult : public detail::BasicAsyncResult<T, detail::LocalResults> {
 public:
  using detail::BasicAsyncResult<T, detail::LocalResults>::BasicAsyncResult;
};

// The lazy range returned by imap/imap_unordered: an input range of R. Advancing blocks for the
// next result. A position whose task failed (or where the input range threw) rethrows that error
// when dereferenced; iteration can go on past it (`++it`), like calling next() again in Python.
// Dropping the range abandons the rest: workers finish what they hold, those results are dropped.
template <class R>
class [[nodiscard]] ImapRange : public detail::BasicImapRange<R, detail::LocalResults> {
 public:
  using detail::BasicImapRange<R, detail::LocalResults>::BasicImapRange;
};

class Pool {
 public:
  // cpu_count() workers. Throws std::system_error ("cannot fork worker") if the OS refuses.
  Pool();
  // std::invalid_argument if processes is absurd (> 1024, e.g. a negative number converted).
  explicit Pool(unsigned processes);
  // std::invalid_argument for bad options (processes > 1024, nice outside [-40, 40], a zero
  // task_timeout).
  explicit Pool(PoolOptions options);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  Pool(Pool&&) noexcept = default;
  Pool& operator=(Pool&&) noexcept = default;
  // terminate() unless join() ran. Never throws.
  ~Pool();

  // f(x) for every x of the input range, results in input order. Blocks. Throws the error of the
  // first failed input (by index) after the others completed: RemoteError, WorkerLost; what the
  // input range threw; std::logic_error after close(). `void` f: returns nothing.
  template <class F, class Range>
  auto map(F&& f, Range&& inputs, std::size_t chunksize = 0) {
    return map_impl<false>(std::forward<F>(f), std::forward<Range>(inputs), chunksize);
  }
  // map without blocking: an AsyncResult<std::vector<R>> (AsyncResult<void> for void f). The
  // input is copied when the call is made. Throws std::logic_error after close(), and what the
  // input range throws while it is copied; task errors come out of get().
  template <class F, class Range>
  auto map_async(F&& f, Range&& inputs, std::size_t chunksize = 0) {
    return map_async_impl<false>(std::forward<F>(f), std::forward<Range>(inputs), chunksize);
  }
  // std::apply(f, tuple) for every tuple of the input range; blocks and throws like map.
  template <class F, class Range>
  auto starmap(F&& f, Range&& argument_tuples, std::size_t chunksize = 0) {
    return map_impl<true>(std::forward<F>(f), std::forward<Range>(argument_tuples), chunksize);
  }
  template <class F, class Range>
  auto starmap_async(F&& f, Range&& argument_tuples, std::size_t chunksize = 0) {
    return map_async_impl<true>(std::forward<F>(f), std::forward<Range>(argument_tuples),
                                chunksize);
  }
  // Lazy, in input order: an ImapRange. The input is consumed as results are taken, at most
  // ~4 chunks per worker ahead, so it streams over inputs of any length. An lvalue input range
  // must outlive the returned range; an rvalue is moved in. Does not block (iterating does).
  // Throws std::invalid_argument for chunksize 0, std::logic_error after close().
  template <class F, class Range>
  auto imap(F&& f, Range&& inputs, std::size_t chunksize = 1) {
    return imap_impl<true>(std::forward<F>(f), std::forward<Range>(inputs), chunksize);
  }
  // Lazy, in completion order; otherwise as imap.
  template <class F, class Range>
  auto imap_unordered(F&& f, Range&& inputs, std::size_t chunksize = 1) {
    return imap_impl<false>(std::forward<F>(f), std::forward<Range>(inputs), chunksize);
  }
  // f(args...) in a worker. Blocks; rethrows its error.
  template <class F, class... Args>
  auto apply(F&& f, Args&&... args) {
    return apply_async(std::forward<F>(f), std::forward<Args>(args)...).get();
  }
  // f(args...) in a worker, without blocking: an AsyncResult<R>. The arguments are encoded now.
  // Throws std::logic_error after close(); task errors come out of get().
  template <class F, class... Args>
  auto apply_async(F&& f, Args&&... args) {
    using Fd = std::decay_t<F>;
    using In = std::tuple<std::decay_t<Args>...>;
    using R = detail::item_result_t<Fd, In, true>;
    check_codable<In, R>();
    using B = detail::CollectBatch<Fd, In, R, true, std::array<In, 1>, R>;
    auto batch = std::make_shared<B>(std::array<In, 1>{In(std::forward<Args>(args)...)});
    batch->chunksize = 1;
    batch->total = 1;
    return AsyncResult<R>(submit<Fd, In, R, true>(*batch, f, batch, 1), batch,
                          !detail::kStateless<Fd>);
  }

  // No more submissions; workers exit once the queued work is done (see join()). Never throws.
  void close() noexcept;
  // After close(): blocks until all submitted work is done and the workers exited and were
  // reaped. An imap still being iterated gets no more work: its remaining positions fail with
  // WorkerLost. std::logic_error if close() was not called.
  void join();
  // Kills the workers now (SIGKILL) and reaps them; results not yet in fail with WorkerLost.
  // Returns quickly whatever is queued. Never throws.
  void terminate() noexcept;

  // Number of workers. Never blocks, never throws.
  [[nodiscard]] unsigned processes() const noexcept;
  // Pids of the current workers (replacements included). For diagnostics and tests. Never blocks.
  [[nodiscard]] std::vector<pid_t> worker_pids() const;

 private:
  template <class In, class R>
  static constexpr void check_codable() {
    static_assert(detail::pool_codec::Codable<In>,
                  "mpp::Pool: the input type cannot travel to a worker process (see codec.hpp "
                  "for the types that can, and how to make a type codable)");
    static_assert(std::is_void_v<R> || detail::pool_codec::Codable<R>,
                  "mpp::Pool: the result type cannot travel back from a worker process (see "
                  "codec.hpp for the types that can, and how to make a type codable)");
  }

  // Sets up the batch, picks the engine (the pool's, or a fresh one for callables with state)
  // and submits. Returns the engine that runs it.
  template <class Fd, class In, class R, bool Star, class F>
  std::shared_ptr<detail::Engine> submit(detail::Batch& b, F& f,
                                         std::shared_ptr<detail::Batch> owner,
                                         std::int64_t chunks) {
    require_open();
    detail::setup_batch<Fd, In, R, Star>(b, f);
    std::shared_ptr<detail::Engine> e = engine_;
    if constexpr (!detail::kStateless<Fd>) {
      // Workers that see the caller's state as of now (see the header comment for the cost).
      unsigned n = detail::engine_workers(*engine_);
      if (chunks >= 0 && chunks < static_cast<std::int64_t>(n)) {
        n = static_cast<unsigned>(std::max<std::int64_t>(chunks, 1));
      }
      e = detail::make_engine(*options_, n);
    }
    detail::engine_submit(*e, std::move(owner));
    return e;
  }

  template <bool Star, class F, class Range>
  auto map_impl(F&& f, Range&& inputs, std::size_t chunksize) {
    using Fd = std::decay_t<F>;
    using In = std::ranges::range_value_t<Range>;
    using R = detail::item_result_t<Fd, In, Star>;
    check_codable<In, R>();
    using Out = std::conditional_t<std::is_void_v<R>, void, std::vector<R>>;
    using Src = std::remove_reference_t<Range>&;
    using B = detail::CollectBatch<Fd, In, R, Star, Src, Out>;
    detail::check_chunksize(chunksize);
    auto batch = std::make_shared<B>(inputs);
    const std::int64_t n = detail::range_size(inputs);
    batch->total = n;
    batch->show_progress = true;
    batch->chunksize = chunksize != 0
                           ? static_cast<std::uint32_t>(std::min<std::size_t>(chunksize, 1u << 30))
                           : detail::auto_chunksize(n, processes());
    const std::int64_t chunks = n < 0 ? -1 : (n + batch->chunksize - 1) / batch->chunksize;
    auto e = submit<Fd, In, R, Star>(*batch, f, batch, chunks);
    auto* b = batch.get();
    try {
      detail::engine_wait(*e, [b] { return b->finished(); });
    } catch (...) {
      b->abandoned = true;
      b->exhausted = true;
      throw;
    }
    if (e != engine_) {
      detail::engine_close(*e);
      detail::engine_join(*e);
    }
    return batch->take();
  }

  template <bool Star, class F, class Range>
  auto map_async_impl(F&& f, Range&& inputs, std::size_t chunksize) {
    using Fd = std::decay_t<F>;
    using In = std::ranges::range_value_t<Range>;
    using R = detail::item_result_t<Fd, In, Star>;
    check_codable<In, R>();
    using Out = std::conditional_t<std::is_void_v<R>, void, std::vector<R>>;
    using Src = std::vector<In>;
    using B = detail::CollectBatch<Fd, In, R, Star, Src, Out>;
    detail::check_chunksize(chunksize);
    require_open();
    Src copy;
    if constexpr (std::ranges::sized_range<Range>) copy.reserve(std::ranges::size(inputs));
    for (auto&& x : inputs) copy.push_back(x);
    const auto n = static_cast<std::int64_t>(copy.size());
    auto batch = std::make_shared<B>(std::move(copy));
    batch->total = n;
    batch->chunksize = chunksize != 0
                           ? static_cast<std::uint32_t>(std::min<std::size_t>(chunksize, 1u << 30))
                           : detail::auto_chunksize(n, processes());
    const std::int64_t chunks = (n + batch->chunksize - 1) / batch->chunksize;
    auto e = submit<Fd, In, R, Star>(*batch, f, batch, chunks);
    return AsyncResult<Out>(std::move(e), batch, e != engine_);
  }

  template <bool Ordered, class F, class Range>
  auto imap_impl(F&& f, Range&& inputs, std::size_t chunksize) {
    using Fd = std::decay_t<F>;
    using In = std::ranges::range_value_t<Range>;
    using R = detail::item_result_t<Fd, In, false>;
    static_assert(!std::is_void_v<R>, "mpp::Pool::imap needs a function that returns a value");
    check_codable<In, R>();
    using Src =
        std::conditional_t<std::is_lvalue_reference_v<Range>, Range, std::remove_cvref_t<Range>>;
    using B = detail::ImapBatch<Fd, In, R, false, Src, Ordered>;
    if (chunksize == 0) throw std::invalid_argument("imap chunksize must be at least 1");
    detail::check_chunksize(chunksize);
    const auto cs = static_cast<std::uint32_t>(chunksize);
    const std::int64_t window = static_cast<std::int64_t>(cs) * 4 * processes();
    const std::int64_t n = detail::range_size(inputs);
    auto batch = std::make_shared<B>(std::forward<Range>(inputs), window);
    batch->chunksize = cs;
    batch->total = n;
    batch->show_progress = true;
    const std::int64_t chunks = n < 0 ? -1 : (n + cs - 1) / cs;
    auto e = submit<Fd, In, R, false>(*batch, f, batch, chunks);
    return ImapRange<R>(e, batch, e != engine_);
  }

  void require_open() const;

  std::shared_ptr<PoolOptions> options_;
  std::shared_ptr<detail::Engine> engine_;
  bool joined_ = false;
};

}  // namespace mpp
