// Built twice: with MPP_TEST_EXTRA one more function is registered, as if the ranks ran two
// different builds. Run as `mpirun -n 1 helper_registry_a : -n 2 helper_registry_b`: rank 0
// must refuse to start the pool instead of sending ids the others may map differently.
#include <cstdio>
#include <mpp/mpi.hpp>
#include <stdexcept>

namespace {
int one(int x) { return x; }
#ifdef MPP_TEST_EXTRA
int two(int x) { return 2 * x; }
#endif
}  // namespace
MPP_MPI_REGISTER(one);
#ifdef MPP_TEST_EXTRA
MPP_MPI_REGISTER(two);
#endif

int main() {
  try {
    mpp::mpi::Pool pool;
    std::printf("pool started: %d\n", pool.apply(one, 1));
    return 0;
  } catch (const std::logic_error& e) {
    std::printf("refused: %s\n", e.what());
    return 2;
  }
}
