// mpp/detail/pool_core/task.hpp: the worker side of a pool task, one implementation for both
// transports (forked workers, MPI ranks): what a worker is handed for one chunk (TaskCall), how it
// runs the chunk's items (run_items), how a failed item is reported (record_failure, in the
// failure-record format that src/pool/core.cpp also decodes), and the task context that
// mpp::task_seed() reads.
//
// A chunk names a TaskFn: a template trampoline instantiated for the user's callable and types.
// The local transport sends its address (workers are forks of the same image), the MPI transport
// an id its registry maps to it; either way the trampoline rebuilds the callable and calls
// run_items.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>

#include "mpp/detail/exception_info.hpp"
#include "mpp/detail/export.hpp"
#include "mpp/detail/pool_core/buffer.hpp"
#include "mpp/detail/pool_core/values.hpp"

namespace mpp::detail {

// Task context, set by run_items per item. Read by task_seed() below.
extern thread_local MPP_API std::uint64_t t_seed_base;
extern thread_local MPP_API std::int64_t t_task_index;
[[nodiscard]] MPP_API std::uint64_t mix_seed(std::uint64_t base, std::int64_t index) noexcept;

}  // namespace mpp::detail

namespace mpp {

// Inside a pool task (mpp::Pool or mpp::mpi::Pool): a seed derived from the pool's seed option and
// the task's input index (the same for any number of workers or ranks). Outside a task: derived
// from the seed 0 and index -1. Never throws.
[[nodiscard]] inline std::uint64_t task_seed() noexcept {
  return detail::mix_seed(detail::t_seed_base, detail::t_task_index);
}

}  // namespace mpp

namespace mpp::detail {

using AnyFn = void (*)();

// Worker side: one chunk to run. Everything it points to is worker-local memory.
struct TaskCall {
  std::span<const std::byte> in;  // encoded inputs, one after the other
  std::int64_t first_index = 0;   // input index of the chunk's first item
  std::uint32_t count = 0;        // items in the chunk
  // Indexes not to run, ascending: each killed a worker before, and its bytes are not in `in`.
  std::span<const std::int64_t> skip{};
  std::uint64_t seed = 0;        // the pool's seed option, base of task_seed()
  ByteBuffer* out = nullptr;     // encoded results of the items that succeeded
  ByteBuffer* errors = nullptr;  // failure records (see record_failure)
  std::uint32_t nerrors = 0;     // kBrokenRecords: a record could not be written
  // The index being decoded or run, stored before its decoding starts, -1 outside the items: the
  // local parent blames a worker's death on it (and times task_timeout with it), an MPI rank's
  // crash report names it. Never null.
  std::atomic<std::int64_t>* current = nullptr;
  // Where the trampoline finds the callable (the transport decides which one it fills):
  const unsigned char* fstate = nullptr;  // bytes of a trivially copyable callable (local)
  std::uintptr_t context = 0;             // its address (local, fork-per-call workers)
  AnyFn fn = nullptr;                     // a registered function pointer (MPI)
};
using TaskFn = void (*)(TaskCall&) noexcept;

// TaskCall::nerrors when a failure record could not be written: without it, results would shift
// onto the wrong indexes, so the parent fails the whole chunk instead.
inline constexpr std::uint32_t kBrokenRecords = 0xffffffffU;

// Appends "item `pos` of the chunk failed" with the exception in flight (call only inside a catch
// block). Never throws: out of memory, it sets nerrors to kBrokenRecords.
MPP_API void record_failure(TaskCall& call, std::uint32_t pos) noexcept;

// The type name and message a failed task reports for the exception in flight. Like
// describe_current_exception, except that mpp::SystemExit says its code ("exit code 3"): in a
// pool task it fails the item and leaves the worker running (see pool.hpp).
[[nodiscard]] ExceptionInfo describe_task_failure() noexcept;

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

// Runs the items of one chunk with `f`: decodes each input, appends each result to c.out, records
// each failure in c.errors. An input whose decoder throws fails, and so do the ones after it (they
// cannot be located without decoding it). Never throws (out of memory, items stay without an
// outcome, which the parent reports).
template <class Fd, class In, class R, bool Star>
void run_items(Fd& f, TaskCall& c) noexcept {
  std::span<const std::byte> in = c.in;
  t_seed_base = c.seed;
  if constexpr (kRaw<R>) {
    try {
      c.out->reserve(c.out->size() + c.count * sizeof(R));
    } catch (...) {
    }
  }
  std::size_t next_skip = 0;
  auto skipped = [&](std::int64_t idx) {
    if (next_skip < c.skip.size() && c.skip[next_skip] == idx) {
      // A worker died on it before: the parent failed it and left its bytes out of the chunk.
      ++next_skip;
      return true;
    }
    return false;
  };
  for (std::uint32_t i = 0; i < c.count; ++i) {
    const std::int64_t idx = c.first_index + static_cast<std::int64_t>(i);
    if (skipped(idx)) continue;
    // Say which item this is BEFORE decoding it: if its decoder crashes the worker, the parent
    // (or the crash report) blames this index, not the one before. One relaxed store, no syscall.
    c.current->store(idx, std::memory_order_relaxed);
    t_task_index = idx;
    bool decoded = false;
    try {
      In x = decode_one<In>(in);
      decoded = true;
      if constexpr (std::is_void_v<R>) {
        invoke_item<Fd, In, Star>(f, x);
      } else {
        append_encoded(*c.out, static_cast<const R&>(invoke_item<Fd, In, Star>(f, x)));
      }
    } catch (...) {
      record_failure(c, i);
      if (!decoded) {
        // The rest of the chunk cannot be located without this item: fail it all.
        for (std::uint32_t j = i + 1; j < c.count; ++j) {
          if (!skipped(c.first_index + static_cast<std::int64_t>(j))) record_failure(c, j);
        }
        break;
      }
    }
  }
  t_task_index = -1;
  c.current->store(-1, std::memory_order_relaxed);
}

}  // namespace mpp::detail
