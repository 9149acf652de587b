// Must NOT compile: a capturing lambda cannot cross machines (see src/mpi/CMakeLists.txt).
#include <mpp/mpi.hpp>
#include <vector>

int main() {
  mpp::mpi::Pool pool;
  int offset = 3;
  auto r = pool.map([offset](int x) { return x + offset; }, std::vector<int>{1, 2});
  return static_cast<int>(r.size());
}
