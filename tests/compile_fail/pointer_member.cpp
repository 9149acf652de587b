// An aggregate is trivially copyable even with a pointer member, but the pointer would dangle in
// the receiving process: the diagnostic names the member's type.
#include <mpp/codec.hpp>
#include <vector>

struct Label {
  int id;
  const char* text;
};

int main() {
  std::vector<Label> labels{{1, "a"}};
  const auto bytes = mpp::codec::encode(labels);
  return static_cast<int>(bytes.size());
}
