// mpp/detail/pool_engine.hpp: the type-erased core of mpp::Pool (implemented in src/pool/).
//
// The templates in <mpp/pool.hpp> turn a call (map, imap, apply...) into a Batch: an object that
// produces chunks of encoded inputs on demand and consumes encoded results. The Engine owns the
// worker processes and the shared-memory channels, and moves chunks and results between them. It
// is driven by the thread that calls into the pool (there is no background thread): every wait
// pumps it.
//
// Worker side: a chunk names a ChunkFn, a pointer to a template trampoline instantiated for the
// user's callable and types. Workers are forks of the same program image, so that pointer is valid
// in every worker; the callable itself is rebuilt there from `fstate` (empty callables, function
// pointers) or, for callables with state, read at `context` in a worker forked for that call.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mpp/detail/exception_info.hpp"

namespace mpp {
struct PoolOptions;
struct PoolProgress;
}  // namespace mpp

namespace mpp::detail {

// A growable byte buffer that, unlike std::vector<std::byte>, does not zero what it grows into:
// every byte the pool puts in it is written right after. Not copyable; moves are cheap.
class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(ByteBuffer&& o) noexcept
      : data_(std::move(o.data_)),
        size_(std::exchange(o.size_, 0)),
        cap_(std::exchange(o.cap_, 0)) {}
  ByteBuffer& operator=(ByteBuffer&& o) noexcept {
    data_ = std::move(o.data_);
    size_ = std::exchange(o.size_, 0);
    cap_ = std::exchange(o.cap_, 0);
    return *this;
  }
  [[nodiscard]] std::byte* data() noexcept { return data_.get(); }
  [[nodiscard]] const std::byte* data() const noexcept { return data_.get(); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  void clear() noexcept { size_ = 0; }
  // Sets the size; new bytes are uninitialized. Throws std::bad_alloc.
  void resize(std::size_t n) {
    reserve(n);
    size_ = n;
  }
  void reserve(std::size_t n) {
    if (n <= cap_) return;
    const std::size_t cap = std::max(n, cap_ * 2);
    std::unique_ptr<std::byte[]> p(new std::byte[cap]);  // default-initialized: not zeroed
    if (size_ != 0) std::memcpy(p.get(), data_.get(), size_);
    data_ = std::move(p);
    cap_ = cap;
  }
  // Grows by n uninitialized bytes and returns where they start.
  std::byte* extend(std::size_t n) {
    if (size_ + n > cap_) reserve(size_ + n);
    std::byte* p = data_.get() + size_;
    size_ += n;
    return p;
  }
  // The uninitialized bytes between size() and the capacity, for a writer that learns how many
  // it used afterwards (codec::try_encode_to); commit(n) then grows the size by those n.
  [[nodiscard]] std::span<std::byte> spare() noexcept {
    return {data_.get() + size_, cap_ - size_};
  }
  void commit(std::size_t n) noexcept { size_ += n; }
  void append(const void* p, std::size_t n) {
    if (n != 0) std::memcpy(extend(n), p, n);
  }

 private:
  std::unique_ptr<std::byte[]> data_;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
};

// Runs in the worker. Everything it reads is worker-local memory.
struct ChunkCall {
  const std::byte* in = nullptr;  // encoded inputs, one after the other
  std::size_t in_len = 0;
  std::int64_t first_index = 0;  // input index of the chunk's first item
  std::uint32_t count = 0;       // items in the chunk
  // Indexes not to run, ascending: each killed a worker before, and its bytes are not in `in`.
  const std::int64_t* skip = nullptr;
  std::uint32_t nskip = 0;
  const unsigned char* fstate = nullptr;  // bytes of a trivially copyable callable
  std::uintptr_t context = 0;             // address of the callable (fork-per-call workers)
  std::uint64_t seed = 0;                 // PoolOptions::seed
  ByteBuffer* out = nullptr;              // encoded results of the items that succeeded
  ByteBuffer* errors = nullptr;           // encoded failures (see record_failure)
  std::uint32_t nerrors = 0;
  // The index being decoded or run, stored before its decoding starts: a worker that dies is
  // blamed for it. Read by the parent (after the death, or to time task_timeout).
  std::atomic<std::int64_t>* current = nullptr;
};
using ChunkFn = void (*)(ChunkCall&) noexcept;
inline constexpr std::size_t kMaxFunctionState = 16;

// Worker side: appends "item `pos` of the chunk failed" with the exception in flight (call only
// inside a catch block). Never throws.
void record_failure(ChunkCall& call, std::uint32_t pos) noexcept;

// Worker side, both backends: the type name and message a failed task reports for the exception
// in flight. Like describe_current_exception, except that mpp::SystemExit says its code ("exit
// code 3"): in a pool task it fails the item and leaves the worker running (see pool.hpp).
[[nodiscard]] ExceptionInfo describe_task_failure() noexcept;

// task_seed() support: the worker sets these per item.
extern thread_local std::uint64_t t_seed_base;
extern thread_local std::int64_t t_task_index;
[[nodiscard]] std::uint64_t mix_seed(std::uint64_t base, std::int64_t index) noexcept;

// Parent side: one chunk's outcome, as it arrived.
struct Delivery {
  std::int64_t first_index = 0;
  std::uint32_t count = 0;
  std::span<const std::byte> results;  // encoded results of the items that succeeded, in order
  std::span<const std::byte> errors;
  std::uint32_t nerrors = 0;
  std::span<const std::int64_t> skipped;  // indexes already failed through Batch::fail
  pid_t pid = 0;
};

// Parent side: decoded failure records of a Delivery, ordered by position.
struct RemoteFailure {
  std::uint32_t pos = 0;
  std::string type_name;
  std::string message;
};
[[nodiscard]] std::vector<RemoteFailure> decode_failures(const Delivery& d);

// One pool call. Engine-owned bookkeeping fields are only touched by the engine.
class Batch {
 public:
  virtual ~Batch() = default;

