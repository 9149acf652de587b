// mpp/codec.hpp: how values cross process boundaries (arguments, results, queue items).
//
// What: a compact binary encoding of C++ values, designed so that the common cases cost about a
// memcpy. `encode_to` writes a value into a caller-sized buffer (for instance a slot of a shared-
// memory ring), `try_encode_to` into a reused buffer that may be too small (one pass over a
// vector of strings), `decode`/`decode_prefix` rebuild it from bytes written by another process.
// The byte layout is specified in docs/wire-format.md (version kWireVersion).
//
// Types that travel with no user code (API.md section 6): arithmetic types (bool, char, ...),
// enums (including std::byte), std::string (and the other basic_string character types),
// std::vector, std::array, std::pair, std::tuple, std::optional, std::variant (with
// std::monostate), std::map/multimap, std::unordered_map/unordered_multimap, std::set/multiset,
// std::unordered_set/unordered_multiset, std::chrono::duration, mpp::RemoteError, mpp::WorkerLost,
// nested arbitrarily, and aggregates (structs with public members and no constructors, up to 32
// members, no base classes with members, no bit-fields) whose members all travel. A trivially
// copyable aggregate of plain members travels as its object bytes, so a vector of them is one
// memcpy. std::string_view also travels; decoding one yields a view INTO the input buffer
// (zero-copy, e.g. straight out of shared memory), valid only while that buffer is.
//
// The customization point, for every other class (private members, invariants, recursion):
//
//   class Point { ... std::string name_; std::vector<int> xs_;
//     friend struct mpp::codec::Fields<Point>; };
//   template <> struct mpp::codec::Fields<Point> {
//     static auto tie(auto& p) { return std::tie(p.name_, p.xs_); }  // const and non-const p
//   };
//
// The type must be default-constructible; decoding default-constructs it and then decodes each
// tied member in order. Fields<T> takes priority over the automatic aggregate encoding. Recursive
// types (a tree node holding std::vector<Node>) must use Fields; at most kMaxDepth Fields levels
// may nest in one value, checked in both directions.
//
// mpp::RemoteError and mpp::WorkerLost have no default constructor, so they decode alone or
// inside std::vector, std::optional or std::variant (e.g. std::variant<R, mpp::RemoteError>).
// Enum values are not range-checked: a decoded enum holds whatever integer was sent.
//
// Cannot travel (compile error naming the type and how to opt in): raw pointers, references,
// std::function, lambdas, unions, classes with private members and no Fields specialization,
// aggregates containing any of these.
//
// Guarantees: encoding never allocates except in encode(); decode never reads outside the given
// span, and what it allocates is proportional to the input size (every count is checked against
// the bytes remaining before anything is reserved: each claimed element must be backed by at
// least its minimum encoded size; zero-byte elements are capped at 2^20 per container), so a
// length of 2^63 fails at once; any malformed, truncated or trailing input throws
// mpp::SerializationError. No per-message header: the wire version is checked once
// per channel by the transport (see kWireVersion). Values encode in the host's byte order, which
// is required to be little-endian, so both ends must share the architecture (true for fork and
// for an MPI job on one kind of machine).
//
// Lifetime / fork / memory ordering: these are pure functions of their arguments with no global
// state except a thread-local depth counter; safe in any process and any thread. They do not
// synchronize: publishing the bytes to another process is the transport's job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "mpp/detail/codec_impl.hpp"
#include "mpp/errors.hpp"

