// mpp/detail/pool_core/batch.hpp: one pool call as both engines see it, one implementation for
// mpp::Pool and mpp::mpi::Pool: the Batch interface, the range source that encodes a call's
// inputs into chunks, the batches of map/apply (CollectBatch) and imap (ImapBatch), what a chunk's
// outcome looks like when it comes back (Delivery), the chunk-size policy and the helpers of the
// pool layers (range_size, copy_inputs).
//
// A transport description T names a backend (see the Local and Mpi transports in
// detail/pool_engine.hpp and detail/mpi_core.hpp):
//   T::Engine                    its engine (type-erased, in src/pool/ or src/mpi/)
//   T::CallFields                what its engine needs per call besides the common fields below
//                                (how the workers find the callable, per-call options)
//   T::release(Engine&)          reap an engine forked for one call only
//   T::kTimeout, T::kRetrieved   the texts of get(timeout)'s TimeoutError and a second get()
//   T::kChunks                   its chunk-size policy (ChunkPolicy)
//
// Threads: a batch is used by the thread that drives its pool (no locking).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iterator>
#include <memory>
#include <ranges>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mpp/detail/export.hpp"
#include "mpp/detail/pool_core/buffer.hpp"
#include "mpp/detail/pool_core/results.hpp"
#include "mpp/detail/pool_core/values.hpp"

namespace mpp::detail {

// Parent side: one chunk's outcome, as it arrived.
struct Delivery {
  std::int64_t first_index = 0;
  std::uint32_t count = 0;
  std::span<const std::byte> results;     // encoded results of the items that succeeded, in order
  std::span<const std::int64_t> skipped;  // indexes already failed through Batch::fail, ascending
  // Failed items by position in the chunk, ascending, each already its RemoteError.
  std::span<const std::pair<std::uint32_t, std::exception_ptr>> failures;
  std::exception_ptr broken;  // the failure records were unreadable: every position fails so
};

// Book-keeping of map/imap progress (PoolOptions::progress, on_progress of mpp::Pool).
struct BatchProgress {
  bool show = false;  // map/imap report progress (apply does not)
  std::int64_t items_done = 0;
  bool final_made = false;  // the last report was made
  std::chrono::steady_clock::time_point started{};
  std::chrono::steady_clock::time_point last{};
};

// One pool call, as both engines drive it. Engine-owned book-keeping is only touched by the
// engine.
class BatchBase {
 public:
  BatchBase() = default;
  BatchBase(const BatchBase&) = delete;
  BatchBase& operator=(const BatchBase&) = delete;
  virtual ~BatchBase() = default;

  // Appends the next chunk's encoded inputs to `payload` and sets first_index; returns the item
  // count, 0 once the input is exhausted. Unless every input takes `input_size` bytes, appends
  // to `ends` (empty on entry) where each input's bytes end, relative to the chunk's first input:
  // the local engine needs that only to leave out an input a worker died on. May throw (the
  // input range threw).
  virtual std::uint32_t produce(ByteBuffer& payload, std::int64_t& first_index,
                                std::vector<std::uint64_t>& ends) = 0;
  // False while the batch must not take more work (a full imap window).
  [[nodiscard]] virtual bool may_produce() const { return true; }
  // A chunk's results arrived. Never throws (decode errors become per-item failures).
  virtual void deliver(const Delivery& d) noexcept = 0;
  // Item `index` failed without a result (worker lost, pool terminated). Never throws.
  virtual void fail(std::int64_t index, std::exception_ptr error) noexcept = 0;

  [[nodiscard]] bool finished() const noexcept { return exhausted && in_flight == 0; }

  // Set by the pool layer that builds the batch.
  std::uint32_t chunksize = 1;
  std::uint64_t input_size = 0;  // bytes of every encoded input if fixed, else 0 (see produce)
  std::int64_t total = -1;       // items in the input if known, for progress

