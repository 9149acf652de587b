// mpp/detail/pool_core/results.hpp: the caller's side of a pool call, one implementation for
// mpp::Pool and mpp::mpi::Pool: the handle of map_async/apply_async (mpp::AsyncResult,
// mpp::mpi::AsyncResult), the lazy range of imap/imap_unordered (mpp::ImapRange,
// mpp::mpi::ImapRange), the stores in which a map/apply call collects its outcomes
// (CollectedResults) and an imap buffers them (StreamedResults), and how a chunk's outcomes reach
// either store (deliver_chunk). Both backends' batches use these, so what one chunk's results mean
// (every position exactly one outcome, a result that fails to decode fails where it stands) is
// decided here once.
//
// A backend is named by its transport description B (see pool_core/batch.hpp):
//   B::Engine                  its engine type
//   B::release(Engine&)        reap an engine forked for this call only
//   B::kTimeout                the text of get(timeout)'s TimeoutError
// and the handles hold its batches, ResultBatch<B, T> and StreamBatch<B, R>. Its engine's
// namespace provides, found by argument-dependent lookup, engine_poll(Engine&)
// (progress without blocking), engine_wait(Engine&, done[, deadline]) (pump until done() or
// the deadline; done() is called with the engine's mutex held, possibly by another thread that
// drives the engine), engine_lock(Engine&) (that mutex, held while a handle reads or takes its
// batch's results) and engine_cancel(Engine&, batch, error, stop_running) (see cancel_call; it
// takes the mutex itself). Its batches have finished(), `abandoned`, `cancelled`, `exhausted` and
// `batch_error` (what ended the input early: it threw, or the call was cancelled).
//
// Lifetime: the handles share ownership of the engine and the batch, so they stay valid after the
// pool object is gone. Dropping an AsyncResult marks its batch abandoned (the work goes on, results
// still out are discarded); dropping an imap range before its end cancels the rest of its work
// without stopping what already runs (see ~BasicImapRange).
// Threads: a handle may be used from any thread, by one thread at a time; handles of one pool
// may be used by different threads at once (they synchronise through the engine's mutex).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mpp/errors.hpp"

namespace mpp::detail {

template <class B, class Out>
class ResultBatch;
template <class B, class R>
class StreamBatch;
template <class Result, class T, class B>
class BasicAsCompleted;

// ---- cancelling a call (AsyncResult::cancel, ImapRange::cancel, an imap range dropped early) ----

// What get() (and an imap's next position) throws after cancel().
inline std::exception_ptr cancelled_error() noexcept {
  try {
    return std::make_exception_ptr(CancelledError("pool call cancelled"));
  } catch (...) {
    return std::current_exception();  // std::bad_alloc: still an error, and still not a value
  }
}

// Cancels the call of batch `b` on `engine`. Returns true if it will not complete normally (now
// cancelled, or cancelled before), false if it had completed already (its outcome, a value or
// an error, stands). First makes the progress possible without blocking, so that a result that
// is back already counts as completed. Then: `b` produces nothing more, `batch_error` becomes
// CancelledError, and the engine drops every chunk of `b` not yet started; with `stop_running`
// it also stops what runs (the local engine stops and replaces those workers; MPI ranks cannot
// be stopped: their results are discarded when they arrive). `b` is finished() on return. Does
// not block; throws what engine_poll throws.
template <class Engine, class Batch>
bool cancel_call(Engine& engine, Batch& b, bool stop_running) {
  engine_poll(engine);
  std::exception_ptr error;
  {
    // The batch's state is the engine's (another thread may be driving it).
    const auto lk = engine_lock(engine);
    if (b.cancelled) return true;
    if (b.finished()) return false;
    b.cancelled = true;
    b.batch_error = cancelled_error();
    error = b.batch_error;
  }
  // Without the mutex (engine_cancel takes it): a result the driver delivers in between is
  // discarded with the rest, since the call's error stands for all of its items.
  engine_cancel(engine, b, error, stop_running);
  return true;
}

template <class T, class B>
class BasicAsyncResult {
 public:
  BasicAsyncResult(std::shared_ptr<typename B::Engine> engine, std::shared_ptr<ResultBatch<B, T>> b,
                   bool own_engine = false)
      : engine_(std::move(engine)), batch_(std::move(b)), own_engine_(own_engine) {}
  BasicAsyncResult(BasicAsyncResult&&) noexcept = default;
  BasicAsyncResult& operator=(BasicAsyncResult&&) noexcept = default;
  ~BasicAsyncResult() {
    if (!batch_) return;
    const auto lk = engine_lock(*engine_);
    if (!batch_->finished()) batch_->abandoned = true;
  }

