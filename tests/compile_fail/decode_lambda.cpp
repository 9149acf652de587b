// Decoding into a closure type is meaningless: there is nothing to rebuild it from.
#include <mpp/codec.hpp>
#include <vector>

int main() {
  auto f = [](int x) { return x + 1; };
  const std::vector<std::byte> bytes;
  auto g = mpp::codec::decode<decltype(f)>(bytes);
  return g(1);
}
