// mpp/detail/codec_impl.hpp: how each supported type is encoded (internal; see mpp/codec.hpp and
// docs/wire-format.md).
//
// Every type is classified once into a Kind; Codec<T> is specialized per Kind and provides
//   size(v)            exact encoded size (throws SerializationError for unencodable values),
//   encode(out, v)     writes exactly size(v) bytes, never throws once size(v) succeeded,
//   decode(reader, v)  fills a default-constructed v, throws SerializationError on bad input.
// Classification is by type only, so codability is a compile-time property.
#pragma once

#include <array>
#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "mpp/detail/codec_aggregate.hpp"
#include "mpp/detail/codec_core.hpp"
#include "mpp/errors.hpp"

namespace mpp::codec {

// The customization point; documented in mpp/codec.hpp. The primary template is empty, which
// is how "not customized" is recognized.
template <class T>
struct Fields {};

}  // namespace mpp::codec

namespace mpp::codec::detail {

enum class Kind {
  kNone,        // cannot travel
  kFields,      // user opted in with Fields<T>
  kError,       // mpp::RemoteError, mpp::WorkerLost
  kBool,        // one byte, 0 or 1
  kScalar,      // arithmetic (not bool) and enums: their bytes
  kString,      // std::basic_string of a character type
  kStringView,  // std::string_view: encodes like std::string, decodes as a view of the input
  kVectorBool,  // std::vector<bool>: one byte per element
  kVector,      // std::vector
  kArray,       // std::array
  kCArray,      // T[N], only as a member of an aggregate
  kTuple,       // std::pair, std::tuple
  kOptional,    // std::optional
  kVariant,     // std::variant
  kMap,         // std::map, multimap, unordered_map, unordered_multimap
  kSet,         // std::set, multiset, unordered_set, unordered_multiset
  kDuration,    // std::chrono::duration
  kEmpty,       // empty aggregate (std::monostate, tag structs): no bytes at all
  kRaw,         // trivially copyable aggregate of plain fields: its object bytes
  kAggregate,   // other aggregate whose members all travel: member by member
};

// ---- recognizing standard templates ----------------------------------------------------------

template <class C>
inline constexpr bool kIsChar =
    std::is_same_v<C, char> || std::is_same_v<C, wchar_t> || std::is_same_v<C, char8_t> ||
    std::is_same_v<C, char16_t> || std::is_same_v<C, char32_t>;

template <class T>
struct Shape {
  static constexpr Kind kind = Kind::kNone;
};
template <class C, class Tr, class A>
requires kIsChar<C>
struct Shape<std::basic_string<C, Tr, A>> {
  static constexpr Kind kind = Kind::kString;
};
template <class Tr>
struct Shape<std::basic_string_view<char, Tr>> {
  static constexpr Kind kind = Kind::kStringView;
};
template <class A>
struct Shape<std::vector<bool, A>> {
  static constexpr Kind kind = Kind::kVectorBool;
};
template <class E, class A>
struct Shape<std::vector<E, A>> {
  static constexpr Kind kind = Kind::kVector;
  using Elem = E;
};
template <class E, std::size_t N>
struct Shape<std::array<E, N>> {
  static constexpr Kind kind = Kind::kArray;
  using Elem = E;
  static constexpr std::size_t extent = N;
};
template <class E, std::size_t N>
struct Shape<E[N]> {
  static constexpr Kind kind = Kind::kCArray;
  using Elem = E;
  static constexpr std::size_t extent = N;
};
template <class A, class B>
struct Shape<std::pair<A, B>> {
  static constexpr Kind kind = Kind::kTuple;
  using Parts = TypeList<A, B>;
};
template <class... Ts>
struct Shape<std::tuple<Ts...>> {
  static constexpr Kind kind = Kind::kTuple;
  using Parts = TypeList<Ts...>;
};
template <class E>
struct Shape<std::optional<E>> {
  static constexpr Kind kind = Kind::kOptional;
  using Elem = E;
};
template <class... Ts>
struct Shape<std::variant<Ts...>> {
  static constexpr Kind kind = Kind::kVariant;
  using Parts = TypeList<Ts...>;
};
template <class K, class V, bool Unique>
struct MapShape {
  static constexpr Kind kind = Kind::kMap;
  using Key = K;
  using Mapped = V;
  using Parts = TypeList<K, V>;
  static constexpr bool unique = Unique;
};
template <class K, class V, class C, class A>
struct Shape<std::map<K, V, C, A>> : MapShape<K, V, true> {};
template <class K, class V, class C, class A>
struct Shape<std::multimap<K, V, C, A>> : MapShape<K, V, false> {};
template <class K, class V, class H, class E, class A>
struct Shape<std::unordered_map<K, V, H, E, A>> : MapShape<K, V, true> {};
template <class K, class V, class H, class E, class A>
struct Shape<std::unordered_multimap<K, V, H, E, A>> : MapShape<K, V, false> {};
template <class K, bool Unique>
struct SetShape {
  static constexpr Kind kind = Kind::kSet;
  using Elem = K;
  static constexpr bool unique = Unique;
};
template <class K, class C, class A>
struct Shape<std::set<K, C, A>> : SetShape<K, true> {};
template <class K, class C, class A>
struct Shape<std::multiset<K, C, A>> : SetShape<K, false> {};
template <class K, class H, class E, class A>
struct Shape<std::unordered_set<K, H, E, A>> : SetShape<K, true> {};
template <class K, class H, class E, class A>
struct Shape<std::unordered_multiset<K, H, E, A>> : SetShape<K, false> {};
template <class R, class P>
struct Shape<std::chrono::duration<R, P>> {
  static constexpr Kind kind = Kind::kDuration;
  using Elem = R;
};

template <class T>
concept HasFields = requires(T& v) {
  Fields<T>::tie(v);
};

template <class T>
concept Decomposable = std::is_class_v<T> && std::is_aggregate_v<T> && !std::is_union_v<T> &&
                       std::is_default_constructible_v<T> && (field_count<T>() >= 1) &&
                       (field_count<T>() <= kMaxAggregateFields);

template <class T>
using FieldTypes = decltype(field_types(std::declval<T&>()));

template <class T>
consteval Kind kind_of();
template <class T>
consteval bool codable();

// Fields whose object bytes are their wire format (memcpy both ways; bools are checked after).
template <class T>
consteval bool raw_ok();

template <class... Ts>
consteval bool all_raw_ok(TypeList<Ts...>) {
  return (raw_ok<Ts>() && ...);
}
template <class... Ts>
consteval bool all_codable(TypeList<Ts...>) {
  return (codable<Ts>() && ...);
}

template <class T>
consteval bool raw_ok() {
  if constexpr (HasFields<T>) {
    return false;
  } else if constexpr (std::is_same_v<T, bool> || std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    return true;
  } else if constexpr (Shape<T>::kind == Kind::kArray || Shape<T>::kind == Kind::kCArray) {
    return raw_ok<typename Shape<T>::Elem>() &&
           sizeof(T) == Shape<T>::extent * sizeof(typename Shape<T>::Elem);
  } else if constexpr (Shape<T>::kind == Kind::kDuration) {
    return std::is_arithmetic_v<typename Shape<T>::Elem> && sizeof(T) == sizeof(typename T::rep);
  } else if constexpr (Shape<T>::kind != Kind::kNone) {
    return false;
  } else if constexpr (std::is_class_v<T> && std::is_empty_v<T>) {
    return false;  // its one byte is indeterminate; empty members go member by member (0 bytes)
  } else if constexpr (Decomposable<T>) {
    if constexpr (std::is_trivially_copyable_v<T>) {
      return all_raw_ok(FieldTypes<T>{});
    } else {
      return false;
    }
  } else {
    return false;
  }
}

template <class T>
consteval Kind kind_of() {
  static_assert(!std::is_reference_v<T> && !std::is_const_v<T> && !std::is_volatile_v<T>,
                "codec types are classified without cv/ref; callers strip them");
  if constexpr (HasFields<T>) {
    return Kind::kFields;
  } else if constexpr (std::is_same_v<T, RemoteError> || std::is_same_v<T, WorkerLost>) {
    return Kind::kError;
  } else if constexpr (std::is_same_v<T, bool>) {
    return Kind::kBool;
  } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    return Kind::kScalar;
  } else if constexpr (Shape<T>::kind != Kind::kNone) {
    return Shape<T>::kind;
  } else if constexpr (std::is_class_v<T> && std::is_empty_v<T> && std::is_aggregate_v<T> &&
                       std::is_trivially_copyable_v<T> && std::is_default_constructible_v<T>) {
    return Kind::kEmpty;
  } else if constexpr (raw_ok<T>()) {
    return Kind::kRaw;
  } else if constexpr (Decomposable<T>) {
    if constexpr (all_codable(FieldTypes<T>{})) {
      return Kind::kAggregate;
    } else {
      return Kind::kNone;
    }
  } else {
    return Kind::kNone;
  }
}