  // Blocks until the task(s) finished; returns the value or rethrows the first error by input
  // index (RemoteError, WorkerLost, SerializationError, or what the input range threw). The value
  // is handed over once: a second get() throws std::logic_error.
  T get() {
    wait();
    return take();
  }
  // Same, but throws mpp::TimeoutError if not finished within `timeout` (the work goes on).
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    if (!wait(timeout)) throw TimeoutError(B::kTimeout);
    return take();
  }
  // Blocks until finished. Never throws for the task's errors.
  void wait() { (void)wait_until(std::chrono::steady_clock::time_point::max()); }
  // Blocks at most `timeout`; true if finished.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(std::chrono::steady_clock::now() +
                      std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout));
  }
  // Does not block.
  [[nodiscard]] bool ready() const {
    engine_poll(*engine_);
    return finished();
  }
  // Does not block; std::logic_error if not ready.
  [[nodiscard]] bool successful() const {
    if (!ready()) throw std::logic_error("successful() called on a result that is not ready");
    const auto lk = engine_lock(*engine_);
    return !batch_->has_error();
  }
  // Cancels the call: true if it will not complete normally, false if it had completed already
  // (see cancel_call). After true, get() throws mpp::CancelledError, ready() is true and
  // successful() false. A queued task is dropped; a running one has its worker stopped (local
  // pool) or its result discarded (MPI). Does not block.
  bool cancel() { return cancel_call(*engine_, *batch_, true); }
  // True once cancel() returned true. Does not block, never throws.
  [[nodiscard]] bool cancelled() const noexcept { return batch_ && batch_->cancelled; }

 private:
  template <class, class, class>
  friend class BasicAsCompleted;

  T take() {
    auto lk = engine_lock(*engine_);
    return batch_->take();
  }
  [[nodiscard]] bool finished() const {
    const auto lk = engine_lock(*engine_);
    return batch_->finished();
  }

  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    auto* b = batch_.get();
    const bool done = engine_wait(
        *engine_, [b] { return b->finished(); }, deadline);
    if (done && own_engine_) {
      // The workers forked for this call are no longer needed: reap them now.
      B::release(*engine_);
      own_engine_ = false;
    }
    return done;
  }

  std::shared_ptr<typename B::Engine> engine_;
  std::shared_ptr<ResultBatch<B, T>> batch_;
  bool own_engine_ = false;
};

// The input ranges of imap and as_completed: a range object that advances itself (a step may
// block), walked by an iterator pointing at it. Derived gives this base (a friend) advance()
// (to the next element; sets ended_ once there is none), current() (the element reached, as Ref)
// and ended_. begin() makes the first step; end() is a sentinel.
template <class Derived, class Value, class Ref>
class AdvancingRange {
 public:
  class iterator {
   public:
    using value_type = Value;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(Derived* r) : r_(r) {}
    Ref operator*() const { return r_->current(); }
    std::add_pointer_t<Ref> operator->() const { return &**this; }
    iterator& operator++() {
      r_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.done(); }

   private:
    [[nodiscard]] bool done() const noexcept { return r_ == nullptr || r_->ended_; }
    Derived* r_ = nullptr;
  };

  iterator begin() {
    auto& self = static_cast<Derived&>(*this);
    if (!started_) {
      started_ = true;
      self.advance();
    }
    return iterator(&self);
  }
  // The end: reached after the last result. Does not block.
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  bool started_ = false;
};

