// The non-template parts of the pool core, shared by mpp::Pool and mpp::mpi::Pool: the task
// context behind task_seed(), failure records (written by workers, read by the parent), the
// chunk-size policy, and the parent-side helpers of src/pool/core.hpp.
#include "pool/core.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "mpp/detail/pool_core/task.hpp"
#include "mpp/errors.hpp"
#include "mpp/process.hpp"  // mpp::SystemExit

namespace mpp::detail {

thread_local std::uint64_t t_seed_base = 0;
thread_local std::int64_t t_task_index = -1;

namespace {

std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

std::uint64_t mix_seed(std::uint64_t base, std::int64_t index) noexcept {
  return splitmix64(base ^ splitmix64(static_cast<std::uint64_t>(index)));
}

ExceptionInfo describe_task_failure() noexcept {
  ExceptionInfo info = describe_current_exception();
  try {
    throw;
  } catch (const SystemExit& e) {
    try {
      info.message = "exit code " + std::to_string(e.code);
    } catch (...) {
    }
  } catch (...) {
  }
  return info;
}

// A failure record: u32 position, u32 length + type name, u32 length + message (host byte order:
// both ends run this same program on one architecture).
void record_failure(TaskCall& call, std::uint32_t pos) noexcept {
  if (call.nerrors == kBrokenRecords) return;
  const std::size_t old = call.errors->size();
  try {
    auto info = describe_task_failure();
    auto put = [&](const void* p, std::size_t n) { call.errors->append(p, n); };
    const auto tl = static_cast<std::uint32_t>(info.type_name.size());
    const auto ml = static_cast<std::uint32_t>(info.message.size());
    put(&pos, sizeof pos);
    put(&tl, sizeof tl);
    put(info.type_name.data(), tl);
    put(&ml, sizeof ml);
    put(info.message.data(), ml);
    ++call.nerrors;
  } catch (...) {
    // Without its record the item would shift every later result onto the wrong index: poison
    // the count instead, which the parent rejects as a broken chunk.
    call.errors->resize(old);
    call.nerrors = kBrokenRecords;
  }
}

void decode_failures(const ChunkReply& r,
                     std::vector<std::pair<std::uint32_t, std::exception_ptr>>& out) {
  out.clear();
  if (r.nerrors > r.count) {
    throw SerializationError(
        "a chunk's failure records were lost (its worker ran out of memory describing them)");
  }
  std::span<const std::byte> in = r.records;
  auto take = [&](void* p, std::size_t n) {
    if (in.size() < n) throw SerializationError("truncated pool error record");
    std::memcpy(p, in.data(), n);
    in = in.subspan(n);
  };
  out.reserve(r.nerrors);
  for (std::uint32_t i = 0; i < r.nerrors; ++i) {
    std::uint32_t pos = 0;
    std::uint32_t n = 0;
    std::string type;
    std::string message;
    take(&pos, sizeof pos);
    take(&n, sizeof n);
    type.resize(n);
    take(type.data(), n);
    take(&n, sizeof n);
    message.resize(n);
    take(message.data(), n);
    if (pos >= r.count) throw SerializationError("pool failure record out of range");
    message += r.where;
    out.emplace_back(
        pos, std::make_exception_ptr(RemoteError(std::move(type), std::move(message), r.pid,
                                                 r.first_index + static_cast<std::int64_t>(pos))));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
}

void deliver_reply(BatchBase& b, const ChunkReply& r,
                   std::vector<std::pair<std::uint32_t, std::exception_ptr>>& scratch) noexcept {
  Delivery d;
  d.first_index = r.first_index;
  d.count = r.count;
  d.results = r.results;
  d.skipped = r.skipped;
  if (r.nerrors != 0) {
    try {
      decode_failures(r, scratch);
      d.failures = scratch;
    } catch (...) {
      d.broken = std::current_exception();  // malformed records: no position can be trusted
    }
  }
  b.deliver(d);
}

std::uint32_t produce_chunk(BatchBase& b, ByteBuffer& payload, std::int64_t& first,
                            std::vector<std::uint64_t>& ends) noexcept {
  if (b.abandoned) b.exhausted = true;
  if (b.exhausted || !b.may_produce()) return 0;
  std::uint32_t n = 0;
  try {
    n = b.produce(payload, first, ends);
  } catch (...) {
    b.batch_error = std::current_exception();
    n = 0;
  }
  if (n == 0) b.exhausted = true;
  return n;
}

std::uint32_t pick_chunksize(std::size_t requested, std::int64_t items, unsigned workers,
                             const ChunkPolicy& policy) noexcept {
  if (requested != 0) return static_cast<std::uint32_t>(std::min<std::size_t>(requested, 1u << 30));
  if (items < 0) return policy.unknown;
  const std::int64_t per = static_cast<std::int64_t>(std::max(workers, 1u)) * policy.per_worker;
  return static_cast<std::uint32_t>(
      std::clamp<std::int64_t>((items + per - 1) / per, 1, policy.max));
}

void check_chunksize(std::size_t chunksize, const char* too_large) {
  if (chunksize > (std::size_t{1} << 30)) throw std::invalid_argument(too_large);
}

void check_imap_chunksize(std::size_t chunksize, const char* too_large) {
  if (chunksize == 0) throw std::invalid_argument("imap chunksize must be at least 1");
  check_chunksize(chunksize, too_large);
}

}  // namespace mpp::detail
