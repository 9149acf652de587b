// A class with private members and no mpp::codec::Fields specialization has no route.
#include <mpp/codec.hpp>
#include <string>

class Secret {
 public:
  explicit Secret(std::string s) : s_(std::move(s)) {}

 private:
  std::string s_;
};

int main() {
  const auto bytes = mpp::codec::encode(Secret("x"));
  return static_cast<int>(bytes.size());
}