// An input range of R. Advancing (begin(), ++it) blocks until the next result is there and never
// throws the tasks' errors; dereferencing does not block, and at a position whose task failed (or
// where the input range threw: one last position) rethrows that error (RemoteError, WorkerLost,
// what the input range threw); iteration can go on past it (`++it`), like calling next() again in
// Python.
template <class R, class B>
class BasicImapRange : public AdvancingRange<BasicImapRange<R, B>, R, R&> {
 public:
  BasicImapRange(std::shared_ptr<typename B::Engine> engine, std::shared_ptr<StreamBatch<B, R>> b,
                 bool own_engine = false)
      : engine_(std::move(engine)), batch_(std::move(b)), own_engine_(own_engine) {}
  BasicImapRange(BasicImapRange&&) noexcept = default;
  BasicImapRange& operator=(BasicImapRange&&) noexcept = default;
  // Dropped before its end: the rest is cancelled, except chunks already running, which finish
  // (their results are discarded). A `break` out of a loop over the range should not kill the
  // workers (their initializer would run again, a task's side effects be cut short); cancel()
  // does that on request.
  ~BasicImapRange() {
    if (!batch_) return;
    try {
      bool at_end = false;
      {
        const auto lk = engine_lock(*engine_);
        at_end = batch_->at_end();
      }
      if (at_end) return;
      try {
        (void)cancel_call(*engine_, *batch_, false);
      } catch (...) {
        // The engine cannot be driven now (e.g. MPI finalized): give up on the rest as before.
      }
      const auto lk = engine_lock(*engine_);
      batch_->abandoned = true;
      batch_->exhausted = true;
    } catch (...) {
      // engine_lock refused (dropped inside the pool's own progress callback): nothing to do.
    }
  }

  // Cancels the rest: true if positions were still to come, false if every result had arrived
  // (they can still be taken). Work not started is dropped; running chunks of it have their
  // workers stopped and replaced (local pool) or their results discarded (MPI). After true, the
  // next position (++it or begin()) rethrows mpp::CancelledError and then the range ends. Does not
  // block.
  bool cancel() { return cancel_call(*engine_, *batch_, true); }
  // True once cancel() returned true. Does not block, never throws.
  [[nodiscard]] bool cancelled() const noexcept { return batch_ && batch_->cancelled; }

 private:
  friend class AdvancingRange<BasicImapRange<R, B>, R, R&>;

  R& current() {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  void advance() {
    value_.reset();
    error_ = nullptr;
    auto* b = batch_.get();
    {
      const auto lk = engine_lock(*engine_);
      if (b->cancelled) {
        // One position says so (like a Python iterator raising), then the range ends.
        if (b->batch_error) {
          error_ = std::exchange(b->batch_error, nullptr);
        } else {
          ended_ = true;
        }
        return;
      }
    }
    engine_wait(*engine_, [b] { return b->has_next() || b->at_end() || b->abandoned; });
    {
      const auto lk = engine_lock(*engine_);
      if (b->has_next()) {
        auto item = b->next();
        error_ = std::move(item.error);
        value_ = std::move(item.value);
        return;
      }
    }
    if (own_engine_) {
      B::release(*engine_);
      own_engine_ = false;
    }
    const auto lk = engine_lock(*engine_);
    if (b->batch_error) {
      error_ = std::exchange(b->batch_error, nullptr);  // one last, failed position
      return;
    }
    ended_ = true;
  }

  std::shared_ptr<typename B::Engine> engine_;
  std::shared_ptr<StreamBatch<B, R>> batch_;
  std::optional<R> value_;
  std::exception_ptr error_;
  bool ended_ = false;
  bool own_engine_ = false;
};

// One position of an imap: its input index and its value or error.
template <class R>
struct StreamItem {
  std::int64_t index = 0;
  std::optional<R> value;
  std::exception_ptr error;
};

// What an imap (Ordered) or imap_unordered has received and not yet handed out. Ordered items
// are kept as runs of consecutive indexes (one map node per chunk, not per item): a chunk's
// delivery appends to one run. Not thread-safe (the batch's owner uses it).
template <class R, bool Ordered>
class StreamedResults {
 public:
  using Item = StreamItem<R>;
  StreamedResults() {
    if constexpr (Ordered) last_ = ready_.end();
  }
  StreamedResults(const StreamedResults&) = delete;
  StreamedResults& operator=(const StreamedResults&) = delete;

