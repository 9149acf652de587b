// mpp/detail/codec_aggregate.hpp: field access for aggregates, for mpp/codec.hpp (internal).
//
// C++20 has no reflection, so an aggregate's fields are found in two steps: the number of direct
// members is the largest N for which `T{{}, ..., {}}` (N empty braces) compiles (an empty brace
// initializes one member whole, arrays and nested aggregates included, so brace elision cannot
// inflate the count), then a structured binding of exactly N names yields references to them.
// Up to kMaxAggregateFields members; larger types opt in through mpp::codec::Fields<T>.
// Limitation: aggregates with base classes that hold members, and bit-fields, cannot be bound
// this way; such types also opt in through Fields<T>.
// The repetitive part below is spelled out for each N (no macros); extending the limit means
// adding the next cases in the same pattern.
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>

namespace mpp::codec::detail {

inline constexpr std::size_t kMaxAggregateFields = 32;

template <class T>
concept BraceInit0 = requires {
  T{};
};
template <class T>
concept BraceInit1 = requires {
  T{{}};
};
template <class T>
concept BraceInit2 = requires {
  T{{}, {}};
};
template <class T>
concept BraceInit3 = requires {
  T{{}, {}, {}};
};
template <class T>
concept BraceInit4 = requires {
  T{{}, {}, {}, {}};
};
template <class T>
concept BraceInit5 = requires {
  T{{}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit6 = requires {
  T{{}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit7 = requires {
  T{{}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit8 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit9 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit10 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit11 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit12 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit13 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit14 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit15 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit16 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit17 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit18 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit19 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit20 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit21 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit22 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit23 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit24 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit25 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
    {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit26 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
    {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit27 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
    {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit28 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
    {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit29 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
    {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit30 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
    {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit31 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
    {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit32 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
    {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};
template <class T>
concept BraceInit33 = requires {
  T{{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {},
    {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}};
};

// Number of direct members of aggregate T, or kMaxAggregateFields + 1 when there are more.
template <class T>
consteval std::size_t field_count() {
  if constexpr (BraceInit33<T>) {
    return 33;
  } else if constexpr (BraceInit32<T>) {
    return 32;
  } else if constexpr (BraceInit31<T>) {
    return 31;
  } else if constexpr (BraceInit30<T>) {
    return 30;
  } else if constexpr (BraceInit29<T>) {
    return 29;
  } else if constexpr (BraceInit28<T>) {
    return 28;
  } else if constexpr (BraceInit27<T>) {
    return 27;
  } else if constexpr (BraceInit26<T>) {
    return 26;
  } else if constexpr (BraceInit25<T>) {
    return 25;
  } else if constexpr (BraceInit24<T>) {
    return 24;
  } else if constexpr (BraceInit23<T>) {
    return 23;
  } else if constexpr (BraceInit22<T>) {
    return 22;
  } else if constexpr (BraceInit21<T>) {
    return 21;
  } else if constexpr (BraceInit20<T>) {
    return 20;
  } else if constexpr (BraceInit19<T>) {
    return 19;
  } else if constexpr (BraceInit18<T>) {
    return 18;
  } else if constexpr (BraceInit17<T>) {
    return 17;
  } else if constexpr (BraceInit16<T>) {
    return 16;
  } else if constexpr (BraceInit15<T>) {
    return 15;
  } else if constexpr (BraceInit14<T>) {
    return 14;
  } else if constexpr (BraceInit13<T>) {
    return 13;
  } else if constexpr (BraceInit12<T>) {
    return 12;
  } else if constexpr (BraceInit11<T>) {
    return 11;
  } else if constexpr (BraceInit10<T>) {
    return 10;
  } else if constexpr (BraceInit9<T>) {
    return 9;
  } else if constexpr (BraceInit8<T>) {
    return 8;
  } else if constexpr (BraceInit7<T>) {
    return 7;
  } else if constexpr (BraceInit6<T>) {
    return 6;
  } else if constexpr (BraceInit5<T>) {
    return 5;
  } else if constexpr (BraceInit4<T>) {
    return 4;
  } else if constexpr (BraceInit3<T>) {
    return 3;
  } else if constexpr (BraceInit2<T>) {
    return 2;
  } else if constexpr (BraceInit1<T>) {
    return 1;
  } else {
    return 0;
  }
}

// References to the members of t (T may be const), as a std::tuple of references.
template <class T>
auto tie_fields(T& t) noexcept {
  constexpr std::size_t n = field_count<std::remove_cv_t<T>>();
  static_assert(n >= 1 && n <= kMaxAggregateFields, "tie_fields: unsupported member count");
  if constexpr (n == 1) {
    auto& [f0] = t;
    return std::tie(f0);
  } else if constexpr (n == 2) {
    auto& [f0, f1] = t;
    return std::tie(f0, f1);
  } else if constexpr (n == 3) {
    auto& [f0, f1, f2] = t;
    return std::tie(f0, f1, f2);
  } else if constexpr (n == 4) {
    auto& [f0, f1, f2, f3] = t;
    return std::tie(f0, f1, f2, f3);
  } else if constexpr (n == 5) {
    auto& [f0, f1, f2, f3, f4] = t;
    return std::tie(f0, f1, f2, f3, f4);
  } else if constexpr (n == 6) {
    auto& [f0, f1, f2, f3, f4, f5] = t;
    return std::tie(f0, f1, f2, f3, f4, f5);
  } else if constexpr (n == 7) {
    auto& [f0, f1, f2, f3, f4, f5, f6] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6);
  } else if constexpr (n == 8) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7);
  } else if constexpr (n == 9) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8);
  } else if constexpr (n == 10) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9);
  } else if constexpr (n == 11) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10);
  } else if constexpr (n == 12) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11);
  } else if constexpr (n == 13) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12);
  } else if constexpr (n == 14) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13);
  } else if constexpr (n == 15) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14);
  } else if constexpr (n == 16) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15);
  } else if constexpr (n == 17) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16);
  } else if constexpr (n == 18) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17);
  } else if constexpr (n == 19) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18);
  } else if constexpr (n == 20) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18,
           f19] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19);
  } else if constexpr (n == 21) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20);
  } else if constexpr (n == 22) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21);
  } else if constexpr (n == 23) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21, f22);
  } else if constexpr (n == 24) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21, f22, f23);
  } else if constexpr (n == 25) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21, f22, f23, f24);
  } else if constexpr (n == 26) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21, f22, f23, f24, f25);
  } else if constexpr (n == 27) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21, f22, f23, f24, f25, f26);
  } else if constexpr (n == 28) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21, f22, f23, f24, f25, f26, f27);
  } else if constexpr (n == 29) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28);
  } else if constexpr (n == 30) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28, f29] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29);
  } else if constexpr (n == 31) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30);
  } else if constexpr (n == 32) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31] = t;
    return std::tie(f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17,
                    f18, f19, f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31);
  }
}

