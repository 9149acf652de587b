// Builds against <mpp/mpi.hpp> only (mpp::mpi or pkg-config's mpp-mpi), then maps over an MPI job:
// run it as `mpirun -n 2 consumer_mpi` (rank 0 runs main, rank 1 the tasks).
#include <cstdio>
#include <mpp/mpi.hpp>
#include <vector>

namespace {
int twice(int x) { return 2 * x; }
}  // namespace

MPP_MPI_REGISTER(twice);

int main() {
  mpp::mpi::Pool pool(mpp::mpi::PoolOptions{});
  const std::vector<int> out = pool.map(twice, std::vector<int>{1, 2, 3});
  std::printf("consumer_mpi: %d %d %d with %u workers\n", out[0], out[1], out[2], pool.processes());
  return out == std::vector<int>{2, 4, 6} ? 0 : 1;
}
