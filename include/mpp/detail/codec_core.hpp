// mpp/detail/codec_core.hpp: the byte-level primitives under mpp/codec.hpp (internal).
//
// Reader is a bounds-checked cursor over the input; every decoder goes through need() before it
// touches a byte, so truncated or hostile input ends in mpp::SerializationError, never in an
// out-of-bounds read. Lengths are unsigned LEB128 varints (1 byte below 128) so that a vector of
// short strings costs one byte of framing per element. The throw helpers live in
// src/codec/codec.cpp so the hot loops carry only a call to a cold, noinline function.
#pragma once

#include <bit>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mpp/detail/export.hpp"
#include "mpp/errors.hpp"

namespace mpp::codec::detail {

static_assert(std::endian::native == std::endian::little,
              "mpp's wire format is little-endian and encodes scalars by copying their bytes; "
              "a big-endian port needs byte swaps in codec_core.hpp");
static_assert(CHAR_BIT == 8, "the wire format counts 8-bit bytes");

// Cold paths: each throws mpp::SerializationError with a message naming what was wrong.
[[noreturn, gnu::cold]] MPP_API void throw_truncated(std::size_t needed, std::size_t remaining);
[[noreturn, gnu::cold]] MPP_API void throw_bad_varint();
[[noreturn, gnu::cold]] MPP_API void throw_bad_bool(unsigned value);
[[noreturn, gnu::cold]] MPP_API void throw_bad_tag(std::uint64_t tag, std::size_t alternatives);
[[noreturn, gnu::cold]] MPP_API void throw_too_long(std::uint64_t count, std::size_t remaining);
[[noreturn, gnu::cold]] MPP_API void throw_too_deep(unsigned limit);
[[noreturn, gnu::cold]] MPP_API void throw_duplicate_key();
[[noreturn, gnu::cold]] MPP_API void throw_trailing(std::size_t extra);
[[noreturn, gnu::cold]] MPP_API void throw_encode(const char* what);

// Most user-type (Fields) levels one value may nest; see kMaxDepth in codec.hpp.
inline constexpr unsigned kMaxDepth = 256;
// Most elements a container of zero-byte elements (std::tuple<>) may claim: with no bytes to
// check a count against, this keeps a hostile count from allocating without bound.
inline constexpr std::uint64_t kMaxEmptyElements = std::uint64_t{1} << 20;

struct Reader {
  const std::byte* p;
  const std::byte* end;
  unsigned depth = 0;

  [[nodiscard]] std::size_t remaining() const noexcept { return static_cast<std::size_t>(end - p); }
  void need(std::size_t n) const {
    if (n > remaining()) [[unlikely]]
      throw_truncated(n, remaining());
  }
  // Copies n bytes out and advances; the caller has not checked the length yet.
  void read(void* dst, std::size_t n) {
    need(n);
    if (n != 0) std::memcpy(dst, p, n);
    p += n;
  }
  [[nodiscard]] std::uint64_t varint() {
    need(1);
    const auto b = static_cast<std::uint8_t>(*p);
    if (b < 0x80) [[likely]] {
      ++p;
      return b;
    }
    return varint_slow();
  }
  // A count of elements that each occupy at least min_bytes: rejecting counts the remaining
  // input cannot hold is what bounds allocation before any reserve()/resize().
  [[nodiscard]] std::size_t count(std::size_t min_bytes) {
    const std::uint64_t n = varint();
    if (min_bytes == 0) {
      if (n > kMaxEmptyElements) [[unlikely]]
        throw_too_long(n, remaining());
    } else if (n > remaining() / min_bytes) [[unlikely]] {
      throw_too_long(n, remaining());
    }
    return static_cast<std::size_t>(n);
  }

 private:
  std::uint64_t varint_slow() {
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      need(1);
      const auto b = static_cast<std::uint8_t>(*p++);
      // The tenth byte may only carry the top bit of a 64-bit value.
      if (shift == 63 && b > 1) throw_bad_varint();
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    throw_bad_varint();
  }
};

[[nodiscard]] constexpr std::size_t varint_size(std::uint64_t v) noexcept {
  return (static_cast<std::size_t>(std::bit_width(v | 1)) + 6) / 7;
}

[[nodiscard]] inline std::byte* put_varint(std::byte* out, std::uint64_t v) noexcept {
  while (v >= 0x80) {
    *out++ = static_cast<std::byte>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<std::byte>(v);
  return out;
}

// Short runs (a queue of words puts 3-byte strings) are copied inline with two overlapping moves:
// a variable-length memcpy is a call through the PLT that costs more than the copy itself.
[[nodiscard]] inline std::byte* put_bytes(std::byte* out, const void* src, std::size_t n) noexcept {
  const auto* s = static_cast<const std::byte*>(src);
  if (n > 16) {
    std::memcpy(out, s, n);
  } else if (n >= 8) {
    std::memcpy(out, s, 8);
    std::memcpy(out + n - 8, s + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(out, s, 4);
    std::memcpy(out + n - 4, s + n - 4, 4);
  } else if (n != 0) {
    out[0] = s[0];
    out[n / 2] = s[n / 2];
    out[n - 1] = s[n - 1];
  }
  return out + n;
}

}  // namespace mpp::codec::detail