template <class T>
consteval bool codable() {
  if constexpr (std::is_reference_v<T> || std::is_const_v<T> || std::is_volatile_v<T>) {
    return false;  // members that are references or const cannot be decoded into
  } else {
    constexpr Kind k = kind_of<T>();
    if constexpr (k == Kind::kNone) {
      return false;
    } else if constexpr (k == Kind::kVector || k == Kind::kArray || k == Kind::kCArray ||
                         k == Kind::kOptional || k == Kind::kSet || k == Kind::kDuration) {
      return codable<typename Shape<T>::Elem>();
    } else if constexpr (k == Kind::kTuple || k == Kind::kVariant || k == Kind::kMap) {
      return all_codable(typename Shape<T>::Parts{});
    } else {
      return true;  // leaves, Fields (checked where used), raw and checked aggregates
    }
  }
}

// ---- static size facts -----------------------------------------------------------------------

// Exact size when every value of T encodes to the same number of bytes.
template <class T>
consteval std::optional<std::size_t> fixed_size();
// Least bytes any value of T encodes to: bounds the element count a length may claim.
template <class T>
consteval std::size_t min_size();

template <class... Ts>
consteval std::optional<std::size_t> fixed_sum(TypeList<Ts...>) {
  if constexpr ((fixed_size<Ts>().has_value() && ...)) {
    return (std::size_t{0} + ... + *fixed_size<Ts>());
  } else {
    return std::nullopt;
  }
}
template <class... Ts>
consteval std::size_t min_sum(TypeList<Ts...>) {
  return (std::size_t{0} + ... + min_size<Ts>());
}
template <class T>
consteval std::optional<std::size_t> fixed_size() {
  constexpr Kind k = kind_of<T>();
  if constexpr (k == Kind::kBool || k == Kind::kScalar || k == Kind::kRaw) {
    return sizeof(T);
  } else if constexpr (k == Kind::kEmpty) {
    return 0;
  } else if constexpr (k == Kind::kArray || k == Kind::kCArray) {
    if constexpr (fixed_size<typename Shape<T>::Elem>().has_value()) {
      return Shape<T>::extent * *fixed_size<typename Shape<T>::Elem>();
    } else {
      return std::nullopt;
    }
  } else if constexpr (k == Kind::kDuration) {
    return fixed_size<typename Shape<T>::Elem>();
  } else if constexpr (k == Kind::kTuple) {
    return fixed_sum(typename Shape<T>::Parts{});
  } else if constexpr (k == Kind::kAggregate) {
    return fixed_sum(FieldTypes<T>{});
  } else {
    return std::nullopt;
  }
}

