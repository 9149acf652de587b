// The types the codec fuzzer decodes, shared by the fuzz target and the seed-corpus generator.
// An input's first byte picks the type (modulo kFuzzTypeCount); the rest is the encoding.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include "mpp/codec.hpp"

namespace mpp_fuzz {

struct Flags {  // trivially copyable with bools: exercises the bool check after memcpy
  bool a;
  std::uint16_t n;
  bool b[2];
};

struct Item {  // aggregate member by member
  std::string name;
  std::vector<std::int32_t> values;
  std::optional<Flags> flags;
  std::variant<std::monostate, double, std::u16string> extra;
};

struct Tree {  // recursive, through Fields: exercises the depth limit
  std::string label;
  std::vector<Tree> kids;
};

using Words = std::vector<std::string>;
using Doubles = std::vector<double>;
using Nested = std::map<std::string, std::vector<int>>;
using Mixed = std::variant<std::monostate, std::int64_t, std::string, std::vector<std::uint8_t>,
                           std::tuple<bool, std::int16_t, std::optional<std::string>>>;
using Items = std::vector<Item>;
using Bools = std::tuple<std::vector<bool>, std::array<bool, 3>, std::vector<Flags>>;
using Sets = std::tuple<std::set<std::string>, std::multimap<std::int32_t, std::string>>;
using Hashed = std::unordered_map<std::int32_t, std::string>;
using Errors = std::variant<std::monostate, mpp::RemoteError, mpp::WorkerLost>;
using Views = std::vector<std::string_view>;
using Durations = std::vector<std::chrono::nanoseconds>;

inline constexpr unsigned kFuzzTypeCount = 13;

}  // namespace mpp_fuzz

template <>
struct mpp::codec::Fields<mpp_fuzz::Tree> {
  static auto tie(auto& t) { return std::tie(t.label, t.kids); }
};

namespace mpp_fuzz {

// Calls f.template operator()<T>() with the type that selector picks.
template <class F>
void with_type(unsigned selector, F&& f) {
  switch (selector % kFuzzTypeCount) {
    case 0:
      f.template operator()<Words>();
      break;
    case 1:
      f.template operator()<Doubles>();
      break;
    case 2:
      f.template operator()<Nested>();
      break;
    case 3:
      f.template operator()<Mixed>();
      break;
    case 4:
      f.template operator()<Items>();
      break;
    case 5:
      f.template operator()<Bools>();
      break;
    case 6:
      f.template operator()<Sets>();
      break;
    case 7:
      f.template operator()<Hashed>();
      break;
    case 8:
      f.template operator()<Errors>();
      break;
    case 9:
      f.template operator()<Views>();
      break;
    case 10:
      f.template operator()<Tree>();
      break;
    case 11:
      f.template operator()<Durations>();
      break;
    default:
      f.template operator()<std::string>();
      break;
  }
}

}  // namespace mpp_fuzz