namespace mpp::codec {

// Version of the byte layout in docs/wire-format.md. Transports exchange it once per channel
// (queue header in shared memory, pipe handshake, MPI startup) and refuse a mismatch.
inline constexpr std::uint32_t kWireVersion = 1;

// Most Fields<T> (user type) levels a value may nest; deeper values throw SerializationError.
inline constexpr unsigned kMaxDepth = detail::kMaxDepth;

// True for every type that can travel between processes (see the list above).
template <class T>
concept Codable = detail::codable<std::remove_cvref_t<T>>();

// Exact number of bytes encode_to(out, v) writes. Does not block. Throws SerializationError for a
// value that cannot be encoded (a valueless std::variant, nesting deeper than kMaxDepth).
template <class T>
[[nodiscard]] std::size_t encoded_size(const T& v) {
  if constexpr (!Codable<T>) {
    detail::require_codable<T>();  // a compile error that names the offending type
    return 0;
  } else {
    return detail::Codec<T>::size(v);
  }
}

// Writes exactly encoded_size(v) bytes at out (the caller sized the buffer; no alignment needed)
// and returns out + encoded_size(v). Does not block; does not throw once encoded_size(v) has
// succeeded for the same, unmodified v.
template <class T>
std::byte* encode_to(std::byte* out, const T& v) noexcept {
  if constexpr (!Codable<T>) {
    detail::require_codable<T>();
    return out;
  } else {
    return detail::Codec<T>::encode(out, v);
  }
}

// Encodes v into `out` if it fits and returns the number of bytes written (out[0, n) then holds
// exactly what encode_to writes); returns std::nullopt if it does not fit, and then bytes of `out`
// may have been overwritten. Bytes of `out` past the returned count are unspecified either way.
// Meant for a buffer that is reused (a scratch buffer, a ring's free space), sized with
// encoded_size only on a miss. For a std::vector of std::string this reads the strings once
// where encoded_size + encode_to reads them twice (10^6 words: 1.5 ms instead of 3.0 ms on the
// 2-core VM, bench/README.md); for any other type it is encoded_size + encode_to. Does not
// block; throws SerializationError like encoded_size.
template <class T>
[[nodiscard]] std::optional<std::size_t> try_encode_to(std::span<std::byte> out, const T& v) {
  if constexpr (!Codable<T>) {
    detail::require_codable<T>();
    return std::nullopt;
  } else if constexpr (detail::kIsStringVector<T>) {
    std::byte* const end =
        detail::StringVector<T>::encode_bounded(out.data(), out.data() + out.size(), v);
    if (end == nullptr) return std::nullopt;
    return static_cast<std::size_t>(end - out.data());
  } else {
    const std::size_t n = detail::Codec<T>::size(v);
    if (n > out.size()) return std::nullopt;
    (void)detail::Codec<T>::encode(out.data(), v);
    return n;
  }
}

// Decodes one value from the front of `in` and advances `in` past it. Does not block. Throws
// SerializationError for truncated or malformed bytes (then `in` is left unchanged).
template <class T>
[[nodiscard]] T decode_prefix(std::span<const std::byte>& in) {
  static_assert(!std::is_array_v<T>, "decode a std::array instead of a C array");
  static_assert(!std::is_reference_v<T>, "decode returns a value: ask for T, not a reference");
  using U = std::remove_cv_t<T>;
  if constexpr (!Codable<U>) {
    detail::require_codable<U>();
    detail::throw_encode("type cannot travel");
  } else {
    detail::Reader r{in.data(), in.data() + in.size()};
    U v = detail::decode_value<U>(r);
    in = in.subspan(static_cast<std::size_t>(r.p - in.data()));
    return v;
  }
}

// Decodes one value that occupies ALL of `in`. Does not block. Throws SerializationError for
// truncated, malformed, or trailing bytes.
template <class T>
[[nodiscard]] T decode(std::span<const std::byte> in) {
  static_assert(!std::is_array_v<T>, "decode a std::array instead of a C array");
  static_assert(!std::is_reference_v<T>, "decode returns a value: ask for T, not a reference");
  using U = std::remove_cv_t<T>;
  if constexpr (!Codable<U>) {
    detail::require_codable<U>();
    detail::throw_encode("type cannot travel");
  } else {
    detail::Reader r{in.data(), in.data() + in.size()};
    U v = detail::decode_value<U>(r);
    if (r.p != r.end) detail::throw_trailing(r.remaining());
    return v;
  }
}

// Convenience: a fresh buffer holding v's encoding. Allocates (std::bad_alloc); throws
// SerializationError like encoded_size.
template <class T>
[[nodiscard]] std::vector<std::byte> encode(const T& v) {
  std::vector<std::byte> out(encoded_size(v));
  std::byte* end = encode_to(out.data(), v);
  (void)end;
  return out;
}

}  // namespace mpp::codec
