// The pool core's parent-side helpers that both engines (src/pool/engine.cpp for mpp::Pool,
// src/mpi/engine.cpp for mpp::mpi::Pool) share: taking a chunk from a batch, handing a chunk's
// reply to its batch, failing a chunk's items, and the least-loaded pick of the next worker.
// What differs between them (how bytes move, how a lost worker is noticed, how timeouts are
// measured) stays in each engine.
#pragma once

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "mpp/detail/export.hpp"
#include "mpp/detail/pool_core/batch.hpp"
#include "mpp/detail/pool_core/buffer.hpp"

namespace mpp::detail {

// One chunk's reply as a worker sent it: its results, and its failure records (record_failure's
// format, pool_core/task.hpp).
struct ChunkReply {
  std::int64_t first_index = 0;
  std::uint32_t count = 0;
  std::span<const std::byte> results;
  std::span<const std::byte> records;
  std::uint32_t nerrors = 0;
  std::span<const std::int64_t> skipped;  // indexes already failed, ascending
  pid_t pid = 0;                          // the worker, for its RemoteErrors
  std::string_view where;                 // appended to every failure's message ("" for none)
};

// The failures of `r` as RemoteErrors (its pid, the item's index, the message plus `where`), by
// ascending position, into `out` (cleared first). Throws SerializationError for records that are
// truncated, out of range or were lost (kBrokenRecords), std::bad_alloc.
void decode_failures(const ChunkReply& r,
                     std::vector<std::pair<std::uint32_t, std::exception_ptr>>& out);

// Hands `r` to `b` (every position one outcome; unreadable failure records fail every position).
// `scratch` holds the decoded failures between calls. Never throws.
MPP_API void deliver_reply(
    BatchBase& b, const ChunkReply& r,
    std::vector<std::pair<std::uint32_t, std::exception_ptr>>& scratch) noexcept;

// Asks `b` for its next chunk, appended to `payload` (see BatchBase::produce). Returns its item
// count; 0 when `b` has nothing to give now (a full imap window) or ever: then `exhausted` is
// set (an abandoned batch gives nothing more), and `batch_error` holds what the range threw.
// Never throws.
MPP_API std::uint32_t produce_chunk(BatchBase& b, ByteBuffer& payload, std::int64_t& first,
                                    std::vector<std::uint64_t>& ends) noexcept;

// Fails each item of the chunk [first, first + count) not in `skipped` (ascending) with
// error_for(index). Leaves in_flight alone.
template <class ErrorFor>
void fail_items(BatchBase& b, std::int64_t first, std::uint32_t count,
                std::span<const std::int64_t> skipped, ErrorFor&& error_for) {
  std::size_t s = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::int64_t idx = first + static_cast<std::int64_t>(i);
    while (s < skipped.size() && skipped[s] < idx) ++s;
    if (s < skipped.size() && skipped[s] == idx) continue;
    b.fail(idx, error_for(idx));
  }
}

// The dispatch policy of both engines: of the workers that can take a chunk now (`usable`), the
// one holding the fewest (`load`); the first of them on a tie. nullptr when none can.
template <class It, class Usable, class Load>
auto least_loaded(It first, It last, Usable&& usable, Load&& load) -> decltype(&*first) {
  decltype(&*first) best = nullptr;
  for (; first != last; ++first) {
    if (!usable(*first)) continue;
    if (best == nullptr || load(*first) < load(*best)) best = &*first;
  }
  return best;
}

}  // namespace mpp::detail