template <class T>
using FieldsTie = decltype(Fields<T>::tie(std::declval<T&>()));

template <class Tuple>
struct TupleRefs;
template <class... Rs>
struct TupleRefs<std::tuple<Rs...>> {
  using Types = TypeList<std::remove_cvref_t<Rs>...>;
};

template <class T>
consteval std::size_t min_size() {
  constexpr Kind k = kind_of<T>();
  if constexpr (fixed_size<T>().has_value()) {
    return *fixed_size<T>();
  } else if constexpr (k == Kind::kArray || k == Kind::kCArray) {
    return Shape<T>::extent * min_size<typename Shape<T>::Elem>();
  } else if constexpr (k == Kind::kTuple) {
    return min_sum(typename Shape<T>::Parts{});
  } else if constexpr (k == Kind::kAggregate) {
    return min_sum(FieldTypes<T>{});
  } else if constexpr (k == Kind::kFields) {
    return min_sum(typename TupleRefs<FieldsTie<T>>::Types{});
  } else {
    return 1;  // every other kind starts with a length, a flag or a tag
  }
}

// Whether a raw_ok type holds bools, whose byte must be 0 or 1 to be a valid object.
template <class T>
consteval bool has_bool() {
  if constexpr (std::is_same_v<T, bool>) {
    return true;
  } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_empty_v<T>) {
    return false;
  } else if constexpr (Shape<T>::kind == Kind::kArray || Shape<T>::kind == Kind::kCArray) {
    return has_bool<typename Shape<T>::Elem>();
  } else if constexpr (Shape<T>::kind == Kind::kDuration) {
    return false;
  } else {
    return []<class... Fs>(TypeList<Fs...>) { return (has_bool<Fs>() || ...); }(FieldTypes<T>{});
  }
}

// Throws unless every bool inside v (a raw_ok object filled by memcpy) holds 0 or 1. Reads the
// bools' object bytes, never the bools themselves, so an invalid byte is not undefined behaviour.
template <class T>
void check_bools(const T& v) {
  if constexpr (!has_bool<T>()) {
    (void)v;
  } else if constexpr (std::is_same_v<T, bool>) {
    unsigned char c;
    std::memcpy(&c, &v, 1);
    if (c > 1) throw_bad_bool(c);
  } else if constexpr (Shape<T>::kind == Kind::kArray || Shape<T>::kind == Kind::kCArray) {
    for (const auto& e : v) check_bools(e);
  } else {
    std::apply([](const auto&... f) { (check_bools(f), ...); }, tie_fields(v));
  }
}

// ---- readable errors for types that cannot travel --------------------------------------------

template <class T>
inline constexpr bool kDependentFalse = false;

// Instantiated only for a type that cannot travel; the compiler's "required from" line names it.
template <class T>
struct TypeCannotTravelBetweenProcesses {
  static_assert(kDependentFalse<T>,
                "mpp::codec: this type cannot be sent between processes (it is the T of "
                "TypeCannotTravelBetweenProcesses<T> in the compiler's instantiation note). Raw "
                "pointers, references, const members, std::function, lambdas, unions and classes "
                "with private state have no encoding. To opt a class in, specialize "
                "mpp::codec::Fields: template <> struct mpp::codec::Fields<MyType> { static auto "
                "tie(auto& v) { return std::tie(v.a, v.b); } };  (see <mpp/codec.hpp>)");
  static constexpr bool fired = true;
};

template <class T>
constexpr void require_codable();

template <class... Ts>
constexpr void require_all(TypeList<Ts...>) {
  (require_codable<Ts>(), ...);
}

