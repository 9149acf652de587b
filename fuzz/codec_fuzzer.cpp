// libFuzzer target for the codec's decoders: bytes from a hostile or half-dead process must
// decode or throw mpp::SerializationError, never crash, read out of bounds, or allocate without
// bound (ASan's allocation limit catches the latter). What does decode must survive a round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <type_traits>
#include <vector>

#include "fuzz_types.hpp"

namespace {

template <class T>
void check(std::span<const std::byte> in) {
  std::vector<std::byte> once;
  try {
    once = mpp::codec::encode(mpp::codec::decode<T>(in));
  } catch (const mpp::SerializationError&) {
    return;  // rejecting malformed input is the expected outcome
  }
  // What decoded re-encodes to bytes that decode again to the same encoding (bytes, so NaNs
  // compare equal; unordered containers may iterate in another order, so only sizes there).
  const auto twice = mpp::codec::encode(mpp::codec::decode<T>(once));
  if constexpr (std::is_same_v<T, mpp_fuzz::Hashed>) {
    if (once.size() != twice.size()) std::abort();
  } else {
    if (once != twice) std::abort();
  }
}

// Many values of one type back to back, as a stream reader would see them.
template <class T>
void check_stream(std::span<const std::byte> in) {
  try {
    while (!in.empty()) {
      const std::size_t before = in.size();
      (void)mpp::codec::decode_prefix<T>(in);
      if (in.size() >= before && mpp::codec::detail::min_size<T>() > 0) std::abort();
    }
  } catch (const mpp::SerializationError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  const unsigned selector = data[0];
  mpp_fuzz::with_type(selector, [&]<class T>() {
    if (selector >= 128) {
      check_stream<T>(in);
    } else {
      check<T>(in);
    }
  });
  return 0;
}
