// The codec's cold paths (error construction) and the encodings of mpp's own error types.
#include "mpp/codec.hpp"

#include <cstdint>
#include <string>

namespace mpp::codec::detail {

// Out of line and noinline so the decoders' hot loops carry a call, not string building.
[[noreturn, gnu::noinline, gnu::cold]] void throw_truncated(std::size_t needed,
                                                            std::size_t remaining) {
  throw SerializationError("mpp::codec: truncated input: needed " + std::to_string(needed) +
                           " more bytes, " + std::to_string(remaining) + " left");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_bad_varint() {
  throw SerializationError("mpp::codec: malformed length (varint longer than 64 bits)");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_bad_bool(unsigned value) {
  throw SerializationError("mpp::codec: invalid bool byte " + std::to_string(value) +
                           " (must be 0 or 1)");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_bad_tag(std::uint64_t tag,
                                                          std::size_t alternatives) {
  throw SerializationError("mpp::codec: unknown variant tag " + std::to_string(tag) +
                           " (type has " + std::to_string(alternatives) + " alternatives)");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_too_long(std::uint64_t count,
                                                           std::size_t remaining) {
  throw SerializationError("mpp::codec: length " + std::to_string(count) + " cannot fit in the " +
                           std::to_string(remaining) + " bytes left of the input");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_too_deep(unsigned limit) {
  throw SerializationError("mpp::codec: value nests more than " + std::to_string(limit) +
                           " user-type levels (mpp::codec::kMaxDepth)");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_duplicate_key() {
  throw SerializationError("mpp::codec: duplicate key in a map or set");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_trailing(std::size_t extra) {
  throw SerializationError("mpp::codec: " + std::to_string(extra) +
                           " trailing bytes after the value");
}

[[noreturn, gnu::noinline, gnu::cold]] void throw_encode(const char* what) {
  throw SerializationError(std::string("mpp::codec: cannot encode: ") + what);
}

// Wire layout of both errors is spelled out in docs/wire-format.md; pid travels as int32 (pid_t
// is int on Linux) and the task index as int64, so the layout does not depend on the platform's
// pid_t width beyond that assertion.
static_assert(sizeof(pid_t) == sizeof(std::int32_t), "pid_t is encoded as a 32-bit integer");

std::size_t Codec<RemoteError, Kind::kError>::size(const RemoteError& e) {
  return encoded_size(e.type_name()) + encoded_size(e.message()) + sizeof(std::int32_t) +
         sizeof(std::int64_t);
}

std::byte* Codec<RemoteError, Kind::kError>::encode(std::byte* out, const RemoteError& e) noexcept {
  out = encode_to(out, e.type_name());
  out = encode_to(out, e.message());
  out = encode_to(out, static_cast<std::int32_t>(e.pid()));
  return encode_to(out, e.task_index());
}

RemoteError Codec<RemoteError, Kind::kError>::make(Reader& r) {
  auto type_name = decode_value<std::string>(r);
  auto message = decode_value<std::string>(r);
  const auto pid = decode_value<std::int32_t>(r);
  const auto task = decode_value<std::int64_t>(r);
  return RemoteError(std::move(type_name), std::move(message), static_cast<pid_t>(pid), task);
}

std::size_t Codec<WorkerLost, Kind::kError>::size(const WorkerLost& e) {
  return sizeof(std::int32_t) + sizeof(std::int64_t) + 2 * sizeof(std::int32_t) +
         encoded_size(std::string_view(e.what()));
}

std::byte* Codec<WorkerLost, Kind::kError>::encode(std::byte* out, const WorkerLost& e) noexcept {
  out = encode_to(out, static_cast<std::int32_t>(e.pid()));
  out = encode_to(out, e.task_index());
  out = encode_to(out, static_cast<std::int32_t>(e.signal()));
  out = encode_to(out, static_cast<std::int32_t>(e.exit_code()));
  return encode_to(out, std::string_view(e.what()));
}

WorkerLost Codec<WorkerLost, Kind::kError>::make(Reader& r) {
  const auto pid = decode_value<std::int32_t>(r);
  const auto task = decode_value<std::int64_t>(r);
  const auto sig = decode_value<std::int32_t>(r);
  const auto code = decode_value<std::int32_t>(r);
  const auto what = decode_value<std::string>(r);
  return WorkerLost(static_cast<pid_t>(pid), task, sig, code, what);
}

}  // namespace mpp::codec::detail