// Points the diagnostic at the innermost offending type (int* inside vector<pair<int, int*>>).
template <class T>
constexpr void require_codable() {
  if constexpr (codable<T>()) {
    return;
  } else if constexpr (std::is_reference_v<T> || std::is_const_v<T> || std::is_volatile_v<T>) {
    static_assert(TypeCannotTravelBetweenProcesses<T>::fired);
  } else {
    constexpr Kind k = kind_of<T>();
    if constexpr (k == Kind::kVector || k == Kind::kArray || k == Kind::kCArray ||
                  k == Kind::kOptional || k == Kind::kSet || k == Kind::kDuration) {
      require_codable<typename Shape<T>::Elem>();
    } else if constexpr (k == Kind::kTuple || k == Kind::kVariant || k == Kind::kMap) {
      require_all(typename Shape<T>::Parts{});
    } else if constexpr (Decomposable<T>) {
      if constexpr (!all_codable(FieldTypes<T>{})) {
        require_all(FieldTypes<T>{});
      } else {
        static_assert(TypeCannotTravelBetweenProcesses<T>::fired);
      }
    } else {
      static_assert(TypeCannotTravelBetweenProcesses<T>::fired);
    }
  }
}

// ---- the codecs ------------------------------------------------------------------------------

template <class T, Kind K = kind_of<T>()>
struct Codec {
  static_assert(K != Kind::kNone, "Codec instantiated for a type that cannot travel");
};

// Decodes a fresh T (default-constructed then filled, or built directly for types without a
// default constructor).
template <class T>
T decode_value(Reader& r) {
  if constexpr (requires { Codec<T>::make(r); }) {
    return Codec<T>::make(r);
  } else if constexpr (std::is_default_constructible_v<T>) {
    T v{};
    Codec<T>::decode(r, v);
    return v;
  } else {
    return Codec<T>::make(r);
  }
}

template <class T>
struct Codec<T, Kind::kScalar> {
  static std::size_t size(const T&) noexcept { return sizeof(T); }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    return put_bytes(out, &v, sizeof(T));
  }
  static void decode(Reader& r, T& v) { r.read(&v, sizeof(T)); }
};

template <class T>
struct Codec<T, Kind::kBool> {
  static std::size_t size(const T&) noexcept { return 1; }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    *out = v ? std::byte{1} : std::byte{0};
    return out + 1;
  }
  static void decode(Reader& r, T& v) {
    r.need(1);
    const auto b = static_cast<unsigned>(*r.p);
    if (b > 1) throw_bad_bool(b);
    v = b != 0;
    ++r.p;
  }
};

template <class T>
struct Codec<T, Kind::kEmpty> {
  static std::size_t size(const T&) noexcept { return 0; }
  static std::byte* encode(std::byte* out, const T&) noexcept { return out; }
  static void decode(Reader&, T&) noexcept {}
};

template <class T>
struct Codec<T, Kind::kRaw> {
  static std::size_t size(const T&) noexcept { return sizeof(T); }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    return put_bytes(out, &v, sizeof(T));
  }
  static void decode(Reader& r, T& v) {
    r.read(&v, sizeof(T));
    check_bools(v);
  }
};

template <class T>
struct Codec<T, Kind::kString> {
  using C = typename T::value_type;
  static std::size_t size(const T& v) noexcept {
    return varint_size(v.size()) + v.size() * sizeof(C);
  }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    out = put_varint(out, v.size());
    return put_bytes(out, v.data(), v.size() * sizeof(C));
  }
  static void decode(Reader& r, T& v) {
    const std::size_t n = r.count(sizeof(C));
    if constexpr (std::is_same_v<C, char>) {
      v.assign(reinterpret_cast<const char*>(r.p), n);
    } else {
      v.resize(n);
      if (n != 0) std::memcpy(v.data(), r.p, n * sizeof(C));
    }
    r.p += n * sizeof(C);
  }
  // A fresh std::string (a queue item, a map key): built directly, and a short one with a
  // constant-length construction that inlines to two moves, instead of assign()'s memcpy call.
  static T make(Reader& r) requires std::is_same_v<T, std::string> {
    const std::size_t n = r.count(1);
    const char* p = reinterpret_cast<const char*>(r.p);
    const bool short_one = n < 16 && r.remaining() >= 15;  // the 15 bytes read are in the input
    r.p += n;
    if (short_one) return make_short(p, n);
    return T(p, n);
  }

 private:
  static T make_short(const char* p, std::size_t n) {
    T v(p, 15);
    v.resize(n);
    return v;
  }
};

template <class T>
struct Codec<T, Kind::kStringView> {
  static std::size_t size(const T& v) noexcept { return varint_size(v.size()) + v.size(); }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    out = put_varint(out, v.size());
    return put_bytes(out, v.data(), v.size());
  }
  // The view points into the input buffer, which must outlive it.
  static void decode(Reader& r, T& v) {
    const std::size_t n = r.count(1);
    v = T(reinterpret_cast<const char*>(r.p), n);
    r.p += n;
  }
};

template <class T>
struct Codec<T, Kind::kVectorBool> {
  static std::size_t size(const T& v) noexcept { return varint_size(v.size()) + v.size(); }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    out = put_varint(out, v.size());
    for (bool b : v) *out++ = b ? std::byte{1} : std::byte{0};
    return out;
  }
  static void decode(Reader& r, T& v) {
    const std::size_t n = r.count(1);
    v.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto b = static_cast<unsigned>(r.p[i]);
      if (b > 1) throw_bad_bool(b);
      v[i] = b != 0;
    }
    r.p += n;
  }
};