  // Stores an outcome. Ordered: the first outcome of an index wins (one that was stored or handed
  // out already is dropped), so a position is never handed out twice, nor skipped. Unordered
  // keeps no index set (that would cost a node per item): for_each_outcome and the engines give
  // each index one outcome. Never throws (under memory exhaustion the outcome is lost).
  void put(Item&& item) noexcept {
    try {
      if constexpr (Ordered) {
        const std::int64_t idx = item.index;
        if (idx < taken_) return;
        if (last_ == ready_.end() || end_of(last_) != idx) {
          auto next = ready_.upper_bound(idx);
          if (next != ready_.begin()) {
            auto prev = std::prev(next);
            if (idx < end_of(prev)) return;  // stored already
            if (end_of(prev) == idx) {
              prev->second.items.push_back(std::move(item));
              last_ = prev;
              return;
            }
          }
          // Built before it is inserted: an empty run must never be in the map (has_next()
          // would take it for the next index), even when allocating its item fails.
          Run run;
          run.items.push_back(std::move(item));
          last_ = ready_.emplace_hint(next, idx, std::move(run));
          return;
        } else if (auto next = std::next(last_); next != ready_.end() && next->first == idx) {
          return;  // stored already
        }
        last_->second.items.push_back(std::move(item));
      } else {
        ready_.push_back(std::move(item));
      }
    } catch (...) {
    }
  }
  void put_value(std::int64_t idx, R&& v) noexcept {
    Item item;
    item.index = idx;
    try {
      item.value.emplace(std::move(v));
    } catch (...) {
      item.error = std::current_exception();
    }
    put(std::move(item));
  }
  void put_error(std::int64_t idx, std::exception_ptr e) noexcept {
    Item item;
    item.index = idx;
    item.error = std::move(e);
    put(std::move(item));
  }
  // next() will not block: in order, the next index is there.
  [[nodiscard]] bool has_next() const noexcept {
    if constexpr (Ordered) {
      if (ready_.empty()) return false;
      const auto& [first, run] = *ready_.begin();
      return first + static_cast<std::int64_t>(run.pos) == taken_;
    } else {
      return !ready_.empty();
    }
  }
  [[nodiscard]] bool empty() const noexcept { return ready_.empty(); }
  // Positions handed out so far.
  [[nodiscard]] std::int64_t taken() const noexcept { return taken_; }
  // Only when has_next().
  Item next() {
    Item item;
    if constexpr (Ordered) {
      auto it = ready_.begin();
      item = std::move(it->second.items[it->second.pos++]);
      if (it->second.pos == it->second.items.size()) {
        if (last_ == it) last_ = ready_.end();
        ready_.erase(it);
      }
    } else {
      item = std::move(ready_.front());
      ready_.pop_front();
    }
    ++taken_;
    return item;
  }

 private:
  struct Run {
    std::vector<Item> items;
    std::size_t pos = 0;  // next item to hand out
  };
  using Runs = std::map<std::int64_t, Run>;
  static std::int64_t end_of(typename Runs::const_iterator it) noexcept {
    return it->first + static_cast<std::int64_t>(it->second.items.size());
  }

