// Tests for <mpp/codec.hpp>: seeded random round trips of every supported type at many sizes,
// exact wire bytes, hostile inputs (truncation, huge lengths, bad tags, deep nesting) with a cap
// on the largest allocation they cause, and compile-fail cases for types that cannot travel.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "mpp/codec.hpp"

// ---- largest single allocation, to show hostile lengths never allocate big -------------------

namespace {
std::atomic<std::size_t> g_largest_alloc{0};
}  // namespace

// noinline keeps GCC from pairing an inlined free() with a `new` at a call site and warning.
[[gnu::noinline]] void* operator new(std::size_t n) {
  std::size_t prev = g_largest_alloc.load(std::memory_order_relaxed);
  while (n > prev && !g_largest_alloc.compare_exchange_weak(prev, n, std::memory_order_relaxed)) {
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using mpp::SerializationError;
namespace codec = mpp::codec;
using Bytes = std::vector<std::byte>;

// ---- test types ------------------------------------------------------------------------------

enum class Color : std::uint8_t { kRed, kGreen, kBlue };
enum Plain { kPlainA = 1, kPlainB = 1 << 20 };

struct RawPoint {  // trivially copyable: travels as its bytes
  std::int32_t x;
  double y;
  char tag[3];
  std::array<std::int16_t, 2> pair;
  bool operator==(const RawPoint& o) const {
    return x == o.x && y == o.y && std::memcmp(tag, o.tag, 3) == 0 && pair == o.pair;
  }
};

struct RawFlags {  // trivially copyable with bools: bytes, then every bool checked
  bool on;
  std::uint16_t n;
  bool more[2];
  bool operator==(const RawFlags&) const = default;
};

struct Record {  // aggregate with non-trivial members: member by member
  std::string name;
  std::vector<int> values;
  std::optional<double> weight;
  RawPoint where;
  Color color;
  bool operator==(const Record&) const = default;
};

class Account {  // private state: opts in through Fields
 public:
  Account() = default;
  Account(std::string owner, std::int64_t cents) : owner_(std::move(owner)), cents_(cents) {}
  bool operator==(const Account&) const = default;

 private:
  friend struct mpp::codec::Fields<Account>;
  std::string owner_;
  std::int64_t cents_ = 0;
};

struct Tree {  // recursive: must use Fields
  std::string label;
  std::vector<Tree> kids;
  bool operator==(const Tree&) const = default;
};

}  // namespace

template <>
struct mpp::codec::Fields<Account> {
  static auto tie(auto& a) { return std::tie(a.owner_, a.cents_); }
};
template <>
struct mpp::codec::Fields<Tree> {
  static auto tie(auto& t) { return std::tie(t.label, t.kids); }
};

namespace {

static_assert(codec::Codable<int> && codec::Codable<bool> && codec::Codable<std::byte>);
static_assert(codec::Codable<RawPoint> && codec::Codable<Record> && codec::Codable<Account>);
static_assert(codec::Codable<Tree> && codec::Codable<mpp::RemoteError>);
static_assert(
    codec::Codable<std::map<
        std::string, std::vector<std::optional<std::variant<std::monostate, int, std::string>>>>>);
static_assert(!codec::Codable<int*> && !codec::Codable<const char*>);
static_assert(!codec::Codable<std::vector<void*>>);
struct WithPointer {
  int* p;
};
struct WithRef {
  int& r;
};
static_assert(!codec::Codable<WithPointer> && !codec::Codable<WithRef>);
static_assert(!codec::Codable<std::tuple<int, WithPointer>>);

// ---- random values ---------------------------------------------------------------------------

using Rng = std::mt19937_64;

template <class T>
struct Gen;

template <class T>
T gen(Rng& rng, std::size_t n) {
  return Gen<T>::make(rng, n);
}

// A length from 0..n, biased towards the edges (empty and full) and small values.
std::size_t len(Rng& rng, std::size_t n) {
  switch (rng() % 4) {
    case 0:
      return 0;
    case 1:
      return n;
    default:
      return n == 0 ? 0 : rng() % (n + 1);
  }
}

template <class T>
requires std::is_arithmetic_v<T>
struct Gen<T> {
  static T make(Rng& rng, std::size_t) {
    if constexpr (std::is_same_v<T, bool>) {
      return (rng() & 1) != 0;
    } else if constexpr (std::is_floating_point_v<T>) {
      switch (rng() % 6) {
        case 0:
          return std::numeric_limits<T>::max();
        case 1:
          return -std::numeric_limits<T>::denorm_min();
        case 2:
          return std::numeric_limits<T>::infinity();
        default:
          return static_cast<T>(std::uniform_real_distribution<double>(-1e9, 1e9)(rng));
      }
    } else {
      switch (rng() % 4) {
        case 0:
          return std::numeric_limits<T>::min();
        case 1:
          return std::numeric_limits<T>::max();
        default:
          T v;
          const std::uint64_t bits = rng();
          std::memcpy(&v, &bits, sizeof(T));
          return v;
      }
    }
  }
};
template <>
struct Gen<Color> {
  static Color make(Rng& rng, std::size_t) { return static_cast<Color>(rng() % 3); }
};
template <>
struct Gen<Plain> {
  static Plain make(Rng& rng, std::size_t) { return rng() % 2 ? kPlainA : kPlainB; }
};
template <>
struct Gen<std::byte> {
  static std::byte make(Rng& rng, std::size_t) { return static_cast<std::byte>(rng()); }
};
template <class C>
struct Gen<std::basic_string<C>> {
  static std::basic_string<C> make(Rng& rng, std::size_t n) {
    std::basic_string<C> s(len(rng, n), C{});
    for (auto& c : s) c = static_cast<C>(rng());  // any code unit, NUL included
    return s;
  }
};
template <class T>
struct Gen<std::vector<T>> {
  static std::vector<T> make(Rng& rng, std::size_t n) {
    std::vector<T> v;
    const std::size_t k = len(rng, n);
    for (std::size_t i = 0; i < k; ++i) v.push_back(gen<T>(rng, n / 4 + 1));
    return v;
  }
};
template <class T, std::size_t N>
struct Gen<std::array<T, N>> {
  static std::array<T, N> make(Rng& rng, std::size_t n) {
    std::array<T, N> a{};
    for (auto& e : a) e = gen<T>(rng, n);
    return a;
  }
};
template <class A, class B>
struct Gen<std::pair<A, B>> {
  static std::pair<A, B> make(Rng& rng, std::size_t n) { return {gen<A>(rng, n), gen<B>(rng, n)}; }
};
template <class... Ts>
struct Gen<std::tuple<Ts...>> {
  static std::tuple<Ts...> make([[maybe_unused]] Rng& rng, [[maybe_unused]] std::size_t n) {
    return std::tuple<Ts...>{gen<Ts>(rng, n)...};
  }
};
template <class T>
struct Gen<std::optional<T>> {
  static std::optional<T> make(Rng& rng, std::size_t n) {
    if (rng() % 3 == 0) return std::nullopt;
    return gen<T>(rng, n);
  }
};
template <>
struct Gen<std::monostate> {
  static std::monostate make(Rng&, std::size_t) { return {}; }
};
template <class... Ts>
struct Gen<std::variant<Ts...>> {
  template <std::size_t I>
  static std::variant<Ts...> pick(Rng& rng, std::size_t n, std::size_t want) {
    if constexpr (I + 1 < sizeof...(Ts)) {
      if (want != I) return pick<I + 1>(rng, n, want);
    }
    return std::variant<Ts...>(std::in_place_index<I>,
                               gen<std::variant_alternative_t<I, std::variant<Ts...>>>(rng, n));
  }
  static std::variant<Ts...> make(Rng& rng, std::size_t n) {
    return pick<0>(rng, n, rng() % sizeof...(Ts));
  }
};
template <class M>
M gen_assoc(Rng& rng, std::size_t n) {
  M m;
  const std::size_t k = len(rng, n);
  for (std::size_t i = 0; i < k; ++i) {
    if constexpr (requires { typename M::mapped_type; }) {
      m.emplace(gen<typename M::key_type>(rng, 8), gen<typename M::mapped_type>(rng, n / 4 + 1));
    } else {
      m.emplace(gen<typename M::key_type>(rng, 8));
    }
  }
  return m;
}
template <class K, class V>
struct Gen<std::map<K, V>> {
  static auto make(Rng& rng, std::size_t n) { return gen_assoc<std::map<K, V>>(rng, n); }
};
template <class K, class V>
struct Gen<std::multimap<K, V>> {
  static auto make(Rng& rng, std::size_t n) { return gen_assoc<std::multimap<K, V>>(rng, n); }
};
template <class K, class V>
struct Gen<std::unordered_map<K, V>> {
  static auto make(Rng& rng, std::size_t n) { return gen_assoc<std::unordered_map<K, V>>(rng, n); }
};
template <class K>
struct Gen<std::set<K>> {
  static auto make(Rng& rng, std::size_t n) { return gen_assoc<std::set<K>>(rng, n); }
};
template <class K>
struct Gen<std::multiset<K>> {
  static auto make(Rng& rng, std::size_t n) { return gen_assoc<std::multiset<K>>(rng, n); }
};
template <class K>
struct Gen<std::unordered_set<K>> {
  static auto make(Rng& rng, std::size_t n) { return gen_assoc<std::unordered_set<K>>(rng, n); }
};
template <class K>
struct Gen<std::unordered_multiset<K>> {
  static auto make(Rng& rng, std::size_t n) {
    return gen_assoc<std::unordered_multiset<K>>(rng, n);
  }
};
template <class R, class P>
struct Gen<std::chrono::duration<R, P>> {
  static auto make(Rng& rng, std::size_t n) { return std::chrono::duration<R, P>(gen<R>(rng, n)); }
};
template <>
struct Gen<RawPoint> {
  static RawPoint make(Rng& rng, std::size_t n) {
    RawPoint p{};  // zeroed, so padding compares equal after the round trip
    p.x = gen<std::int32_t>(rng, n);
    p.y = gen<double>(rng, n);
    for (auto& c : p.tag) c = static_cast<char>(rng());
    p.pair = gen<std::array<std::int16_t, 2>>(rng, n);
    return p;
  }
};
template <>
struct Gen<RawFlags> {
  static RawFlags make(Rng& rng, std::size_t n) {
    return {gen<bool>(rng, n), gen<std::uint16_t>(rng, n), {gen<bool>(rng, n), gen<bool>(rng, n)}};
  }
};
template <>
struct Gen<Record> {
  static Record make(Rng& rng, std::size_t n) {
    return {gen<std::string>(rng, n), gen<std::vector<int>>(rng, n),
            gen<std::optional<double>>(rng, n), gen<RawPoint>(rng, n), gen<Color>(rng, n)};
  }
};
template <>
struct Gen<Account> {
  static Account make(Rng& rng, std::size_t n) {
    return {gen<std::string>(rng, n), gen<std::int64_t>(rng, n)};
  }
};
template <>
struct Gen<Tree> {
  static Tree make(Rng& rng, std::size_t n) {
    Tree t{gen<std::string>(rng, 6), {}};
    if (n > 1) {
      const std::size_t k = rng() % 4;
      for (std::size_t i = 0; i < k; ++i) t.kids.push_back(make(rng, n / 2));
    }
    return t;
  }
};

// Bitwise equality where == is not reflexive (NaN never arises from Gen, but -0.0 == 0.0 would
// hide a sign lost on the way).
template <class T>
bool same(const T& a, const T& b) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::memcmp(&a, &b, sizeof(T)) == 0 || (std::isnan(a) && std::isnan(b));
  } else {
    return a == b;
  }
}