// Sum of the encoded sizes of a range of elements; a multiplication when they are fixed-size.
template <class E, class Range>
std::size_t elements_size(const Range& v) {
  if constexpr (fixed_size<E>().has_value()) {
    return std::size(v) * *fixed_size<E>();
  } else {
    std::size_t n = 0;
    for (const auto& e : v) n += Codec<E>::size(e);
    return n;
  }
}

// A contiguous run of n elements (vector, std::array, C array).
template <class E>
std::byte* encode_run(std::byte* out, const E* data, std::size_t n) noexcept {
  if constexpr (raw_ok<E>()) {
    return put_bytes(out, data, n * sizeof(E));
  } else {
    for (std::size_t i = 0; i < n; ++i) out = Codec<E>::encode(out, data[i]);
    return out;
  }
}
template <class E>
void decode_run(Reader& r, E* data, std::size_t n) {
  if constexpr (raw_ok<E>()) {
    r.read(data, n * sizeof(E));
    if constexpr (has_bool<E>()) {
      for (std::size_t i = 0; i < n; ++i) check_bools(data[i]);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) Codec<E>::decode(r, data[i]);
  }
}

// Reads consecutive E objects out of (possibly unaligned) bytes, memcpy by memcpy: the compiler
// turns the element loop of vector::assign into a block copy. Random access, so that assign()
// learns the length by a subtraction instead of walking the range once more before copying.
template <class E>
struct BytesAs {
  using iterator_category = std::random_access_iterator_tag;
  using value_type = E;
  using difference_type = std::ptrdiff_t;
  using pointer = const E*;
  using reference = E;
  const std::byte* p = nullptr;
  E operator*() const noexcept {
    E e;
    std::memcpy(&e, p, sizeof(E));
    return e;
  }
  E operator[](difference_type i) const noexcept { return *(*this + i); }
  BytesAs& operator++() noexcept {
    p += sizeof(E);
    return *this;
  }
  BytesAs operator++(int) noexcept {
    BytesAs old = *this;
    p += sizeof(E);
    return old;
  }
  BytesAs& operator--() noexcept {
    p -= sizeof(E);
    return *this;
  }
  BytesAs operator--(int) noexcept {
    BytesAs old = *this;
    p -= sizeof(E);
    return old;
  }
  BytesAs& operator+=(difference_type n) noexcept {
    p += n * static_cast<difference_type>(sizeof(E));
    return *this;
  }
  BytesAs& operator-=(difference_type n) noexcept { return *this += -n; }
  friend BytesAs operator+(BytesAs a, difference_type n) noexcept { return a += n; }
  friend BytesAs operator+(difference_type n, BytesAs a) noexcept { return a += n; }
  friend BytesAs operator-(BytesAs a, difference_type n) noexcept { return a -= n; }
  friend difference_type operator-(const BytesAs& a, const BytesAs& b) noexcept {
    return (a.p - b.p) / static_cast<difference_type>(sizeof(E));
  }
  friend bool operator==(const BytesAs& a, const BytesAs& b) noexcept { return a.p == b.p; }
  friend auto operator<=>(const BytesAs& a, const BytesAs& b) noexcept { return a.p <=> b.p; }
};

template <class S>
inline constexpr bool kIsNarrowString = false;
template <class Tr, class A>
inline constexpr bool kIsNarrowString<std::basic_string<char, Tr, A>> = true;

// std::vector<std::string> is the wiki's workload (lists of words): its strings are mostly
// shorter than 16 bytes, so the loops below copy them with fixed 16-byte moves instead of one
// variable-length memcpy call each.
//
// A large vector's string objects (32 bytes each: 32 MB for 10^6 words) are usually not in the
// cache, and the loops are bound by how fast they stream: each loop asks for the string objects
// kAhead elements ahead (4 KiB) with a prefetch, which the hardware's own stream prefetch does
// not reach far enough to cover on this VM. Measured per 10^6 words, cold: the one-pass encode
// 2.3-2.7 -> 1.5-1.8 ms, decode (prefetching the output for writing) 3.3-3.8 -> 3.1-3.6 ms.
template <class V>
struct StringVector {
  static constexpr std::size_t kAhead = 128;

  static void prefetch_read(const V& v, std::size_t i) noexcept {
    if (i + kAhead < v.size()) __builtin_prefetch(v.data() + i + kAhead, 0);
  }

