// Control for the compile-fail cases: the same kind of program with a type that travels must
// compile, so a failure of the other cases is due to the type, not to the harness.
#include <mpp/codec.hpp>
#include <string>
#include <vector>

struct Reading {
  std::string sensor;
  std::vector<double> values;
};

int main() {
  const auto bytes = mpp::codec::encode(Reading{"t1", {1.0, 2.0}});
  return static_cast<int>(mpp::codec::decode<Reading>(bytes).values.size()) - 2;
}