// The properties every codable value must have.
template <class T>
void check_round_trip(const T& v, bool check_prefixes) {
  const std::size_t n = codec::encoded_size(v);
  Bytes buf(n + 8, std::byte{0xEE});
  std::byte* end = codec::encode_to(buf.data(), v);
  ASSERT_EQ(static_cast<std::size_t>(end - buf.data()), n) << "encode_to wrote != encoded_size";
  for (std::size_t i = n; i < buf.size(); ++i) ASSERT_EQ(buf[i], std::byte{0xEE}) << "overrun";
  buf.resize(n);
  ASSERT_EQ(buf, codec::encode(v));

  // try_encode_to: the same bytes when the span has room (exactly n bytes included), nothing
  // when it is short; ASan checks that neither writes outside the span.
  Bytes roomy(n + 40, std::byte{0xEE});
  ASSERT_EQ(codec::try_encode_to(std::span(roomy), v), std::optional<std::size_t>(n));
  ASSERT_TRUE(std::equal(buf.begin(), buf.end(), roomy.begin()));
  Bytes exact(n);
  ASSERT_EQ(codec::try_encode_to(std::span(exact), v), std::optional<std::size_t>(n));
  ASSERT_EQ(exact, buf);
  for (std::size_t cut = check_prefixes ? 0 : (n > 0 ? n - 1 : n); cut < n; ++cut) {
    Bytes small(cut);
    ASSERT_FALSE(codec::try_encode_to(std::span(small), v).has_value()) << cut << " of " << n;
  }

  T back = codec::decode<T>(buf);
  ASSERT_TRUE(same(back, v));
  // Canonical: re-encoding gives the same bytes, except that unordered containers may iterate
  // in another order once rebuilt.
  if (std::string(typeid(T).name()).find("unordered") == std::string::npos) {
    ASSERT_EQ(codec::encode(back), buf) << "re-encoding a decoded value changed its bytes";
  } else {
    ASSERT_EQ(codec::encoded_size(back), n);
    ASSERT_TRUE(codec::decode<T>(codec::encode(back)) == v);
  }

  // Two values back to back: decode_prefix takes exactly one and advances.
  Bytes two = buf;
  two.insert(two.end(), buf.begin(), buf.end());
  std::span<const std::byte> rest(two);
  T first = codec::decode_prefix<T>(rest);
  ASSERT_EQ(rest.size(), n);
  ASSERT_TRUE(same(first, v));
  T second = codec::decode_prefix<T>(rest);
  ASSERT_TRUE(rest.empty());
  ASSERT_TRUE(same(second, v));

  // Trailing bytes are an error for decode().
  Bytes longer = buf;
  longer.push_back(std::byte{0});
  ASSERT_THROW((void)codec::decode<T>(longer), SerializationError);

  // The format is prefix-free: every proper prefix is rejected.
  if (check_prefixes) {
    for (std::size_t cut = 0; cut < n; ++cut) {
      ASSERT_THROW((void)codec::decode<T>(std::span<const std::byte>(buf.data(), cut)),
                   SerializationError)
          << "a " << cut << "-byte prefix of a " << n << "-byte encoding decoded";
    }
  }
}