  std::conditional_t<Ordered, Runs, std::deque<Item>> ready_;
  // The run the last put() went to (Ordered only).
  std::conditional_t<Ordered, typename Runs::iterator, int> last_{};
  std::int64_t taken_ = 0;
};

// One chunk as it came back, for for_each_outcome and deliver_chunk.
struct ChunkOutcome {
  std::int64_t first_index = 0;
  std::uint32_t count = 0;
  // Indexes the engine has failed already (a worker died on them), ascending: they have neither
  // a result nor a failure record in the chunk.
  std::span<const std::int64_t> skipped{};
};

// Gives every position of a chunk exactly one outcome, in position order.
//   failures   what the worker reported as failed: `broken()` (non-null: its records are
//              unreadable, so every position fails with that), `next_pos()` (position of the
//              next failed item, ascending; >= count when none is left), `take()` (that item's
//              error; moves on to the next)
//   decode()   decodes the next result from the chunk's result bytes (not called for void R)
//   on_value(index, R&&), on_error(index, exception_ptr)   take the outcomes; must not throw
// A result that fails to decode fails its own index with what the decoder threw; the results
// after it cannot be located (a result's length is known only by decoding it), so their indexes
// fail with SerializationError, and those before it keep their values. Never throws.
//
// Per position, the success path is a compare with next_pos(), the decode and on_value: no
// exception_ptr is made or destroyed (out-of-line library calls) and the value is not staged in
// a std::optional; a first version that did both made map(string -> string) ~8 ns per item
// slower.
template <class R, class Failures, class Decode, class OnValue, class OnError>
void for_each_outcome(const ChunkOutcome& c, Failures&& failures, Decode&& decode,
                      OnValue&& on_value, OnError&& on_error) noexcept {
  if constexpr (!std::is_void_v<R>) {
    static_assert(noexcept(on_value(std::int64_t{}, std::declval<R>())),
                  "on_value must not throw: an exception would be taken for a decode failure");
  }
  std::size_t s = 0;
  auto skipped = [&](std::int64_t idx) {
    if (s < c.skipped.size() && c.skipped[s] == idx) {
      ++s;
      return true;
    }
    return false;
  };
  if (std::exception_ptr all = failures.broken()) {
    for (std::uint32_t i = 0; i < c.count; ++i) {
      const std::int64_t idx = c.first_index + static_cast<std::int64_t>(i);
      if (!skipped(idx)) on_error(idx, all);
    }
    return;
  }
  std::exception_ptr unlocated;  // once a result failed to decode
  for (std::uint32_t i = 0; i < c.count; ++i) {
    const std::int64_t idx = c.first_index + static_cast<std::int64_t>(i);
    if (skipped(idx)) continue;
    if (failures.next_pos() == i) {
      std::exception_ptr e;
      try {
        e = failures.take();
      } catch (...) {
        e = std::current_exception();  // no memory to describe it
      }
      on_error(idx, std::move(e));
      continue;
    }
    if (unlocated) {
      on_error(idx, unlocated);
      continue;
    }
    if constexpr (!std::is_void_v<R>) {
      try {
        on_value(idx, decode());
      } catch (...) {
        on_error(idx, std::current_exception());
        try {
          unlocated = std::make_exception_ptr(SerializationError(
              "result cannot be located: the result of task " + std::to_string(idx) +
              " before it in the same chunk failed to decode"));
        } catch (...) {
          unlocated = std::current_exception();
        }
      }
    }
  }
}

// A result slot: R itself, or std::optional<R> when R has no default constructor.
template <class R>
using stored_t = std::conditional_t<std::is_default_constructible_v<R>, R, std::optional<R>>;

// What a map/apply call has collected, by input index, until it completes: one slot per input
// produced so far (none when R is void) and the errors, the first outcome of an index winning.
// Out is std::vector<R> (map), R (apply) or void. Not thread-safe (the batch's owner uses it).
template <class R, class Out>
class CollectedResults {
 public:
  // Makes room for inputs [0, n). Throws std::bad_alloc.
  void resize(std::int64_t n) {
    if constexpr (!std::is_void_v<R>) values_.resize(static_cast<std::size_t>(n));
  }
  // The slots, for a backend's delivery to fill (R not void).
  [[nodiscard]] std::vector<stored_t<R>>& values() noexcept requires(!std::is_void_v<R>) {
    return values_;
  }
  // Stores input `idx`'s value (a value that cannot be moved in becomes its error).
  // (A template: `R&&` would name a reference to void in CollectedResults<void, void>.)
  template <class V>
  void set_value(std::int64_t idx, V&& v) noexcept requires(!std::is_void_v<R>) {
    try {
      values_[static_cast<std::size_t>(idx)] = std::forward<V>(v);
    } catch (...) {
      set_error(idx, std::current_exception());
    }
  }
  // Records that input `idx` failed, unless it already has an error. Never throws (a failure to
  // record one under memory exhaustion leaves the index without it).
  void set_error(std::int64_t idx, std::exception_ptr e) noexcept {
    try {
      errors_.emplace(idx, std::move(e));
    } catch (...) {
    }
  }
  [[nodiscard]] bool has_error() const noexcept { return !errors_.empty(); }
  // Moves the outcome out, or rethrows `batch_error` (what ended the input early) or else the
  // error of the lowest failed index. Once: a second call throws std::logic_error(`again`).
  Out take(const std::exception_ptr& batch_error, const char* again) {
    if (taken_) throw std::logic_error(again);
    taken_ = true;
    if (batch_error) std::rethrow_exception(batch_error);
    if (!errors_.empty()) std::rethrow_exception(errors_.begin()->second);
    if constexpr (std::is_void_v<Out>) {
      return;
    } else if constexpr (std::is_same_v<Out, std::vector<R>>) {
      if constexpr (std::is_same_v<stored_t<R>, R>) {
        return std::move(values_);
      } else {
        Out out;
        out.reserve(values_.size());
        for (auto& v : values_) out.push_back(std::move(*v));
        return out;
      }
    } else if constexpr (std::is_same_v<stored_t<R>, R>) {
      return std::move(values_.at(0));
    } else {
      return std::move(*values_.at(0));
    }
  }

