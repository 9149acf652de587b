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
// (progress without blocking) and engine_wait(Engine&, done[, deadline]) (pump until done() or
// the deadline). Its batches have finished(), `abandoned`, `exhausted` and `batch_error` (what
// ended the input early: it threw, or the call was cancelled).
//
// Lifetime: the handles share ownership of the engine and the batch, so they stay valid after the
// pool object is gone. Dropping one marks its batch abandoned (results still out are discarded).
// Threads: a handle is used by one thread at a time, like the pool that made it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <iterator>
#include <map>
#include <memory>
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

template <class T, class B>
class BasicAsyncResult {
 public:
  BasicAsyncResult(std::shared_ptr<typename B::Engine> engine, std::shared_ptr<ResultBatch<B, T>> b,
                   bool own_engine = false)
      : engine_(std::move(engine)), batch_(std::move(b)), own_engine_(own_engine) {}
  BasicAsyncResult(BasicAsyncResult&&) noexcept = default;
  BasicAsyncResult& operator=(BasicAsyncResult&&) noexcept = default;
  ~BasicAsyncResult() {
    if (batch_ && !batch_->finished()) batch_->abandoned = true;
  }

  // Blocks until the task(s) finished; returns the value or rethrows the first error by input
  // index (RemoteError, WorkerLost, SerializationError, or what the input range threw). The value
  // is handed over once: a second get() throws std::logic_error.
  T get() {
    wait();
    return batch_->take();
  }
  // Same, but throws mpp::TimeoutError if not finished within `timeout` (the work goes on).
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    if (!wait(timeout)) throw TimeoutError(B::kTimeout);
    return batch_->take();
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
    return batch_->finished();
  }
  // Does not block; std::logic_error if not ready.
  [[nodiscard]] bool successful() const {
    if (!ready()) throw std::logic_error("successful() called on a result that is not ready");
    return !batch_->has_error();
  }

 private:
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

// An input range of R. Advancing blocks for the next result. A position whose task failed (or
// where the input range threw: one last position) rethrows that error when dereferenced;
// iteration can go on past it (`++it`), like calling next() again in Python.
template <class R, class B>
class BasicImapRange {
 public:
  BasicImapRange(std::shared_ptr<typename B::Engine> engine, std::shared_ptr<StreamBatch<B, R>> b,
                 bool own_engine = false)
      : engine_(std::move(engine)), batch_(std::move(b)), own_engine_(own_engine) {}
  BasicImapRange(BasicImapRange&&) noexcept = default;
  BasicImapRange& operator=(BasicImapRange&&) noexcept = default;
  ~BasicImapRange() {
    if (batch_ && !batch_->at_end()) {
      batch_->abandoned = true;
      batch_->exhausted = true;
    }
  }

  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(BasicImapRange* r) : r_(r) {}
    // Rethrows the position's error (RemoteError, WorkerLost, what the input range threw). Does
    // not block.
    R& operator*() const {
      if (r_->error_) std::rethrow_exception(r_->error_);
      return *r_->value_;
    }
    R* operator->() const { return &**this; }
    // Blocks until the next result is there. Never throws the tasks' errors.
    iterator& operator++() {
      r_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.done(); }

   private:
    [[nodiscard]] bool done() const noexcept { return r_ == nullptr || r_->ended_; }
    BasicImapRange* r_ = nullptr;
  };

  // Blocks for the first result.
  iterator begin() {
    if (!started_) {
      started_ = true;
      advance();
    }
    return iterator(this);
  }
  // The end: reached after the last result. Does not block.
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  void advance() {
    value_.reset();
    error_ = nullptr;
    auto* b = batch_.get();
    engine_wait(*engine_, [b] { return b->has_next() || b->at_end() || b->abandoned; });
    if (b->has_next()) {
      auto item = b->next();
      error_ = std::move(item.error);
      value_ = std::move(item.value);
      return;
    }
    if (own_engine_) {
      B::release(*engine_);
      own_engine_ = false;
    }
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
  bool started_ = false;
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

}  // namespace mpp::detail