template <class T>
void round_trips(std::uint64_t seed) {
  Rng rng(seed);
  for (std::size_t size : {0, 1, 2, 3, 7, 16, 100, 1000}) {
    for (int rep = 0; rep < 6; ++rep) {
      const T v = gen<T>(rng, size);
      SCOPED_TRACE("size " + std::to_string(size) + " rep " + std::to_string(rep));
      check_round_trip(v, size <= 16);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

template <class T>
class RoundTrip : public ::testing::Test {};

using AllTypes = ::testing::Types<
    bool, char, signed char, unsigned char, wchar_t, char8_t, char16_t, char32_t, short,
    unsigned short, int, unsigned, long, unsigned long, long long, unsigned long long, float,
    double, Color, Plain, std::byte, std::string, std::wstring, std::u16string, std::u32string,
    std::vector<int>, std::vector<double>, std::vector<std::string>, std::vector<bool>,
    std::vector<std::vector<std::uint8_t>>, std::vector<RawPoint>, std::vector<RawFlags>,
    std::vector<Record>, std::array<int, 5>, std::array<std::string, 3>, std::array<bool, 4>,
    std::pair<int, std::string>, std::tuple<>, std::tuple<char, double, std::string>,
    std::optional<int>, std::optional<std::string>, std::variant<std::monostate, int, std::string>,
    std::variant<double, std::vector<int>>, std::map<std::string, int>,
    std::multimap<int, std::string>, std::unordered_map<std::string, std::vector<int>>,
    std::set<int>, std::multiset<std::string>, std::unordered_set<std::string>,
    std::unordered_multiset<int>, std::chrono::milliseconds, std::chrono::duration<double>,
    std::vector<std::chrono::nanoseconds>, RawPoint, RawFlags, Record, Account, Tree,
    std::vector<std::tuple<>>,
    std::map<std::string,
             std::vector<std::optional<std::variant<std::monostate, int, std::string>>>>,
    std::tuple<std::vector<Account>, std::set<Color>, std::optional<std::pair<Tree, bool>>>>;
TYPED_TEST_SUITE(RoundTrip, AllTypes);

TYPED_TEST(RoundTrip, RandomValuesOfManySizes) {
  // The seed differs per type so no two types see the same stream, and is printed on failure.
  const std::uint64_t seed = 0x5eed0000 + std::hash<std::string>{}(typeid(TypeParam).name()) % 997;
  SCOPED_TRACE("seed " + std::to_string(seed));
  round_trips<TypeParam>(seed);
}

TEST(Codec, LargeValuesRoundTrip) {
  Rng rng(42);
  std::vector<double> doubles(1 << 20);
  for (auto& d : doubles) d = gen<double>(rng, 0);
  check_round_trip(doubles, false);
  std::vector<std::string> words(200'000);
  for (auto& w : words) w = gen<std::string>(rng, 40);  // some longer than 15 and than 127
  words[17].assign(300, 'x');                           // two-byte length
  words[words.size() - 3].assign(70'000, 'y');          // three-byte length, near the end
  check_round_trip(words, false);
  std::string big(3'000'000, '\0');
  for (auto& c : big) c = static_cast<char>(rng());
  check_round_trip(big, false);
}

// The one-pass encoder of a vector of strings checks room string by string: every buffer size
// around the long strings and the last 16 (where 16-byte moves stop being possible) either
// holds the exact encoding or is declined.
TEST(Codec, TryEncodeToFitsOrDeclinesAtEverySize) {
  Rng rng(7);
  std::vector<std::string> words;
  for (std::size_t len : {3, 0, 15, 16, 17, 1, 127, 128, 300, 5, 14, 0, 2, 70'000, 4}) {
    words.push_back(std::string(len, static_cast<char>('a' + words.size())));
  }
  for (int i = 0; i < 40; ++i) words.push_back(gen<std::string>(rng, 20));
  const Bytes want = codec::encode(words);
  for (std::size_t size = 0; size <= want.size() + 20; ++size) {
    if (size > 400 && size + 400 < want.size()) size = want.size() - 400;  // skip the long run
    Bytes out(size, std::byte{0xEE});
    const std::optional<std::size_t> n = codec::try_encode_to(std::span(out), words);
    if (size < want.size()) {
      ASSERT_FALSE(n.has_value()) << "size " << size;
    } else {
      ASSERT_EQ(n, std::optional<std::size_t>(want.size())) << "size " << size;
      ASSERT_TRUE(std::equal(want.begin(), want.end(), out.begin())) << "size " << size;
    }
  }
}

TEST(Codec, ErrorsCrossProcesses) {
  const mpp::RemoteError e("std::out_of_range", "vector::at: 7 >= 3", 4242, 17);
  const auto back = codec::decode<mpp::RemoteError>(codec::encode(e));
  EXPECT_EQ(back.type_name(), "std::out_of_range");
  EXPECT_EQ(back.message(), "vector::at: 7 >= 3");
  EXPECT_EQ(back.pid(), 4242);
  EXPECT_EQ(back.task_index(), 17);
  EXPECT_STREQ(back.what(), e.what());

  const mpp::RemoteError no_task("unknown exception", "", 1, mpp::RemoteError::kNoTask);
  EXPECT_EQ(codec::decode<mpp::RemoteError>(codec::encode(no_task)).task_index(),
            mpp::RemoteError::kNoTask);

  const mpp::WorkerLost lost(99, 5, 9, 0);
  const auto lost_back = codec::decode<mpp::WorkerLost>(codec::encode(lost));
  EXPECT_EQ(lost_back.pid(), 99);
  EXPECT_EQ(lost_back.task_index(), 5);
  EXPECT_EQ(lost_back.signal(), 9);
  EXPECT_EQ(lost_back.exit_code(), 0);
  EXPECT_STREQ(lost_back.what(), lost.what());

  // As a pool would send a result: the value or the error.
  using Outcome = std::variant<std::vector<std::string>, mpp::RemoteError, mpp::WorkerLost>;
  const Outcome out = e;
  const auto out_back = codec::decode<Outcome>(codec::encode(out));
  ASSERT_EQ(out_back.index(), 1u);
  EXPECT_EQ(std::get<1>(out_back).task_index(), 17);
  std::vector<mpp::RemoteError> many{e, no_task};
  EXPECT_EQ(codec::decode<std::vector<mpp::RemoteError>>(codec::encode(many))[1].pid(), 1);
  check_round_trip(std::optional<int>{}, true);
  for (std::size_t cut = 0; cut < codec::encoded_size(e); ++cut) {
    const Bytes b = codec::encode(e);
    EXPECT_THROW((void)codec::decode<mpp::RemoteError>(std::span(b.data(), cut)),
                 SerializationError);
  }
}

TEST(Codec, StringViewDecodesInPlace) {
  const std::vector<std::string> words{"bap", "", "dok", std::string(200, 'z')};
  const Bytes b = codec::encode(words);
  const auto views = codec::decode<std::vector<std::string_view>>(b);
  ASSERT_EQ(views.size(), words.size());
  for (std::size_t i = 0; i < words.size(); ++i) {
    EXPECT_EQ(views[i], words[i]);
    if (!views[i].empty()) {
      // Zero-copy: the view points into the buffer it was decoded from.
      EXPECT_GE(static_cast<const void*>(views[i].data()), static_cast<const void*>(b.data()));
      EXPECT_LT(static_cast<const void*>(views[i].data()),
                static_cast<const void*>(b.data() + b.size()));
    }
  }
  // Same wire format both ways.
  EXPECT_EQ(codec::encode(views), b);
}

Tree chain(std::size_t depth);

// The codec keeps no shared state (only a thread-local depth counter): threads encoding and
// decoding at once must each get their own values back, at several thread counts.
TEST(Codec, ConcurrentUseFromManyThreads) {
  for (unsigned threads : {2u, 4u, 8u}) {
    std::vector<std::thread> pool;
    std::atomic<int> failures{0};
    for (unsigned t = 0; t < threads; ++t) {
      pool.emplace_back([t, &failures] {
        Rng rng(1000 + t);
        for (int i = 0; i < 200; ++i) {
          const auto v = gen<std::tuple<Tree, std::vector<std::string>, Record>>(rng, 30);
          const auto back = codec::decode<decltype(v)>(codec::encode(v));
          if (!(back == v)) failures.fetch_add(1);
        }
        // A too-deep value on one thread must not disturb the depth count of the others.
        try {
          (void)codec::encoded_size(chain(codec::kMaxDepth + 1 + t));
          failures.fetch_add(1);
        } catch (const SerializationError&) {
        }
      });
    }
    for (auto& th : pool) th.join();
    EXPECT_EQ(failures.load(), 0) << threads << " threads";
  }
}

// ---- exact bytes (docs/wire-format.md) -------------------------------------------------------

Bytes bytes(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}

TEST(WireFormat, MatchesTheDocument) {
  EXPECT_EQ(codec::kWireVersion, 1u);
  EXPECT_EQ(codec::encode(std::int32_t{0x01020304}), bytes({4, 3, 2, 1}));
  EXPECT_EQ(codec::encode(true), bytes({1}));
  EXPECT_EQ(codec::encode(std::string("abc")), bytes({3, 'a', 'b', 'c'}));
  EXPECT_EQ(codec::encode(std::string(300, 'q')).size(), 302u);
  EXPECT_EQ(codec::encode(std::string(300, 'q'))[0], std::byte{0xAC});  // 300 = 0xAC 0x02
  EXPECT_EQ(codec::encode(std::string(300, 'q'))[1], std::byte{0x02});
  EXPECT_EQ(codec::encode(std::vector<std::int16_t>{1, -1}), bytes({2, 1, 0, 0xFF, 0xFF}));
  EXPECT_EQ(codec::encode(std::vector<std::string>{"ab", ""}), bytes({2, 2, 'a', 'b', 0}));
  EXPECT_EQ(codec::encode(std::vector<bool>{true, false}), bytes({2, 1, 0}));
  EXPECT_EQ(codec::encode(std::optional<std::uint8_t>{}), bytes({0}));
  EXPECT_EQ(codec::encode(std::optional<std::uint8_t>{7}), bytes({1, 7}));
  EXPECT_EQ(codec::encode(std::variant<std::uint8_t, std::string>{std::string("z")}),
            bytes({1, 1, 'z'}));
  EXPECT_EQ(codec::encode(std::pair<std::uint8_t, bool>{5, false}), bytes({5, 0}));
  EXPECT_EQ(codec::encode(std::map<std::uint8_t, std::uint8_t>{{2, 3}, {1, 4}}),
            bytes({2, 1, 4, 2, 3}));
  EXPECT_EQ(codec::encode(std::chrono::seconds{1}), bytes({1, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(codec::encode(Account("x", 1)), bytes({1, 'x', 1, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(codec::encode(std::tuple<>{}), Bytes{});
}

TEST(WireFormat, TriviallyCopyableContainersAreOneBlock) {
  std::vector<double> v{1.5, -2.25, 1e300};
  const Bytes b = codec::encode(v);
  ASSERT_EQ(b.size(), 1 + sizeof(double) * v.size());
  EXPECT_EQ(std::memcmp(b.data() + 1, v.data(), sizeof(double) * v.size()), 0);
  std::vector<RawPoint> pts(3);
  pts[1].x = 7;
  const Bytes pb = codec::encode(pts);
  ASSERT_EQ(pb.size(), 1 + sizeof(RawPoint) * pts.size());
  EXPECT_EQ(std::memcmp(pb.data() + 1, pts.data(), sizeof(RawPoint) * pts.size()), 0);
}

// ---- hostile input ---------------------------------------------------------------------------

// A varint holding v.
Bytes varint(std::uint64_t v) {
  Bytes b;
  while (v >= 0x80) {
    b.push_back(static_cast<std::byte>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  b.push_back(static_cast<std::byte>(v));
  return b;
}
Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Decoding `in` must throw SerializationError without any allocation larger than `cap` bytes.
template <class T>
void expect_rejected(const Bytes& in, std::size_t cap = 4096) {
  g_largest_alloc.store(0);
  EXPECT_THROW((void)codec::decode<T>(in), SerializationError);
  EXPECT_LE(g_largest_alloc.load(), cap) << "a hostile input caused a large allocation";
}

TEST(Hostile, HugeLengthsAllocateNothingBig) {
  for (std::uint64_t n :
       {std::uint64_t{1} << 63, ~std::uint64_t{0}, std::uint64_t{1} << 40, std::uint64_t{1000}}) {
    SCOPED_TRACE(n);
    const Bytes len = varint(n);
    const Bytes tail(16, std::byte{1});
    expect_rejected<std::string>(cat(len, tail));
    expect_rejected<std::u32string>(cat(len, tail));
    expect_rejected<std::vector<double>>(cat(len, tail));
    expect_rejected<std::vector<std::string>>(cat(len, tail));
    expect_rejected<std::vector<std::vector<int>>>(cat(len, tail));
    expect_rejected<std::vector<bool>>(cat(len, tail));
    expect_rejected<std::map<int, std::string>>(cat(len, tail));
    expect_rejected<std::unordered_map<std::string, int>>(cat(len, tail));
    expect_rejected<std::unordered_set<std::string>>(cat(len, tail));
    expect_rejected<std::vector<std::tuple<>>>(cat(len, tail));
    expect_rejected<std::vector<RawPoint>>(cat(len, tail));
    expect_rejected<std::string_view>(cat(len, tail));
  }
}

TEST(Hostile, MalformedScalarsTagsAndVarints) {
  expect_rejected<bool>(bytes({2}));
  expect_rejected<std::optional<int>>(bytes({7, 0, 0, 0, 0}));
  expect_rejected<std::vector<bool>>(bytes({2, 1, 5}));
  expect_rejected<std::array<bool, 2>>(bytes({1, 3}));
  expect_rejected<RawFlags>(cat(bytes({9}), Bytes(sizeof(RawFlags) - 1, std::byte{0})));
  expect_rejected<std::vector<RawFlags>>(
      cat(bytes({1}), cat(bytes({0, 0, 0, 0}), Bytes(sizeof(RawFlags) - 4, std::byte{4}))));
  using V = std::variant<int, std::string>;
  expect_rejected<V>(cat(bytes({2}), Bytes(8, std::byte{0})));  // tag 2 of 2 alternatives
  expect_rejected<V>(cat(varint(std::uint64_t{1} << 62), Bytes(8, std::byte{0})));
  // 11-byte varint, and a 10th byte carrying more than 64 bits.
  expect_rejected<std::string>(cat(Bytes(10, std::byte{0x80}), bytes({0})));
  expect_rejected<std::string>(cat(Bytes(9, std::byte{0xFF}), bytes({0x02})));
  expect_rejected<int>(bytes({1, 2, 3}));
  expect_rejected<double>(Bytes{});
  expect_rejected<std::map<int, int>>(bytes({2, 1, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0}));
  expect_rejected<std::set<std::string>>(bytes({2, 1, 'a', 1, 'a'}));
  // multimap and multiset allow repeats
  EXPECT_EQ((codec::decode<std::multiset<std::string>>(bytes({2, 1, 'a', 1, 'a'})).size()), 2u);
  expect_rejected<std::vector<std::tuple<>>>(varint((std::uint64_t{1} << 20) + 1));
  EXPECT_EQ(codec::decode<std::vector<std::tuple<>>>(varint(1000)).size(), 1000u);
  EXPECT_THROW((void)codec::encoded_size(std::vector<std::tuple<>>((std::size_t{1} << 20) + 1)),
               SerializationError);
}

Tree chain(std::size_t depth) {
  Tree root{"r", {}};
  Tree* t = &root;
  for (std::size_t i = 1; i < depth; ++i) {
    t->kids.push_back(Tree{"n", {}});
    t = &t->kids.back();
  }
  return root;
}

TEST(Hostile, DeepNestingIsBounded) {
  check_round_trip(chain(codec::kMaxDepth), false);
  EXPECT_THROW((void)codec::encoded_size(chain(codec::kMaxDepth + 1)), SerializationError);
  // Hand-made bytes of a chain far deeper than the limit: [1,'n', 1 kid] repeated.
  Bytes deep;
  for (int i = 0; i < 100'000; ++i) {
    for (int x : {1, int{'n'}, 1}) deep.push_back(static_cast<std::byte>(x));
  }
  expect_rejected<Tree>(deep, 1 << 20);
}

TEST(Hostile, EveryTruncationAndBitFlipOfAMixedValueIsSafe) {
  Rng rng(7);
  using T = std::tuple<Record, std::map<std::string, std::vector<std::optional<Color>>>, Tree,
                       std::variant<std::monostate, std::u16string, RawFlags>>;
  const T v = gen<T>(rng, 20);
  const Bytes b = codec::encode(v);
  std::size_t threw = 0, decoded = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes m = b;
      m[i] ^= static_cast<std::byte>(1 << bit);
      try {
        const T back = codec::decode<T>(m);
        // A flip inside a payload byte gives another valid value, which must round-trip
        // (compared as bytes: a flipped double may be a NaN, which is never ==).
        const Bytes again = codec::encode(back);
        EXPECT_EQ(codec::encode(codec::decode<T>(again)), again);
        ++decoded;
      } catch (const SerializationError&) {
        ++threw;
      }
    }
  }
  EXPECT_GT(threw, 0u);
  EXPECT_GT(decoded, 0u);
}

// ---- compile-fail cases ----------------------------------------------------------------------

// The compiler that built this test, from the build's compile_commands.json (CMake exports it),
// so the cases are compiled exactly as users of the library would compile them.
std::string configured_compiler() {
  std::ifstream f(std::string(MPP_HELPER_DIR) + "/../compile_commands.json");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string json = ss.str();
  const std::size_t at = json.find("tests/test_codec.cpp");
  if (at == std::string::npos) return "";
  const std::size_t obj = json.rfind('{', at);
  const std::size_t cmd = json.find("\"command\": \"", obj);
  if (cmd == std::string::npos) return "";
  const std::size_t start = cmd + 12;
  return json.substr(start, json.find(' ', start) - start);
}

struct Compiled {
  int status;
  std::string output;
};

Compiled compile(const std::string& source) {
  const std::string cxx = configured_compiler();
  const std::string cmd = cxx + " -std=c++20 -fsyntax-only -I" MPP_SOURCE_DIR "/include " +
                          MPP_SOURCE_DIR + "/tests/compile_fail/" + source + " 2>&1";
  Compiled c{-1, ""};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return c;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) c.output += buf;
  c.status = ::pclose(p);
  return c;
}

TEST(CompileFail, TheHarnessCompilesAValidProgram) {
  ASSERT_FALSE(configured_compiler().empty()) << "no compile_commands.json entry for this test";
  const Compiled c = compile("control_ok.cpp");
  EXPECT_EQ(c.status, 0) << c.output;
}

struct FailCase {
  const char* file;
  const char* must_mention;  // the offending type, as the compiler spells it
};

class CompileFail : public ::testing::TestWithParam<FailCase> {};

TEST_P(CompileFail, IsRejectedWithAReadableMessage) {
  const Compiled c = compile(GetParam().file);
  EXPECT_NE(c.status, 0) << GetParam().file << " compiled but must not";
  EXPECT_NE(c.output.find("cannot be sent between processes"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("mpp::codec::Fields"), std::string::npos) << c.output;
  EXPECT_NE(c.output.find(GetParam().must_mention), std::string::npos)
      << "the message does not name the type: " << c.output;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CompileFail,
    ::testing::Values(FailCase{"raw_pointer.cpp", "TypeCannotTravelBetweenProcesses<int"},
                      FailCase{"std_function.cpp", "std::function<"},
                      FailCase{"private_members.cpp", "Secret"},
                      FailCase{"pointer_member.cpp", "TypeCannotTravelBetweenProcesses<const char"},
                      FailCase{"decode_lambda.cpp", "lambda"}),
    [](const ::testing::TestParamInfo<FailCase>& p) {
      std::string n = p.param.file;
      return n.substr(0, n.find('.'));
    });

}  // namespace