 private:
  std::conditional_t<std::is_void_v<R>, int, std::vector<stored_t<R>>> values_{};
  std::map<std::int64_t, std::exception_ptr> errors_;
  bool taken_ = false;
};

// One chunk's outcomes into a map/apply call's store or an imap's (see for_each_outcome; `decode`
// is not called for void R). What every batch of both backends calls.
template <class R, class Out, class Failures, class Decode>
void deliver_chunk(CollectedResults<R, Out>& to, const ChunkOutcome& c, Failures&& failures,
                   Decode&& decode) noexcept {
  for_each_outcome<R>(
      c, failures, decode,
      [&](std::int64_t idx, auto&& v) noexcept {
        if constexpr (!std::is_void_v<R>) to.set_value(idx, std::move(v));
      },
      [&](std::int64_t idx, std::exception_ptr e) noexcept { to.set_error(idx, std::move(e)); });
}
template <class R, bool Ordered, class Failures, class Decode>
void deliver_chunk(StreamedResults<R, Ordered>& to, const ChunkOutcome& c, Failures&& failures,
                   Decode&& decode) noexcept {
  for_each_outcome<R>(
      c, failures, decode,
      [&](std::int64_t idx, R&& v) noexcept { to.put_value(idx, std::move(v)); },
      [&](std::int64_t idx, std::exception_ptr e) noexcept { to.put_error(idx, std::move(e)); });
}

// as_completed over handles of type Result (a backend's AsyncResult<T>, derived from
// BasicAsyncResult<T, B>): an input range of Result&, each handle once, as its result is ready
// (those ready already first, in vector order). Waiting drives the handles' engine like get()
// does, and sleeps on its wake-up: no polling. Handles whose calls run on engines of their own
// (callables with state) or come from several pools are waited on one engine at a time, at most
// kSlice each in turn. The vector must not change size while the range is used; the handles may
// be used meanwhile (get() of the one just yielded, or of any other).
template <class Result, class T, class B>
class BasicAsCompleted : public AdvancingRange<BasicAsCompleted<Result, T, B>, Result, Result&> {
  using Base = BasicAsyncResult<T, B>;
  using Clock = std::chrono::steady_clock;
  using Engine = typename B::Engine;
  static constexpr std::chrono::milliseconds kSlice{1};