  static std::size_t size(const V& v) noexcept {
    std::size_t bytes = 0, long_ones = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      prefetch_read(v, i);
      bytes += v[i].size();
      long_ones += v[i].size() >= 0x80;
    }
    std::size_t n = varint_size(v.size()) + bytes + v.size();
    if (long_ones != 0) {
      for (const auto& s : v) n += varint_size(s.size()) - 1;
    }
    return n;
  }
  static std::byte* encode(std::byte* out, const V& v) noexcept {
    out = put_varint(out, v.size());
    const std::size_t n = v.size();
    std::size_t i = 0;
    // Writing 16 bytes where a short string needs 1 + len is safe while at least 16 strings
    // follow: each writes at least one byte, so the overshoot is overwritten before the end.
    // Reading 16 bytes from data() is inside the string's buffer once capacity() >= 15.
    for (; i + 16 < n; ++i) {
      prefetch_read(v, i);
      const auto& s = v[i];
      const std::size_t len = s.size();
      if (len < 16 && s.capacity() >= 15) {
        *out = static_cast<std::byte>(len);
        std::memcpy(out + 1, s.data(), 16);
        out += 1 + len;
      } else {
        out = put_varint(out, len);
        out = put_bytes(out, s.data(), len);
      }
    }
    for (; i < n; ++i) {
      out = put_varint(out, v[i].size());
      out = put_bytes(out, v[i].data(), v[i].size());
    }
    return out;
  }
  // encode() without the size() pass: writes while it fits in [out, end) and returns the new
  // end, or nullptr once it does not (then bytes up to `end` may have been written). Reading the
  // strings once instead of twice is what makes this faster: at 10^6 words the size() pass alone
  // streams 32 MB of string objects.
  static std::byte* encode_bounded(std::byte* out, std::byte* const end, const V& v) noexcept {
    if (static_cast<std::size_t>(end - out) < varint_size(v.size())) return nullptr;
    out = put_varint(out, v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      prefetch_read(v, i);
      const auto& s = v[i];
      const std::size_t len = s.size();
      if (len < 16 && s.capacity() >= 15 && end - out >= 17) {
        *out = static_cast<std::byte>(len);
        std::memcpy(out + 1, s.data(), 16);  // the overshoot lies inside [out, end)
        out += 1 + len;
      } else {
        if (static_cast<std::size_t>(end - out) < varint_size(len) + len) return nullptr;
        out = put_varint(out, len);
        out = put_bytes(out, s.data(), len);
      }
    }
    return out;
  }
  static void decode(Reader& r, V& v, std::size_t n) {
    // Built in a local vector whose address never escapes, and whose reserved capacity the loop
    // provably never exceeds (the __builtin_unreachable below removes the reallocating branch,
    // the one call its address would escape through): the compiler then knows the characters'
    // stores cannot alias its end pointer and keeps that pointer in a register instead of storing
    // and reloading it around every element (10^6 words: 3.1-3.2 -> 2.35-2.7 ms).
    V built(v.get_allocator());
    built.reserve(n);
    // The cursor lives in a register: through `r` every element's position would be stored and
    // reloaded, putting a store-to-load round trip on the chain from one length to the next
    // (that chain was most of the decoding time).
    const std::byte* p = r.p;
    const std::byte* const end = r.end;
    for (std::size_t i = 0; i < n; ++i) {
      if (built.size() == built.capacity()) __builtin_unreachable();  // i < n == reserved
      // For writing: the reserved storage the element kAhead places on will be built in.
      if (i + kAhead < n) __builtin_prefetch(built.data() + i + kAhead, 1);
      std::size_t len = 0;
      if (end - p >= 16 && (len = static_cast<std::size_t>(*p)) < 16) {
        // A one-byte length and a constant-length construction, which inlines to two moves;
        // resize() then only shortens. The 15 bytes read are inside the input (end - p >= 16).
        built.emplace_back(reinterpret_cast<const char*>(p + 1), 15).resize(len);
        p += 1 + len;
      } else {  // near the end of the input, or a long string: the checked path
        r.p = p;
        const std::size_t long_len = r.count(1);
        built.emplace_back(reinterpret_cast<const char*>(r.p), long_len);
        p = r.p + long_len;
      }
    }
    r.p = p;
    v = std::move(built);
  }
};

// A std::vector of narrow strings: the one type with a one-pass bounded encoder
// (StringVector::encode_bounded, used by try_encode_to).
template <class T>
inline constexpr bool kIsStringVector = false;
template <class S, class A>
inline constexpr bool kIsStringVector<std::vector<S, A>> = kIsNarrowString<S>;

template <class T>
struct Codec<T, Kind::kVector> {
  using E = typename T::value_type;
  static std::size_t size(const T& v) {
    if constexpr (kIsNarrowString<E>) {
      return StringVector<T>::size(v);
    } else if constexpr (min_size<E>() == 0) {
      // The decoder caps counts of zero-byte elements; refuse here what it would refuse there.
      if (v.size() > kMaxEmptyElements) throw_encode("more than 2^20 zero-byte elements");
      return varint_size(v.size()) + elements_size<E>(v);
    } else {
      return varint_size(v.size()) + elements_size<E>(v);
    }
  }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    if constexpr (kIsNarrowString<E>) {
      return StringVector<T>::encode(out, v);
    } else {
      out = put_varint(out, v.size());
      return encode_run(out, v.data(), v.size());
    }
  }
  static void decode(Reader& r, T& v) {
    const std::size_t n = r.count(min_size<E>());
    if constexpr (kIsNarrowString<E>) {
      StringVector<T>::decode(r, v, n);
    } else if constexpr (kind_of<E>() == Kind::kStringView) {
      v.reserve(n);  // views into the input: no copy of the characters at all
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t len = r.count(1);
        v.emplace_back(reinterpret_cast<const char*>(r.p), len);
        r.p += len;
      }
    } else if constexpr (raw_ok<E>()) {
      // assign() from an iterator allocates and copies in one pass; resize() would first
      // zero the whole block (a second pass over memory that decode then overwrites).
      r.need(n * sizeof(E));
      if constexpr (std::is_same_v<E, std::byte> || std::is_same_v<E, char> ||
                    std::is_same_v<E, unsigned char>) {
        // Types that may alias any bytes: a pointer range, which assign() copies with memmove.
        const auto* first = reinterpret_cast<const E*>(r.p);
        v.assign(first, first + n);
      } else {
        v.assign(BytesAs<E>{r.p}, BytesAs<E>{r.p + n * sizeof(E)});
      }
      r.p += n * sizeof(E);
      if constexpr (has_bool<E>()) {
        for (const auto& e : v) check_bools(e);
      }
    } else if constexpr (!std::is_default_constructible_v<E>) {
      v.reserve(n);
      for (std::size_t i = 0; i < n; ++i) v.push_back(Codec<E>::make(r));
    } else {
      v.resize(n);
      for (auto& e : v) Codec<E>::decode(r, e);
    }
  }
};

