// Writes the fuzzer's seed corpus: one file per sample value, its first byte selecting the type
// (see fuzz_types.hpp). Usage: codec_fuzz_corpus <output directory>. The checked-in fuzz/corpus
// was produced by this program; rerun it after changing the wire format or the type list.
#include <cstdio>
#include <fstream>
#include <string>

#include "fuzz_types.hpp"

namespace {

int g_count = 0;

template <class T>
void emit(const std::string& dir, unsigned selector, const T& value) {
  const auto bytes = mpp::codec::encode(value);
  std::ofstream f(dir + "/seed-" + std::to_string(selector) + "-" + std::to_string(g_count++),
                  std::ios::binary);
  const char sel = static_cast<char>(selector);
  f.write(&sel, 1);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  using namespace mpp_fuzz;
  emit(dir, 0, Words{"bap", "dok", "", std::string(200, 'w')});
  emit(dir, 0, Words{});
  emit(dir, 1, Doubles{0.5, -1.0, 1e300});
  emit(dir, 2, Nested{{"a", {1, 2, 3}}, {"bb", {}}});
  emit(dir, 3, Mixed{std::string("hello")});
  emit(dir, 3, Mixed{std::tuple<bool, std::int16_t, std::optional<std::string>>{true, -3, "x"}});
  emit(dir, 3, Mixed{std::vector<std::uint8_t>{1, 2, 3}});
  emit(dir, 4,
       Items{Item{"i", {1, -1}, Flags{true, 7, {false, true}}, 2.5},
             Item{"j", {}, std::nullopt, std::u16string(u"hey")}});
  emit(dir, 5, Bools{{true, false, true}, {true, true, false}, {Flags{false, 1, {true, true}}}});
  emit(dir, 6, Sets{{"x", "y"}, {{1, "a"}, {1, "b"}}});
  emit(dir, 7, Hashed{{1, "one"}, {2, "two"}});
  emit(dir, 8, Errors{mpp::RemoteError("std::runtime_error", "boom", 42, 3)});
  emit(dir, 8, Errors{mpp::WorkerLost(43, 5, 9, 0)});
  emit(dir, 9, Views{"view", "", "s"});
  emit(dir, 10, Tree{"root", {Tree{"a", {}}, Tree{"b", {Tree{"c", {}}}}}});
  emit(dir, 11, Durations{std::chrono::nanoseconds(5), std::chrono::nanoseconds(-1)});
  emit(dir, 12, std::string("plain string"));
  emit(dir, 128, std::string("stream"));  // >= 128: decode_prefix until the input is used up
  std::printf("%d seeds written to %s\n", g_count, dir.c_str());
  return 0;
}
