// A std::function holds code and captured state by pointer: it cannot travel.
#include <functional>
#include <mpp/codec.hpp>
#include <vector>

int main() {
  std::vector<std::function<int()>> fs{[] { return 1; }};
  return static_cast<int>(mpp::codec::encoded_size(fs));
}