template <class T>
struct Codec<T, Kind::kArray> {
  using E = typename Shape<T>::Elem;
  static std::size_t size(const T& v) { return elements_size<E>(v); }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    return encode_run(out, v.data(), v.size());
  }
  static void decode(Reader& r, T& v) { decode_run(r, v.data(), v.size()); }
};

template <class T>
struct Codec<T, Kind::kCArray> {
  using E = typename Shape<T>::Elem;
  static constexpr std::size_t N = Shape<T>::extent;
  static std::size_t size(const T& v) { return elements_size<E>(v); }
  static std::byte* encode(std::byte* out, const T& v) noexcept { return encode_run(out, v, N); }
  static void decode(Reader& r, T& v) { decode_run(r, v, N); }
};

// Members one after the other, for tuples, aggregates and Fields types; `tied` is a tuple of
// references to them.
template <class Tied>
std::size_t members_size(const Tied& tied) {
  return std::apply(
      [](const auto&... m) {
        return (std::size_t{0} + ... + Codec<std::remove_cvref_t<decltype(m)>>::size(m));
      },
      tied);
}
template <class Tied>
std::byte* encode_members(std::byte* out, const Tied& tied) noexcept {
  std::apply(
      [&out](const auto&... m) {
        ((out = Codec<std::remove_cvref_t<decltype(m)>>::encode(out, m)), ...);
      },
      tied);
  return out;
}
template <class Tied>
void decode_members(Reader& r, const Tied& tied) {
  std::apply([&r](auto&... m) { (Codec<std::remove_cvref_t<decltype(m)>>::decode(r, m), ...); },
             tied);
}

template <class T>
struct Codec<T, Kind::kTuple> {
  static std::size_t size(const T& v) {
    if constexpr (fixed_size<T>().has_value()) {
      return *fixed_size<T>();
    } else {
      return members_size(as_refs(v));
    }
  }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    return encode_members(out, as_refs(v));
  }
  static void decode(Reader& r, T& v) { decode_members(r, as_refs(v)); }

 private:
  template <class U>
  static auto as_refs(U& v) noexcept {
    return std::apply([](auto&... m) { return std::tie(m...); }, v);
  }
};

template <class T>
struct Codec<T, Kind::kAggregate> {
  static std::size_t size(const T& v) {
    if constexpr (fixed_size<T>().has_value()) {
      return *fixed_size<T>();
    } else {
      return members_size(tie_fields(v));
    }
  }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    return encode_members(out, tie_fields(v));
  }
  static void decode(Reader& r, T& v) { decode_members(r, tie_fields(v)); }
};

// Depth of Fields types being sized on this thread: user types are the only way a value can
// nest without a bound fixed by its type, so they are where both directions count levels.
inline thread_local unsigned encode_depth = 0;

template <class T>
struct Codec<T, Kind::kFields> {
  using Tied = FieldsTie<T>;
  static_assert(
      []<class... Rs>(std::tuple<Rs...>*) {
        return (std::is_lvalue_reference_v<Rs> && ...);
      }(static_cast<Tied*>(nullptr)),
      "Fields<T>::tie(v) must return std::tie(v.member, ...): a tuple of lvalue references");

  static std::size_t size(const T& v) {
    require_all(typename TupleRefs<Tied>::Types{});
    struct Level {
      Level() {
        if (++encode_depth > kMaxDepth) {
          --encode_depth;
          throw_too_deep(kMaxDepth);
        }
      }
      ~Level() { --encode_depth; }
      Level(const Level&) = delete;
      Level& operator=(const Level&) = delete;
    } level;
    return members_size(Fields<T>::tie(v));
  }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    return encode_members(out, Fields<T>::tie(v));
  }
  static void decode(Reader& r, T& v) {
    if (++r.depth > kMaxDepth) throw_too_deep(kMaxDepth);
    decode_members(r, Fields<T>::tie(v));
    --r.depth;
  }
};

