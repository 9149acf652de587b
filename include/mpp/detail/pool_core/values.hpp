// mpp/detail/pool_core/values.hpp: how a pool's inputs and results become bytes and back, for both
// transports (forked workers, MPI ranks).
//
// Numbers and enums cross as their raw bytes: both ends run this same pool code in the same
// program image (a fork, or a rank of the same build, whose start-up handshake checks that), and
// the codec's own encoding of a number is its little-endian bytes anyway, so a chunk of them is
// one memcpy. Every other type goes through <mpp/codec.hpp> (Codable, encoded_size, encode_to,
// try_encode_to, decode_prefix: the five operations the pool needs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <type_traits>

#include "mpp/codec.hpp"
#include "mpp/detail/pool_core/buffer.hpp"
#include "mpp/errors.hpp"

namespace mpp::detail {

template <class T>
concept PoolCodable = mpp::codec::Codable<T>;

template <class T>
inline constexpr bool kRaw = std::is_arithmetic_v<T> || std::is_enum_v<T>;

// Appends v's encoding. Throws what the codec throws (std::bad_alloc, a user encoder's error).
template <class T>
void append_encoded(ByteBuffer& out, const T& v) {
  if constexpr (kRaw<T>) {
    std::memcpy(out.extend(sizeof(T)), &v, sizeof(T));
  } else if (const std::optional<std::size_t> n = mpp::codec::try_encode_to(out.spare(), v)) {
    // The buffer is reused from chunk to chunk, so its capacity usually suffices: one pass over
    // a vector of strings instead of encoded_size's and encode_to's two.
    out.commit(*n);
  } else {
    mpp::codec::encode_to(out.extend(mpp::codec::encoded_size(v)), v);
  }
}

// Decodes one value from the front of `in` and advances `in` past it. Throws
// SerializationError for truncated or malformed bytes, or what a user decoder throws.
template <class T>
T decode_one(std::span<const std::byte>& in) {
  if constexpr (kRaw<T>) {
    if (in.size() < sizeof(T)) throw SerializationError("truncated pool message");
    T v;
    std::memcpy(&v, in.data(), sizeof(T));
    in = in.subspan(sizeof(T));
    return v;
  } else {
    return mpp::codec::decode_prefix<T>(in);
  }
}

// Bytes every encoded input takes when that is the same for all values of In (numbers, tuples of
// them...), else 0: then RangeSource records where each input ends (see Batch::produce).
template <class In>
inline constexpr std::uint64_t kInputSize = [] {
  if constexpr (kRaw<In>) {
    return std::uint64_t{sizeof(In)};
  } else {
    // The codec's own static size fact (a fixed-size value always encodes to that many bytes).
    return std::uint64_t{::mpp::codec::detail::fixed_size<In>().value_or(0)};
  }
}();

}  // namespace mpp::detail