template <class... M>
struct TypeList {};

// The member types of T, as TypeList<M...> (declared types, cv removed; works with bit-fields).
// Only for decltype: decltype(field_types(std::declval<T&>())).
template <class T>
auto field_types(T& t) noexcept {
  constexpr std::size_t n = field_count<T>();
  static_assert(n >= 1 && n <= kMaxAggregateFields, "field_types: unsupported member count");
  if constexpr (n == 1) {
    auto& [f0] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>>{};
  } else if constexpr (n == 2) {
    auto& [f0, f1] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>>{};
  } else if constexpr (n == 3) {
    auto& [f0, f1, f2] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>>{};
  } else if constexpr (n == 4) {
    auto& [f0, f1, f2, f3] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>>{};
  } else if constexpr (n == 5) {
    auto& [f0, f1, f2, f3, f4] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>>{};
  } else if constexpr (n == 6) {
    auto& [f0, f1, f2, f3, f4, f5] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>>{};
  } else if constexpr (n == 7) {
    auto& [f0, f1, f2, f3, f4, f5, f6] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>>{};
  } else if constexpr (n == 8) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>>{};
  } else if constexpr (n == 9) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>>{};
  } else if constexpr (n == 10) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>>{};
  } else if constexpr (n == 11) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>>{};
  } else if constexpr (n == 12) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>>{};
  } else if constexpr (n == 13) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>>{};
  } else if constexpr (n == 14) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>>{};
  } else if constexpr (n == 15) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>>{};
  } else if constexpr (n == 16) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>>{};
  } else if constexpr (n == 17) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>>{};
  } else if constexpr (n == 18) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>>{};
  } else if constexpr (n == 19) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>>{};
  } else if constexpr (n == 20) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18,
           f19] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>>{};
  } else if constexpr (n == 21) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>>{};
  } else if constexpr (n == 22) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>>{};
  } else if constexpr (n == 23) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>,
                    std::remove_cvref_t<decltype(f22)>>{};
  } else if constexpr (n == 24) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>,
                    std::remove_cvref_t<decltype(f22)>, std::remove_cvref_t<decltype(f23)>>{};
  } else if constexpr (n == 25) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>,
                    std::remove_cvref_t<decltype(f22)>, std::remove_cvref_t<decltype(f23)>,
                    std::remove_cvref_t<decltype(f24)>>{};
  } else if constexpr (n == 26) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>,
                    std::remove_cvref_t<decltype(f22)>, std::remove_cvref_t<decltype(f23)>,
                    std::remove_cvref_t<decltype(f24)>, std::remove_cvref_t<decltype(f25)>>{};
  } else if constexpr (n == 27) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>,
                    std::remove_cvref_t<decltype(f22)>, std::remove_cvref_t<decltype(f23)>,
                    std::remove_cvref_t<decltype(f24)>, std::remove_cvref_t<decltype(f25)>,
                    std::remove_cvref_t<decltype(f26)>>{};
  } else if constexpr (n == 28) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>,
                    std::remove_cvref_t<decltype(f22)>, std::remove_cvref_t<decltype(f23)>,
                    std::remove_cvref_t<decltype(f24)>, std::remove_cvref_t<decltype(f25)>,
                    std::remove_cvref_t<decltype(f26)>, std::remove_cvref_t<decltype(f27)>>{};
  } else if constexpr (n == 29) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>,
                    std::remove_cvref_t<decltype(f22)>, std::remove_cvref_t<decltype(f23)>,
                    std::remove_cvref_t<decltype(f24)>, std::remove_cvref_t<decltype(f25)>,
                    std::remove_cvref_t<decltype(f26)>, std::remove_cvref_t<decltype(f27)>,
                    std::remove_cvref_t<decltype(f28)>>{};
  } else if constexpr (n == 30) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28, f29] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>,
                    std::remove_cvref_t<decltype(f22)>, std::remove_cvref_t<decltype(f23)>,
                    std::remove_cvref_t<decltype(f24)>, std::remove_cvref_t<decltype(f25)>,
                    std::remove_cvref_t<decltype(f26)>, std::remove_cvref_t<decltype(f27)>,
                    std::remove_cvref_t<decltype(f28)>, std::remove_cvref_t<decltype(f29)>>{};
  } else if constexpr (n == 31) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>,
                    std::remove_cvref_t<decltype(f22)>, std::remove_cvref_t<decltype(f23)>,
                    std::remove_cvref_t<decltype(f24)>, std::remove_cvref_t<decltype(f25)>,
                    std::remove_cvref_t<decltype(f26)>, std::remove_cvref_t<decltype(f27)>,
                    std::remove_cvref_t<decltype(f28)>, std::remove_cvref_t<decltype(f29)>,
                    std::remove_cvref_t<decltype(f30)>>{};
  } else if constexpr (n == 32) {
    auto& [f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19,
           f20, f21, f22, f23, f24, f25, f26, f27, f28, f29, f30, f31] = t;
    return TypeList<std::remove_cvref_t<decltype(f0)>, std::remove_cvref_t<decltype(f1)>,
                    std::remove_cvref_t<decltype(f2)>, std::remove_cvref_t<decltype(f3)>,
                    std::remove_cvref_t<decltype(f4)>, std::remove_cvref_t<decltype(f5)>,
                    std::remove_cvref_t<decltype(f6)>, std::remove_cvref_t<decltype(f7)>,
                    std::remove_cvref_t<decltype(f8)>, std::remove_cvref_t<decltype(f9)>,
                    std::remove_cvref_t<decltype(f10)>, std::remove_cvref_t<decltype(f11)>,
                    std::remove_cvref_t<decltype(f12)>, std::remove_cvref_t<decltype(f13)>,
                    std::remove_cvref_t<decltype(f14)>, std::remove_cvref_t<decltype(f15)>,
                    std::remove_cvref_t<decltype(f16)>, std::remove_cvref_t<decltype(f17)>,
                    std::remove_cvref_t<decltype(f18)>, std::remove_cvref_t<decltype(f19)>,
                    std::remove_cvref_t<decltype(f20)>, std::remove_cvref_t<decltype(f21)>,
                    std::remove_cvref_t<decltype(f22)>, std::remove_cvref_t<decltype(f23)>,
                    std::remove_cvref_t<decltype(f24)>, std::remove_cvref_t<decltype(f25)>,
                    std::remove_cvref_t<decltype(f26)>, std::remove_cvref_t<decltype(f27)>,
                    std::remove_cvref_t<decltype(f28)>, std::remove_cvref_t<decltype(f29)>,
                    std::remove_cvref_t<decltype(f30)>, std::remove_cvref_t<decltype(f31)>>{};
  }
}

}  // namespace mpp::codec::detail
