// mpp/detail/pool_codec.hpp: how the pool turns arguments and results into bytes.
//
// The pool needs five operations of <mpp/codec.hpp> (Codable, encoded_size, encode_to,
// try_encode_to, decode_prefix); this header names them in one place. Numbers and enums bypass the
// codec (see kRaw in pool.hpp): both ends of the pool's rings are the same program, so their raw
// bytes are already a valid encoding.
#pragma once

#include "mpp/codec.hpp"

namespace mpp::detail::pool_codec {
template <class T>
concept Codable = mpp::codec::Codable<T>;
using mpp::codec::decode_prefix;
using mpp::codec::encode_to;
using mpp::codec::encoded_size;
using mpp::codec::try_encode_to;
}  // namespace mpp::detail::pool_codec
