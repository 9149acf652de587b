// mpp/detail/mpi_batch.hpp: template internals of mpp::mpi::Pool: the worker-side trampolines,
// callable checks, and the rank-0 batches that turn results back into values (ordering, errors).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "mpp/codec.hpp"
#include "mpp/detail/mpi_core.hpp"
#include "mpp/detail/results.hpp"
#include "mpp/errors.hpp"

namespace mpp::mpi::detail {

template <class Fd>
inline constexpr bool kFunctionPointer =
    std::is_pointer_v<Fd>&& std::is_function_v<std::remove_pointer_t<Fd>>;

// An empty callable is named by its type alone, so a worker can make its own copy.
template <class Fd>
inline constexpr bool kEmptyCallable = std::is_empty_v<Fd> &&
                                       (std::is_default_constructible_v<Fd> ||
                                        std::is_trivially_copyable_v<Fd>);

template <class Fd>
inline constexpr bool kCrossesMachines = kFunctionPointer<Fd> || kEmptyCallable<Fd>;

template <class Fd>
Fd make_callable(AnyFn fn) noexcept {
  if constexpr (kFunctionPointer<Fd>) {
    return reinterpret_cast<Fd>(fn);
  } else if constexpr (std::is_default_constructible_v<Fd>) {
    return Fd{};
  } else {
    // An empty, trivially copyable type has no value to speak of: any byte pattern is it.
    return std::bit_cast<Fd>(std::array<unsigned char, sizeof(Fd)>{});
  }
}

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

template <class T>
void append_encoded(std::vector<std::byte>& out, const T& v) {
  const std::size_t old = out.size();
  out.resize(old + codec::encoded_size(v));
  codec::encode_to(out.data() + old, v);
}

// The code a worker runs for one chunk. Its id is the hash of its mangled name, registered on
// every rank before main by the static member below.
template <class Fd, class In, class R, bool Star>
struct Trampoline {
  static void run(TaskCall& c) noexcept {
    Fd f = make_callable<Fd>(c.fn);
    std::uint32_t i = 0;
    for (; i < c.count; ++i) {
      const std::int64_t idx = c.first_index + static_cast<std::int64_t>(i);
      // Before decoding: if the item's decoder crashes the rank, its crash report names this
      // item, not the one before it.
      begin_item(c, idx);
      bool decoded = false;
      try {
        In x = codec::decode_prefix<In>(c.in);
        decoded = true;
        if constexpr (std::is_void_v<R>) {
          invoke_item<Fd, In, Star>(f, x);
        } else {
          append_encoded(*c.out, static_cast<const R&>(invoke_item<Fd, In, Star>(f, x)));
        }
      } catch (...) {
        record_failure(c, i);
        // Without this item's bytes the rest of the chunk cannot be located: fail it all.
        if (!decoded) {
          for (std::uint32_t j = i + 1; j < c.count; ++j) record_failure(c, j);
          break;
        }
      }
    }
    end_chunk();
  }
  static inline const std::uint64_t id =
      register_trampoline(typeid(Trampoline).name(), typeid(Fd).name(), &run);
};

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

