// A raw pointer means nothing in another process: encoding one must not compile.
#include <mpp/codec.hpp>

int main() {
  int x = 1;
  int* p = &x;
  return static_cast<int>(mpp::codec::encode(p).size());
}