  // Engine book-keeping.
  std::size_t in_flight = 0;       // chunks handed out, results not yet delivered
  bool exhausted = false;          // no more chunks will be produced
  bool abandoned = false;          // the caller is gone: drop results, produce nothing more
  bool cancelled = false;          // cancel() took effect (see cancel_call in results.hpp)
  std::exception_ptr batch_error;  // what ended it early: the input range threw, or cancelled
  BatchProgress progress;
};

// A batch of transport T: the common part and T's per-call fields.
template <class T>
class Batch : public BatchBase, public T::CallFields {};

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

  // Appends up to `chunksize` encoded inputs to `payload`, sets `first_index` to the input index
  // of the first; for inputs of varying size also appends where each one ends (relative to the
  // first one's start) to `ends`. Returns how many (0: the range is exhausted).
  std::uint32_t produce(ByteBuffer& payload, std::uint32_t chunksize, std::int64_t& first_index,
                        std::vector<std::uint64_t>& ends) {
    first_index = next_;
    const std::uint32_t n = encode(payload, chunksize, ends);
    next_ += n;
    return n;
  }
  // Inputs produced so far.
  [[nodiscard]] std::int64_t produced() const noexcept { return next_; }

 private:
  std::uint32_t encode(ByteBuffer& payload, std::uint32_t chunksize,
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

  Src range_;
  std::ranges::iterator_t<std::remove_reference_t<Src>> it_;
  std::ranges::sentinel_t<std::remove_reference_t<Src>> end_;
  std::int64_t next_ = 0;
};

// A Delivery as deliver_chunk (pool_core/results.hpp) sees it.
inline ChunkOutcome outcome_of(const Delivery& d) noexcept {
  return ChunkOutcome{d.first_index, d.count, d.skipped};
}

// The failures a worker reported in a Delivery, as deliver_chunk asks for them.
class DeliveryFailures {
 public:
  explicit DeliveryFailures(const Delivery& d) noexcept : d_(d) {}
  [[nodiscard]] std::exception_ptr broken() const noexcept { return d_.broken; }
  [[nodiscard]] std::uint32_t next_pos() const noexcept {
    return next_ < d_.failures.size() ? d_.failures[next_].first : UINT32_MAX;
  }
  std::exception_ptr take() noexcept {
    const std::size_t i = next_++;
    // A second record for the same position (a confused worker) must not hide the later ones.
    while (next_ < d_.failures.size() && d_.failures[next_].first <= d_.failures[i].first) ++next_;
    return d_.failures[i].second;
  }

 private:
  const Delivery& d_;
  std::size_t next_ = 0;
};

template <class T, class Out>
class ResultBatch : public Batch<T> {
 public:
  // Moves the outcome out, or rethrows the first error by input index. Only once finished().
  virtual Out take() = 0;
  [[nodiscard]] virtual bool has_error() const noexcept = 0;
};

// map, map_async, starmap, apply, apply_async: all results are kept until the call completes.
// Out is std::vector<R> (map), R (apply) or void.
template <class T, class In, class R, class Src, class Out>
class CollectBatch final : public ResultBatch<T, Out> {
 public:
  template <class Arg>
  explicit CollectBatch(Arg&& r) : source_(std::forward<Arg>(r)) {
    this->input_size = kInputSize<In>;
  }

  std::uint32_t produce(ByteBuffer& payload, std::int64_t& first_index,
                        std::vector<std::uint64_t>& ends) override {
    const std::uint32_t n = source_.produce(payload, this->chunksize, first_index, ends);
    results_.resize(source_.produced());
    return n;
  }