template <class T>
struct Codec<T, Kind::kOptional> {
  using E = typename T::value_type;
  static std::size_t size(const T& v) { return 1 + (v ? Codec<E>::size(*v) : 0); }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    *out++ = v ? std::byte{1} : std::byte{0};
    return v ? Codec<E>::encode(out, *v) : out;
  }
  static void decode(Reader& r, T& v) {
    bool engaged = false;
    Codec<bool>::decode(r, engaged);
    if (!engaged) return;
    if constexpr (std::is_default_constructible_v<E>) {
      Codec<E>::decode(r, v.emplace());
    } else {
      v.emplace(Codec<E>::make(r));
    }
  }
};

template <class T>
struct Codec<T, Kind::kVariant> {
  static constexpr std::size_t N = std::variant_size_v<T>;
  static std::size_t size(const T& v) {
    if (v.valueless_by_exception()) throw_encode("std::variant is valueless_by_exception");
    return varint_size(v.index()) +
           std::visit(
               [](const auto& a) { return Codec<std::remove_cvref_t<decltype(a)>>::size(a); }, v);
  }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    out = put_varint(out, v.index());
    return std::visit(
        [out](const auto& a) { return Codec<std::remove_cvref_t<decltype(a)>>::encode(out, a); },
        v);
  }
  static void decode(Reader& r, T& v) {
    const std::uint64_t tag = r.varint();
    if (tag >= N) throw_bad_tag(tag, N);
    decode_alt(r, v, static_cast<std::size_t>(tag), std::make_index_sequence<N>{});
  }

 private:
  template <std::size_t... Is>
  static void decode_alt(Reader& r, T& v, std::size_t tag, std::index_sequence<Is...>) {
    (void)((tag == Is && (decode_as<Is>(r, v), true)) || ...);
  }
  template <std::size_t I>
  static void decode_as(Reader& r, T& v) {
    using A = std::variant_alternative_t<I, T>;
    if constexpr (std::is_default_constructible_v<A>) {
      Codec<A>::decode(r, v.template emplace<I>());
    } else {
      v.template emplace<I>(Codec<A>::make(r));
    }
  }
};

template <class T>
struct Codec<T, Kind::kMap> {
  using K = typename Shape<T>::Key;
  using V = typename Shape<T>::Mapped;
  static std::size_t size(const T& v) {
    if constexpr (fixed_size<K>().has_value() && fixed_size<V>().has_value()) {
      return varint_size(v.size()) + v.size() * (*fixed_size<K>() + *fixed_size<V>());
    } else {
      std::size_t n = varint_size(v.size());
      for (const auto& [k, m] : v) n += Codec<K>::size(k) + Codec<V>::size(m);
      return n;
    }
  }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    out = put_varint(out, v.size());
    for (const auto& [k, m] : v) {
      out = Codec<K>::encode(out, k);
      out = Codec<V>::encode(out, m);
    }
    return out;
  }
  static void decode(Reader& r, T& v) {
    const std::size_t n = r.count(min_size<K>() + min_size<V>());
    if constexpr (requires { v.reserve(n); }) v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      K k = decode_value<K>(r);
      V m = decode_value<V>(r);
      insert(v, std::move(k), std::move(m));
    }
  }

 private:
  static void insert(T& v, K&& k, V&& m) {
    const std::size_t before = v.size();
    // Encoders write ordered maps in order, so the hint makes each insertion O(1).
    v.emplace_hint(v.end(), std::move(k), std::move(m));
    if (Shape<T>::unique && v.size() == before) throw_duplicate_key();
  }
};

template <class T>
struct Codec<T, Kind::kSet> {
  using K = typename Shape<T>::Elem;
  static std::size_t size(const T& v) { return varint_size(v.size()) + elements_size<K>(v); }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    out = put_varint(out, v.size());
    for (const auto& k : v) out = Codec<K>::encode(out, k);
    return out;
  }
  static void decode(Reader& r, T& v) {
    const std::size_t n = r.count(min_size<K>());
    if constexpr (requires { v.reserve(n); }) v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t before = v.size();
      v.emplace_hint(v.end(), decode_value<K>(r));
      if (Shape<T>::unique && v.size() == before) throw_duplicate_key();
    }
  }
};

template <class T>
struct Codec<T, Kind::kDuration> {
  using R = typename T::rep;
  static std::size_t size(const T& v) { return Codec<R>::size(v.count()); }
  static std::byte* encode(std::byte* out, const T& v) noexcept {
    const R c = v.count();
    return Codec<R>::encode(out, c);
  }
  static void decode(Reader& r, T& v) { v = T(decode_value<R>(r)); }
};

// mpp's own errors, so a task's exception crosses processes; defined in src/codec/codec.cpp.
template <>
struct MPP_API Codec<RemoteError, Kind::kError> {
  static std::size_t size(const RemoteError& e);
  static std::byte* encode(std::byte* out, const RemoteError& e) noexcept;
  static RemoteError make(Reader& r);
};
template <>
struct MPP_API Codec<WorkerLost, Kind::kError> {
  static std::size_t size(const WorkerLost& e);
  static std::byte* encode(std::byte* out, const WorkerLost& e) noexcept;
  static WorkerLost make(Reader& r);
};

}  // namespace mpp::codec::detail
