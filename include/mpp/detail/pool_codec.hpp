// mpp/detail/pool_codec.hpp: how the pool turns arguments and results into bytes.
//
// The pool only needs four operations (Codable, encoded_size, encode_to, decode_prefix) with the
// semantics of <mpp/codec.hpp>. Until that header is available this file provides a minimal
// private stand-in for trivially copyable types, std::string and std::vector of those; once it
// exists, the real codec is used and every codable type travels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mpp/errors.hpp"

#if __has_include(<mpp/codec.hpp>) && !defined(MPP_POOL_CODEC_SHIM)
#include "mpp/codec.hpp"
namespace mpp::detail::pool_codec {
template <class T>
concept Codable = mpp::codec::Codable<T>;
using mpp::codec::decode_prefix;
using mpp::codec::encode_to;
using mpp::codec::encoded_size;
}  // namespace mpp::detail::pool_codec
#else
namespace mpp::detail::pool_codec {

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A> > : std::true_type {};

template <class T>
struct is_tuple : std::false_type {};
template <class... T>
struct is_tuple<std::tuple<T...> > : std::true_type {};

template <class T>
concept Codable = std::is_trivially_copyable_v<T> || std::is_same_v<T, std::string> ||
    is_vector<T>::value || is_tuple<T>::value;

template <class T>
[[nodiscard]] T decode_prefix(std::span<const std::byte>& in);

template <class T>
[[nodiscard]] std::size_t encoded_size(const T& v) {
  if constexpr (is_tuple<T>::value) {
    return std::apply([](const auto&... e) { return (std::size_t{0} + ... + encoded_size(e)); }, v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    return sizeof(std::uint64_t) + v.size();
  } else if constexpr (is_vector<T>::value) {
    using E = typename T::value_type;
    if constexpr (std::is_trivially_copyable_v<E>) {
      return sizeof(std::uint64_t) + v.size() * sizeof(E);
    } else {
      std::size_t n = sizeof(std::uint64_t);
      for (const auto& e : v) n += encoded_size(e);
      return n;
    }
  } else {
    static_assert(std::is_trivially_copyable_v<T>, "type cannot travel through the pool");
    return sizeof(T);
  }
}

template <class T>
std::byte* encode_to(std::byte* out, const T& v) {
  if constexpr (is_tuple<T>::value) {
    std::apply([&](const auto&... e) { ((out = encode_to(out, e)), ...); }, v);
    return out;
  } else if constexpr (std::is_same_v<T, std::string> || is_vector<T>::value) {
    const std::uint64_t n = v.size();
    std::memcpy(out, &n, sizeof n);
    out += sizeof n;
    using E = typename T::value_type;
    if constexpr (std::is_trivially_copyable_v<E>) {
      if (n != 0) std::memcpy(out, v.data(), v.size() * sizeof(E));
      return out + v.size() * sizeof(E);
    } else {
      for (const auto& e : v) out = encode_to(out, e);
      return out;
    }
  } else {
    std::memcpy(out, &v, sizeof(T));
    return out + sizeof(T);
  }
}

inline void need(std::span<const std::byte> in, std::size_t n) {
  if (in.size() < n) throw SerializationError("truncated pool message");
}

template <class... E>
std::tuple<E...> decode_tuple(std::span<const std::byte>& in, std::tuple<E...>*) {
  // Braced initialization evaluates left to right, so the elements are read in order.
  return std::tuple<E...>{decode_prefix<E>(in)...};
}

template <class T>
T decode_prefix(std::span<const std::byte>& in) {
  if constexpr (is_tuple<T>::value) {
    return decode_tuple(in, static_cast<T*>(nullptr));
  } else if constexpr (std::is_same_v<T, std::string> || is_vector<T>::value) {
    std::uint64_t n = 0;
    need(in, sizeof n);
    std::memcpy(&n, in.data(), sizeof n);
    in = in.subspan(sizeof n);
    using E = typename T::value_type;
    T v;
    if constexpr (std::is_trivially_copyable_v<E>) {
      if (n > in.size() / sizeof(E)) throw SerializationError("truncated pool message");
      v.resize(static_cast<std::size_t>(n));
      if (n != 0) std::memcpy(v.data(), in.data(), v.size() * sizeof(E));
      in = in.subspan(v.size() * sizeof(E));
    } else {
      if (n > in.size()) throw SerializationError("truncated pool message");
      v.reserve(static_cast<std::size_t>(n));
      for (std::uint64_t i = 0; i < n; ++i) v.push_back(decode_prefix<E>(in));
    }
    return v;
  } else {
    need(in, sizeof(T));
    T v;
    std::memcpy(&v, in.data(), sizeof(T));
    in = in.subspan(sizeof(T));
    return v;
  }
}

}  // namespace mpp::detail::pool_codec
#endif