  void deliver(const Delivery& d) noexcept override {
    if constexpr (kRaw<R>) {
      if (d.failures.empty() && !d.broken && d.skipped.empty() &&
          d.results.size() == d.count * sizeof(R)) {
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

  Out take() override { return results_.take(this->batch_error, T::kRetrieved); }

 private:
  RangeSource<Src, In> source_;
  CollectedResults<R, Out> results_;
};

// imap / imap_unordered: results are buffered until the caller takes them; at most `window`
// items are produced and not yet taken, so any input length streams in bounded memory.
template <class T, class R>
class StreamBatch : public Batch<T> {
 public:
  using Item = StreamItem<R>;
  // True when next() will not block.
  [[nodiscard]] virtual bool has_next() const noexcept = 0;
  [[nodiscard]] virtual bool at_end() const noexcept = 0;
  virtual Item next() = 0;
};

template <class T, class In, class R, class Src, bool Ordered>
class ImapBatch final : public StreamBatch<T, R> {
  static_assert(!std::is_void_v<R>, "imap and imap_unordered need a function that returns a value");
  using Item = typename StreamBatch<T, R>::Item;

 public:
  template <class Arg>
  ImapBatch(Arg&& r, std::int64_t window) : source_(std::forward<Arg>(r)), window_(window) {
    this->input_size = kInputSize<In>;
  }

  std::uint32_t produce(ByteBuffer& payload, std::int64_t& first_index,
                        std::vector<std::uint64_t>& ends) override {
    return source_.produce(payload, this->chunksize, first_index, ends);
  }
  [[nodiscard]] bool may_produce() const override {
    return source_.produced() - ready_.taken() < window_;
  }

  void deliver(const Delivery& d) noexcept override {
    std::span<const std::byte> in = d.results;
    deliver_chunk(ready_, outcome_of(d), DeliveryFailures(d), [&] { return decode_one<R>(in); });
  }

  void fail(std::int64_t index, std::exception_ptr error) noexcept override {
    ready_.put_error(index, std::move(error));
  }

  [[nodiscard]] bool has_next() const noexcept override { return ready_.has_next(); }
  [[nodiscard]] bool at_end() const noexcept override {
    return this->finished() && ready_.empty() && ready_.taken() >= source_.produced();
  }
  Item next() override { return ready_.next(); }

 private:
  RangeSource<Src, In> source_;
  std::int64_t window_;
  StreamedResults<R, Ordered> ready_;
};

// How a transport picks chunksize 0 ("automatic"): `per_worker` chunks per worker, `unknown`
// items per chunk when the input's length is unknown, at most `max`.
struct ChunkPolicy {
  std::int64_t per_worker;
  std::uint32_t unknown;
  std::int64_t max;
};

// The chunksize of a call: `requested`, or for 0 the policy's pick for `items` (-1: unknown)
// over `workers`. Never throws.
[[nodiscard]] MPP_API std::uint32_t pick_chunksize(std::size_t requested, std::int64_t items,
                                                   unsigned workers,
                                                   const ChunkPolicy& policy) noexcept;
// Throws std::invalid_argument(`too_large`) for a chunksize above 2^30 items, and for imap also
// ("imap chunksize must be at least 1") for 0.
MPP_API void check_chunksize(std::size_t chunksize, const char* too_large);
MPP_API void check_imap_chunksize(std::size_t chunksize, const char* too_large);

// How many items an imap of `chunksize` may have produced and not yet taken, over `workers`.
[[nodiscard]] inline std::int64_t imap_window(std::size_t chunksize, unsigned workers) noexcept {
  return static_cast<std::int64_t>(chunksize) * 4 * workers;
}

// Items in the range if it knows its size, else -1.
template <class Range>
std::int64_t range_size(Range& r) {
  if constexpr (std::ranges::sized_range<Range>) {
    return static_cast<std::int64_t>(std::ranges::size(r));
  } else {
    return -1;
  }
}

// map_async and friends copy their input when called. Throws what the range throws.
template <class In, class Range>
std::vector<In> copy_inputs(Range& inputs) {
  std::vector<In> copy;
  if constexpr (std::ranges::sized_range<Range>) copy.reserve(std::ranges::size(inputs));
  for (auto&& x : inputs) copy.push_back(x);
  return copy;
}

// The input of an imap: an lvalue range is borrowed (it must outlive the imap), an rvalue is
// moved in.
template <class Range>
using imap_source_t =
    std::conditional_t<std::is_lvalue_reference_v<Range>, Range, std::remove_cvref_t<Range>>;

}  // namespace mpp::detail