  std::uint32_t produce(std::vector<std::byte>& payload, std::uint32_t chunksize) {
    std::uint32_t n = 0;
    while (n < chunksize && it_ != end_) {
      const In& x = *it_;
      append_encoded(payload, x);
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

// A Delivery as mpp::detail::deliver_chunk sees it (no skipped items: a lost rank ends the job).
inline mpp::detail::ChunkOutcome outcome_of(const Delivery& d) noexcept {
  return mpp::detail::ChunkOutcome{d.first_index, d.count, {}};
}

// The failures a rank reported in a Delivery (already errors, by ascending position), as
// mpp::detail::deliver_chunk asks for them.
class DeliveryFailures {
 public:
  explicit DeliveryFailures(const Delivery& d) noexcept : failures_(d.failures) {}
  [[nodiscard]] static std::exception_ptr broken() noexcept { return nullptr; }
  [[nodiscard]] std::uint32_t next_pos() const noexcept {
    return next_ < failures_.size() ? failures_[next_].first : UINT32_MAX;
  }
  std::exception_ptr take() noexcept {
    const std::size_t i = next_++;
    while (next_ < failures_.size() && failures_[next_].first <= failures_[i].first) ++next_;
    return failures_[i].second;
  }

 private:
  std::span<const std::pair<std::uint32_t, std::exception_ptr>> failures_;
  std::size_t next_ = 0;
};

template <class T>
class ResultBatch : public Batch {
 public:
  // Moves the outcome out, or rethrows the first error by input index. Only once finished().
  virtual T take() = 0;
  [[nodiscard]] virtual bool has_error() const noexcept = 0;
};

// map, map_async, starmap, apply_async: all results are kept until the call completes.
// Out is std::vector<R> (map), R (apply) or void.
template <class In, class R, class Src, class Out>
class CollectBatch final : public ResultBatch<Out> {
 public:
  template <class Arg>
  explicit CollectBatch(Arg&& r) : source_(std::forward<Arg>(r)) {}

  std::uint32_t produce(std::vector<std::byte>& payload, std::int64_t& first_index) override {
    first_index = next_;
    const std::uint32_t n = source_.produce(payload, this->chunksize);
    next_ += n;
    results_.resize(next_);
    return n;
  }

  void deliver(const Delivery& d) noexcept override {
    std::span<const std::byte> in = d.results;
    mpp::detail::deliver_chunk(results_, outcome_of(d), DeliveryFailures(d), [&] {
      if constexpr (!std::is_void_v<R>) return codec::decode_prefix<R>(in);
    });
  }

  void fail(std::int64_t index, std::exception_ptr error) noexcept override {
    results_.set_error(index, std::move(error));
  }

  [[nodiscard]] bool has_error() const noexcept override {
    return this->batch_error != nullptr || results_.has_error();
  }

  Out take() override {
    return results_.take(this->batch_error, "mpp::mpi::Pool result already retrieved");
  }

 private:
  RangeSource<Src, In> source_;
  std::int64_t next_ = 0;
  mpp::detail::CollectedResults<R, Out> results_;
};

// imap / imap_unordered: results wait until the caller takes them; at most `window` items are
// produced and not yet taken, so any input length streams in bounded memory.
template <class R>
class StreamBatch : public Batch {
 public:
  using Item = mpp::detail::StreamItem<R>;
  [[nodiscard]] virtual bool has_next() const noexcept = 0;  // next() will not block
  [[nodiscard]] virtual bool at_end() const noexcept = 0;
  virtual Item next() = 0;
};

template <class In, class R, class Src, bool Ordered>
class ImapBatch final : public StreamBatch<R> {
  using Item = typename StreamBatch<R>::Item;

 public:
  template <class Arg>
  ImapBatch(Arg&& r, std::int64_t window) : source_(std::forward<Arg>(r)), window_(window) {}

  std::uint32_t produce(std::vector<std::byte>& payload, std::int64_t& first_index) override {
    first_index = next_;
    const std::uint32_t n = source_.produce(payload, this->chunksize);
    next_ += n;
    return n;
  }
  [[nodiscard]] bool may_produce() const override { return next_ - ready_.taken() < window_; }

  void deliver(const Delivery& d) noexcept override {
    std::span<const std::byte> in = d.results;
    mpp::detail::deliver_chunk(ready_, outcome_of(d), DeliveryFailures(d),
                               [&] { return codec::decode_prefix<R>(in); });
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
  mpp::detail::StreamedResults<R, Ordered> ready_;
};

template <class Range>
std::int64_t range_size(Range& r) {
  if constexpr (std::ranges::sized_range<Range>) {
    return static_cast<std::int64_t>(std::ranges::size(r));
  } else {
    return -1;
  }
}

}  // namespace mpp::mpi::detail