 public:
  // Throws std::invalid_argument if a handle is empty (moved from).
  BasicAsCompleted(std::vector<Result>& results, std::optional<std::chrono::milliseconds> timeout)
      : results_(&results) {
    static_assert(std::is_base_of_v<Base, Result>, "as_completed takes a pool's AsyncResults");
    pending_.reserve(results.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!base(i).batch_) {
        throw std::invalid_argument("as_completed: result " + std::to_string(i) +
                                    " is empty (moved from)");
      }
      pending_.push_back(i);
    }
    if (timeout) {
      deadline_ = *timeout >= std::chrono::duration_cast<std::chrono::milliseconds>(
                                  Clock::time_point::max() - Clock::now())
                      ? Clock::time_point::max()
                      : Clock::now() + *timeout;
    }
  }
  BasicAsCompleted(BasicAsCompleted&&) noexcept = default;
  BasicAsCompleted& operator=(BasicAsCompleted&&) noexcept = default;

  // Advancing (begin(), ++it) blocks until another handle is ready, and throws mpp::TimeoutError
  // once the timeout given to as_completed has passed with none (the range stays usable:
  // advancing again retries). Dereferencing gives the handle reached; it does not block.

 private:
  friend class AdvancingRange<BasicAsCompleted<Result, T, B>, Result, Result&>;

  Result& current() const { return (*results_)[current_]; }
  Base& base(std::size_t i) { return static_cast<Base&>((*results_)[i]); }

  void advance() {
    for (;;) {
      if (pending_.empty()) {
        ended_ = true;
        return;
      }
      if (take_ready()) return;
      if (Clock::now() >= deadline_) {
        throw TimeoutError("as_completed: " + std::to_string(pending_.size()) + " of " +
                           std::to_string(results_->size()) +
                           " results not ready within the timeout");
      }
      wait_some();
    }
  }

  // Yields the first pending handle that is ready, if any (each engine locked once per run of
  // handles on it, never two at a time).
  bool take_ready() {
    std::unique_lock<std::mutex> lk;
    const Engine* locked = nullptr;
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      Base& r = base(*it);
      if (r.engine_.get() != locked) {
        if (lk.owns_lock()) lk.unlock();
        lk = engine_lock(*r.engine_);
        locked = r.engine_.get();
      }
      if (r.batch_->finished()) {
        current_ = *it;
        pending_.erase(it);
        return true;
      }
    }
    return false;
  }

  // Waits until a pending handle of one engine is ready, the deadline, or (several engines) that
  // engine's slice passed.
  void wait_some() {
    Engine* first = base(pending_.front()).engine_.get();
    bool several = false;
    for (std::size_t i : pending_) several = several || base(i).engine_.get() != first;
    const std::size_t rounds = several ? pending_.size() : 1;
    for (std::size_t k = 0; k < rounds; ++k) {
      Engine* e = base(pending_[k]).engine_.get();
      if (k != 0 && e == base(pending_[k - 1]).engine_.get()) continue;
      watch_.clear();
      for (std::size_t i : pending_) {
        if (base(i).engine_.get() == e) watch_.push_back(base(i).batch_.get());
      }
      const auto until = several ? std::min(deadline_, Clock::now() + kSlice) : deadline_;
      // Called with e's mutex held, perhaps by the thread driving e: reads only batches of e.
      if (engine_wait(
              *e,
              [this] {
                return std::any_of(watch_.begin(), watch_.end(),
                                   [](const auto* b) { return b->finished(); });
              },
              until)) {
        return;
      }
      if (Clock::now() >= deadline_) return;
    }
  }

  std::vector<Result>* results_;
  std::vector<std::size_t> pending_;  // indexes not yet yielded, in vector order
  std::vector<const ResultBatch<B, T>*> watch_;
  std::size_t current_ = 0;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool ended_ = false;
};

}  // namespace mpp::detail