  // Appends the next chunk's encoded inputs to `payload` and sets first_index; returns the item
  // count, 0 once the input is exhausted. Unless every input takes `input_size` bytes, appends
  // to `ends` (empty on entry) where each input's bytes end, relative to the chunk's first input:
  // the engine needs that only to leave out an input a worker died on. May throw (the input
  // range threw).
  virtual std::uint32_t produce(ByteBuffer& payload, std::int64_t& first_index,
                                std::vector<std::uint64_t>& ends) = 0;
  // False while the batch must not take more work (a full imap window).
  [[nodiscard]] virtual bool may_produce() const { return true; }
  // A chunk's results arrived. Never throws (decode errors become per-item failures).
  virtual void deliver(const Delivery& d) noexcept = 0;
  // Item `index` failed without a result (worker lost, pool terminated). Never throws.
  virtual void fail(std::int64_t index, std::exception_ptr error) noexcept = 0;

  [[nodiscard]] bool finished() const noexcept { return exhausted && in_flight == 0; }

  // Set by the template that builds the batch.
  ChunkFn fn = nullptr;
  unsigned char fstate[kMaxFunctionState] = {};
  std::uintptr_t context = 0;
  std::uint32_t chunksize = 1;
  std::uint64_t input_size = 0;  // bytes of every encoded input if fixed, else 0 (see produce)
  bool show_progress = false;    // map/imap progress bar and callback
  std::int64_t total = -1;       // items in the input if known, for progress

  // Engine bookkeeping.
  std::size_t in_flight = 0;       // chunks handed to the engine, results not yet delivered
  bool exhausted = false;          // no more chunks will be produced
  bool abandoned = false;          // the caller is gone: drop results, produce nothing more
  std::exception_ptr batch_error;  // what ended it early: the input range threw, terminate()
  std::int64_t items_done = 0;     // for progress
  bool progress_final = false;     // the last progress report was made
  std::chrono::steady_clock::time_point started{};
  std::chrono::steady_clock::time_point last_progress{};
};

class Engine;

// Forks `processes` workers (0 = cpu count). Throws std::invalid_argument for bad options,
// std::system_error when the OS refuses.
[[nodiscard]] std::shared_ptr<Engine> make_engine(const PoolOptions& options, unsigned processes);
// Adds a batch; throws std::logic_error after close()/terminate().
void engine_submit(Engine& e, std::shared_ptr<Batch> batch);
// Pumps until done() or the deadline; returns done()'s last value. Blocks.
bool engine_wait(
    Engine& e, const std::function<bool()>& done,
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max());
// Makes whatever progress is possible now, without blocking.
void engine_poll(Engine& e);
[[nodiscard]] unsigned engine_workers(const Engine& e) noexcept;
[[nodiscard]] bool engine_accepting(const Engine& e) noexcept;
void engine_close(Engine& e) noexcept;
void engine_join(Engine& e);
void engine_terminate(Engine& e) noexcept;
// Pids of the live workers (tests, diagnostics).
[[nodiscard]] std::vector<pid_t> engine_pids(const Engine& e);
[[nodiscard]] std::exception_ptr engine_broken(const Engine& e) noexcept;

}  // namespace mpp::detail
